package driver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
)

// waitSession waits until d holds a session for serial.
func waitSession(t *testing.T, d *driver.Driver, serial string) driver.SessionInfo {
	t.Helper()
	var info driver.SessionInfo
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		for _, s := range d.Sessions() {
			if s.Serial == serial {
				info = s
				return nil
			}
		}
		return fmt.Errorf("%s holds no session of %s", d.ID(), serial)
	})
	return info
}

// checkTakeoverPresence waits for the presence events of serial and checks
// that at least n sessions ended taken over.
func checkTakeoverPresence(t *testing.T, e *env, serial string, n int) []storedEvent {
	t.Helper()
	var evs []storedEvent
	natstest.CheckFor(t, 5*time.Second, 50*time.Millisecond, func() error {
		evs = readEvents(t, e.js)
		got := 0
		for _, p := range presenceOf(evs, serial) {
			if p.Code == driver.PresenceOffline && p.Presence.Reason == string(scpgate.ReasonTakenOver) {
				got++
			}
		}
		if got < n {
			return fmt.Errorf("%d offline presence events with reason taken_over, want %d", got, n)
		}
		return nil
	})
	return evs
}

// TestTakeoverLocal: the same serial connects twice to one driver. The
// first session is closed taken_over (with a bye saying so), presence
// events record it, and no event of the controller is lost or doubled.
func TestTakeoverLocal(t *testing.T) {
	e := newEnv(t)
	d := e.startDriver("d1", nil)
	c := sim.NewController(simConfig(d.Addr().String(), "TK1"))
	c.SetRate(300)
	runController(t, c)
	first := waitSession(t, d, "TK1")

	// An impostor (or the same panel after a network flap) says hello with
	// the same serial: it takes the session over.
	r := dialRaw(t, d.Addr().String())
	r.hello("TK1", 1)
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := d.Stats().Closed(scpgate.ReasonTakenOver); n < 1 {
			return fmt.Errorf("%d sessions closed taken_over", n)
		}
		return nil
	})
	// The simulated controller reconnects and takes the serial back; the
	// raw session is told so.
	bye, err := r.waitClosed(5 * time.Second)
	if err != nil {
		t.Fatalf("raw session: %v", err)
	}
	if bye == nil || bye.Reason != scpbridge.ByeTakenOver {
		t.Errorf("raw session ended with bye %+v, want taken_over", bye)
	}
	r.conn.Close()
	second := waitSession(t, d, "TK1")
	if second.Session == first.Session {
		t.Errorf("session %s still owns TK1", first.Session)
	}

	c.SetRate(0)
	waitAcked(t, 10*time.Second, c)
	evs := checkTakeoverPresence(t, e, "TK1", 2)
	checkExactlyOnce(t, evs, c)
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := d.Stats().Closed(scpgate.ReasonTakenOver); n != 2 {
			return fmt.Errorf("%d sessions closed taken_over, want 2", n)
		}
		return nil
	})
}

