package driver_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sim"
)

// TestAcksCoalescedInBacklog: a controller sending a backlog gets far fewer
// acks than transactions, and a single transaction sent alone is still
// acknowledged at once.
func TestAcksCoalescedInBacklog(t *testing.T) {
	e := newEnv(t)
	d := e.startDriver("acks1", nil)
	cfg := simConfig(d.Addr().String(), "ACKS1")
	cfg.AckLatency = new(sim.Histogram)
	c := sim.NewController(cfg)
	runController(t, c)
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !c.Stats().Connected {
			return fmt.Errorf("not connected")
		}
		return nil
	})
	c.Generate(3000)
	waitAcked(t, time.Minute, c)
	st := d.Stats()
	if st.EventsAcked != 3000 || st.AckFrames > 3000/8 {
		t.Errorf("%d transactions acknowledged with %d ack frames, want 3000 with at most %d", st.EventsAcked, st.AckFrames, 3000/8)
	}

	cfg.AckLatency.Reset()
	c.Generate(1)
	waitAcked(t, 10*time.Second, c)
	// A deferred ack would wait 50 ms for the driver's ack flusher.
	if took := cfg.AckLatency.Snapshot().Quantile(1); took >= 45*time.Millisecond {
		t.Errorf("a lone transaction took %v to be acknowledged", took)
	}
}
