package driver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sim"
)

// TestDrain: two drivers behind a load balancer; driver 1 is drained. Its
// controllers move to driver 2, each after a bye (draining), and nothing
// is lost or doubled.
func TestDrain(t *testing.T) {
	e := newEnv(t)
	d1 := e.startDriver("d1", func(o *driver.Options) { o.DrainRate = 100 })
	lb := newLB(t, d1.Addr().String())
	const count = 20
	f := sim.NewFleet(sim.FleetConfig{Controller: simConfig(lb.addr(), ""), Count: count, Ramp: 1000})
	f.SetRate(50)
	runFleet(t, f)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if st := d1.Stats(); st.Sessions != count || st.EventsAcked < 200 {
			return fmt.Errorf("driver 1: %d sessions, %d events acked", st.Sessions, st.EventsAcked)
		}
		return nil
	})
	d2 := e.startDriver("d2", nil)
	lb.add(d2.Addr().String())

	start := time.Now()
	if err := d1.Drain(context.Background()); err != nil {
		t.Fatalf("drain: %v", err)
	}
	took := time.Since(start)
	st1 := d1.Stats()
	if st1.Closed(scpgate.ReasonDrained) != count || st1.Closed(scpgate.ReasonShutdown) != 0 {
		t.Errorf("driver 1 closes %v, want %d drained and none shut down", st1.Closes, count)
	}
	if min := time.Duration(float64(count-1) / 100 * float64(time.Second)); took < min {
		t.Errorf("drain took %s, below the %s the drain rate allows", took, min)
	}
	waitSessions(t, d2, count)

	f.SetRate(0)
	ctrls := f.Controllers()
	waitAcked(t, 20*time.Second, ctrls...)
	evs := readEvents(t, e.js)
	checkExactlyOnce(t, evs, ctrls...)
	for _, c := range ctrls {
		drained := false
		for _, p := range presenceOf(evs, c.Serial()) {
			if p.Code == driver.PresenceOffline && p.Driver == "d1" && p.Presence.Reason == string(scpgate.ReasonDrained) {
				drained = true
			}
		}
		if !drained {
			t.Errorf("%s: no offline presence event from d1 with reason drained", c.Serial())
		}
	}
	t.Logf("drain of %d sessions took %s; deferred %d events", count, took, st1.EventsDeferred)
}

// TestDrainWithoutNATS stops a driver while NATS is unreachable, with
// controllers connected and events unconfirmed: Drain returns by its
// deadline, give or take a small slack, instead of waiting for NATS.
func TestDrainWithoutNATS(t *testing.T) {
	e := newEnv(t)
	const deadline = 2 * time.Second
	d := e.startDriver("offline-drain", func(o *driver.Options) { o.DrainDeadline = deadline })
	var ctrls []*sim.Controller
	for i := range 5 {
		c := sim.NewController(simConfig(d.Addr().String(), fmt.Sprintf("OFF%d", i)))
		runController(t, c)
		ctrls = append(ctrls, c)
		c.Generate(5)
	}
	waitAcked(t, 10*time.Second, ctrls...)
	waitSessions(t, d, len(ctrls))

	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	for _, c := range ctrls {
		c.Generate(20) // never confirmed: NATS is gone
	}
	// Let them be read and published into the void.
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n, want := d.Stats().EventsReceived, uint64(len(ctrls)*25); n < want {
			return fmt.Errorf("driver read %d events, want %d", n, want)
		}
		return nil
	})

	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- d.Drain(context.Background()) }()
	const slack = 2 * time.Second
	select {
	case err := <-done:
		took := time.Since(start)
		t.Logf("drain without NATS took %s (err %v)", took.Round(time.Millisecond), err)
		if took > deadline+slack {
			t.Errorf("drain took %s, want at most %s", took, deadline+slack)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("drain still running %s after it started, deadline %s", 2*time.Minute, deadline)
	}
}
