package driver_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/scpbridge"
)

// TestCommandSweptWhileSent: a commander's sweeper ends a command the
// driver sent and still waits for (its expiry and grace passed); the
// controller's late answer then must not make a second, different result:
// the driver takes the sweeper's, and record and stored result agree.
func TestCommandSweptWhileSent(t *testing.T) {
	w := newCmdWorld(t)
	d := w.startCmdDriver("d1")
	r := dialRaw(t, d.Addr().String())
	r.hello("SWEPT1", 1)
	waitSession(t, d, "SWEPT1")

	req := unlock(1)
	req.TTL = "1s"
	resp := w.submit("SWEPT1", req)
	c := r.readCommand(5 * time.Second)

	sw, err := commander.NewSweeper(commander.SweeperOptions{JS: w.js, Log: testLogger(t), Grace: 100 * time.Millisecond, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		if err := sw.Sweep(t.Context()); err != nil {
			return err
		}
		if st := sw.Stats(); st.Unanswered != 1 {
			return fmt.Errorf("sweeper stats %+v", st)
		}
		return nil
	})
	r.write(&scpbridge.CommandStatus{Tag: c.Tag, Status: scpbridge.StatusOK}) // too late

	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if n := d.CommandStats().Delivering; n != 0 {
			return fmt.Errorf("%d sessions still delivering", n)
		}
		return nil
	})
	res := w.results("SWEPT1")
	got, ok := res[resp.ID]
	if len(res) != 1 || !ok || got.Status != scpgate.StatusFailed || got.Reason != "unanswered" {
		t.Fatalf("results %+v, want the sweeper's failed unanswered only", res)
	}
	if st, rec := w.get(resp.ID); st != got.Status || rec == nil || rec.Reason != got.Reason {
		t.Errorf("record %s %+v, want the stored result %s %s", st, rec, got.Status, got.Reason)
	}
	w.waitDrained("SWEPT1")
}
