package driver_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sim"
)

// TestCommandStaleReplicaRead: the first read of a queue is answered "not
// found" although a command is stored, as an R3 follower that has not
// stored it yet answers a direct get (simulated by an injected reader on
// a single server). The command must not be skipped: it is delivered,
// before the command queued after it.
func TestCommandStaleReplicaRead(t *testing.T) {
	w := newCmdWorld(t)
	first := w.submit("STALE1", unlock(1)) // queued while offline

	nc := natstest.Connect(t, w.srv, nats.Name("d1"))
	o := driver.Options{ID: "d1", Listen: "127.0.0.1:0", NATS: nc, Streams: testStreams(), Timing: testTiming,
		Log: testLogger(t), ReconnectAfterMax: 100 * time.Millisecond}
	d, err := driver.New(o)
	if err != nil {
		t.Fatal(err)
	}
	driver.StaleReads(d, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })

	c := sim.NewController(simConfig(d.Addr().String(), "STALE1"))
	runController(t, c)
	waitSession(t, d, "STALE1")
	second := w.submit("STALE1", unlock(2))
	res := w.waitFinal(10*time.Second, first.ID, second.ID)
	for _, id := range []string{first.ID, second.ID} {
		if res[id].Status != "ok" {
			t.Errorf("%s: %+v, want ok", id, res[id])
		}
	}
	if got, want := tagsOf(c), []uint32{uint32(first.Seq), uint32(second.Seq)}; !slices.Equal(got, want) {
		t.Errorf("controller got tags %v, want %v (in queue order)", got, want)
	}
	if st := d.CommandStats(); st.StaleReads != 1 {
		t.Errorf("stats %+v, want 1 stale read", st)
	}
}
