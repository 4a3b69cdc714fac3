package driver_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/streams"
)

// TestFleetEventsStoredOnce: 50 controllers generate events; each is in
// SCP_EVENTS exactly once, on its subject, and every controller ends with
// nothing unacknowledged.
func TestFleetEventsStoredOnce(t *testing.T) {
	e := newEnv(t)
	d := e.startDriver("d1", nil)
	const count, each = 50, 120
	f := sim.NewFleet(sim.FleetConfig{Controller: simConfig(d.Addr().String(), ""), Count: count, Ramp: 1000})
	runFleet(t, f)
	ctrls := f.Controllers()
	waitSessions(t, d, count)
	for round := 0; round < 4; round++ {
		for _, c := range ctrls {
			c.Generate(each / 4)
		}
	}
	waitAcked(t, 30*time.Second, ctrls...)

	evs := readEvents(t, e.js)
	checkExactlyOnce(t, evs, ctrls...)
	for _, c := range ctrls {
		pres := presenceOf(evs, c.Serial())
		if len(pres) != 1 || pres[0].Code != driver.PresenceOnline || pres[0].Driver != "d1" {
			t.Errorf("%s: presence %+v, want one online event from d1", c.Serial(), pres)
		}
	}
	st := d.Stats()
	if st.EventsReceived != count*each || st.EventsAcked != count*each || st.EventsPublished != count*each {
		t.Errorf("stats received %d, published %d, acked %d; want %d each", st.EventsReceived, st.EventsPublished, st.EventsAcked, count*each)
	}
	if st.Inflight != 0 {
		t.Errorf("inflight %d after everything was acked", st.Inflight)
	}
	if len(d.Sessions()) != count {
		t.Errorf("Sessions() lists %d, want %d", len(d.Sessions()), count)
	}

	// scp_sessions names this driver for every controller.
	kv, err := e.js.KeyValue(context.Background(), streams.SessionsBucket)
	if err != nil {
		t.Fatalf("sessions bucket: %v", err)
	}
	for _, c := range ctrls[:5] {
		ent, err := kv.Get(context.Background(), c.Serial())
		if err != nil {
			t.Fatalf("scp_sessions %s: %v", c.Serial(), err)
		}
		if want := `"driver":"d1"`; !strings.Contains(string(ent.Value()), want) {
			t.Errorf("scp_sessions %s = %s, want %s", c.Serial(), ent.Value(), want)
		}
	}
}

// TestNATSRestart: the embedded server goes down mid-stream and comes back
// on the same store and port. While it is down nothing is acknowledged;
// afterwards every event is stored exactly once.
func TestNATSRestart(t *testing.T) {
	e := newEnv(t)
	d := e.startDriver("d1", nil)
	const count = 10
	f := sim.NewFleet(sim.FleetConfig{Controller: simConfig(d.Addr().String(), ""), Count: count, Ramp: 1000})
	f.SetRate(200) // 2,000 events/s across the fleet, until stopped
	stop := runFleet(t, f)
	ctrls := f.Controllers()
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if st := d.Stats(); st.EventsAcked < 1000 {
			return fmt.Errorf("%d events acked so far", st.EventsAcked)
		}
		return nil
	})

	e.restart(func() {
		// Wait until the driver saw the disconnect, then record the acks.
		natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
			if r := d.Ready(); r.NATSConnected {
				return fmt.Errorf("driver still connected")
			}
			return nil
		})
		// Acks of events the server stored before it stopped may still be
		// on their way to the controllers: wait until none arrives for
		// 200 ms, then count.
		var before uint64
		seen := false
		natstest.CheckFor(t, 5*time.Second, 200*time.Millisecond, func() error {
			now := acked(ctrls)
			if !seen || now != before {
				before, seen = now, true
				return fmt.Errorf("acks still arriving: %d", now)
			}
			return nil
		})
		gen := generated(ctrls)
		natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
			if g := generated(ctrls); g < gen+500 {
				return fmt.Errorf("generated %d more while down", g-gen)
			}
			return nil
		})
		if after := acked(ctrls); after != before {
			t.Errorf("controllers acknowledged while NATS was down: %d -> %d", before, after)
		}
		if r := d.Ready(); r.Ready {
			t.Errorf("readyz ready while NATS is down: %+v", r)
		}
		if n := d.Stats().Sessions; n != count {
			t.Errorf("%d sessions while NATS is down, want %d kept open", n, count)
		}
		// A new controller is sent elsewhere meanwhile.
		r := dialRaw(t, d.Addr().String())
		r.write(&scpbridge.Hello{Serial: "LATE1", BootEpoch: 1})
		if ft, err := r.next(2 * time.Second); err != nil || ft != scpbridge.FrameReject || r.cs.Reject.Reason != scpbridge.RejectUnavailable {
			t.Errorf("new session while NATS is down: got %s %+v, %v; want reject unavailable", ft, r.cs.Reject, err)
		}
	})

	f.SetRate(0)
	waitAcked(t, 30*time.Second, ctrls...)
	evs := readEvents(t, e.js)
	checkExactlyOnce(t, evs, ctrls...)
	for _, c := range ctrls {
		if n := c.Stats().Sessions; n != 1 {
			t.Errorf("%s needed %d sessions across the outage, want 1", c.Serial(), n)
		}
	}
	st := d.Stats()
	t.Logf("publish errors %d, republished %d, duplicates %d, generated %d", st.PublishErrors, st.Republished, st.EventsDuplicate, generated(ctrls))
	if st.Closed(scpgate.ReasonHeartbeatTimeout) != 0 {
		t.Errorf("sessions timed out during the outage: %v", st.Closes)
	}
	if st.Republished == 0 {
		t.Errorf("nothing was held back and republished across the outage")
	}
	stop()
	if err := d.Close(); err != nil { // before the restarted server's cleanup
		t.Errorf("close: %v", err)
	}
}

func acked(cs []*sim.Controller) (n uint64) {
	for _, c := range cs {
		n += c.Stats().Acked
	}
	return n
}

func generated(cs []*sim.Controller) (n uint64) {
	for _, c := range cs {
		n += c.Stats().Generated
	}
	return n
}