// TestTakeoverAcrossDrivers: a controller held by driver 1 shows up on
// driver 2. Driver 1 sees the scp_sessions write and closes its session;
// when the controller comes back to driver 1, driver 2 lets go. Nothing is
// lost or doubled.
func TestTakeoverAcrossDrivers(t *testing.T) {
	e := newEnv(t)
	d1 := e.startDriver("d1", nil)
	d2 := e.startDriver("d2", nil)
	c := sim.NewController(simConfig(d1.Addr().String(), "TK2"))
	c.SetRate(300)
	runController(t, c)
	waitClaim(t, e, "TK2", waitSession(t, d1, "TK2").Session)

	r := dialRaw(t, d2.Addr().String())
	r.hello("TK2", 1)
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := d1.Stats().Closed(scpgate.ReasonTakenOver); n < 1 {
			return fmt.Errorf("driver 1: %d sessions closed taken_over", n)
		}
		return nil
	})
	bye, err := r.waitClosed(5 * time.Second)
	if err != nil {
		t.Fatalf("raw session on driver 2: %v", err)
	}
	if bye == nil || bye.Reason != scpbridge.ByeTakenOver {
		t.Errorf("raw session ended with bye %+v, want taken_over", bye)
	}
	r.conn.Close()
	waitClaim(t, e, "TK2", waitSession(t, d1, "TK2").Session)
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := d2.Stats().Closed(scpgate.ReasonTakenOver); n != 1 {
			return fmt.Errorf("driver 2: %d sessions closed taken_over, want 1", n)
		}
		return nil
	})

	c.SetRate(0)
	waitAcked(t, 10*time.Second, c)
	evs := checkTakeoverPresence(t, e, "TK2", 2)
	checkExactlyOnce(t, evs, c)

	// The key names the live session on driver 1.
	kv, err := e.js.KeyValue(context.Background(), "scp_sessions")
	if err != nil {
		t.Fatalf("bucket: %v", err)
	}
	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		ent, err := kv.Get(context.Background(), "TK2")
		if err != nil {
			return err
		}
		live := waitSession(t, d1, "TK2")
		if want := `"session":"` + live.Session + `"`; !containsStr(string(ent.Value()), want) {
			return fmt.Errorf("scp_sessions TK2 = %s, want %s", ent.Value(), want)
		}
		return nil
	})
}

// TestSessionsRecordFencing: a late scp_sessions write of an older session
// of the same driver does not close the live session (the driver writes
// the live record again), while a newer write by another driver does.
func TestSessionsRecordFencing(t *testing.T) {
	e := newEnv(t)
	d := e.startDriver("d1", nil)
	c := sim.NewController(simConfig(d.Addr().String(), "FN1"))
	runController(t, c)
	live := waitSession(t, d, "FN1")
	kv, err := e.js.KeyValue(context.Background(), "scp_sessions")
	if err != nil {
		t.Fatalf("bucket: %v", err)
	}
	owner := func() (driver.SessionRecord, error) {
		var rec driver.SessionRecord
		ent, err := kv.Get(context.Background(), "FN1")
		if err != nil {
			return rec, err
		}
		return rec, json.Unmarshal(ent.Value(), &rec)
	}
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if rec, err := owner(); err != nil || rec.Session != live.Session {
			return fmt.Errorf("owner %+v, %v; want session %s", rec, err, live.Session)
		}
		return nil
	})

	stale, _ := json.Marshal(driver.SessionRecord{Driver: "d1", Session: "00000000000000aa", Since: time.Now().Add(-time.Minute)})
	if _, err := kv.Put(context.Background(), "FN1", stale); err != nil {
		t.Fatalf("put: %v", err)
	}
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if rec, err := owner(); err != nil || rec.Session != live.Session {
			return fmt.Errorf("owner %+v, %v; want the live session %s written again", rec, err, live.Session)
		}
		return nil
	})
	if now := waitSession(t, d, "FN1"); now.Session != live.Session {
		t.Errorf("session %s replaced by %s after a stale local record", live.Session, now.Session)
	}

	foreign, _ := json.Marshal(driver.SessionRecord{Driver: "d9", Session: "00000000000000bb", Since: time.Now()})
	if _, err := kv.Put(context.Background(), "FN1", foreign); err != nil {
		t.Fatalf("put: %v", err)
	}
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := d.Stats().Closed(scpgate.ReasonTakenOver); n != 1 {
			return fmt.Errorf("closed taken_over: %d, want 1", n)
		}
		return nil
	})
}

// waitClaim waits until scp_sessions names session as the owner of
// serial. A test that starts a second session of the serial waits for the
// first one's claim, so that it orders two sessions rather than two claims
// racing each other (the later claim stored wins, see presence.go).
func waitClaim(t *testing.T, e *env, serial, session string) {
	t.Helper()
	kv, err := e.js.KeyValue(context.Background(), "scp_sessions")
	if err != nil {
		t.Fatalf("bucket: %v", err)
	}
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		ent, err := kv.Get(context.Background(), serial)
		if err != nil {
			return err
		}
		if !containsStr(string(ent.Value()), session) {
			return fmt.Errorf("scp_sessions %s = %s, want session %s", serial, ent.Value(), session)
		}
		return nil
	})
}
