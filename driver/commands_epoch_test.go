package driver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/streams"
)

// TestCommandStreamRecreated: SCP_COMMANDS is deleted and created again,
// so sequences (and command ids) start again from 1. Old cursors and
// records must not count for the new commands: a connected controller and
// one that connects afterwards get every new command, each with its own
// result, none taken for an old one.
func TestCommandStreamRecreated(t *testing.T) {
	w := newCmdWorld(t)
	d := w.startCmdDriver("d1")
	on := sim.NewController(simConfig(d.Addr().String(), "RECON"))
	runController(t, on)
	later := sim.NewController(simConfig(d.Addr().String(), "RELATE"))
	stopLater := runUntil(t, later)
	waitSession(t, d, "RECON")
	waitSession(t, d, "RELATE")

	// Three commands each in the first stream: cursors end at 3..6.
	var old []string
	for _, serial := range []string{"RECON", "RELATE"} {
		for range 3 {
			old = append(old, w.submit(serial, unlock(1)).ID)
		}
	}
	w.waitFinal(10*time.Second, old...)
	w.waitDrained("RECON")
	w.waitDrained("RELATE")
	stopLater()
	waitSessions(t, d, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.js.DeleteStream(ctx, streams.CommandsStream); err != nil {
		t.Fatalf("delete stream: %v", err)
	}
	if _, err := streams.Ensure(ctx, w.js, testStreams()); err != nil {
		t.Fatalf("re-create streams: %v", err)
	}
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := d.CommandStats().StreamRecreated; n != 1 {
			return fmt.Errorf("driver saw %d re-creations", n)
		}
		return nil
	})

	// New commands: ids RELATE.1, RELATE.2 (queued while it is away) and
	// RECON.3, RECON.4 (connected), all at or below the old cursors.
	before := time.Now()
	var fresh []string
	fresh = append(fresh, w.submit("RELATE", unlock(2)).ID, w.submit("RELATE", unlock(3)).ID)
	fresh = append(fresh, w.submit("RECON", unlock(2)).ID, w.submit("RECON", unlock(3)).ID)
	runController(t, later)
	res := w.waitFinal(15*time.Second, fresh...)
	for _, id := range fresh {
		r := res[id]
		if r.Status != scpgate.StatusOK || r.Created.Before(before) {
			t.Errorf("%s: %+v, want ok for the new command (created after %s)", id, r, before.Format(time.RFC3339Nano))
		}
	}
	w.waitDrained("RECON")
	w.waitDrained("RELATE")
}

// runUntil runs c until the returned stop is called (or the test ends).
func runUntil(t *testing.T, c *sim.Controller) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}
