package driver_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sim"
)

// TestCommandHinted: commands for a connected controller whose queue was
// seen empty come from the driver's hint consumer, without a read of the
// stream, and still end ok in order.
func TestCommandHinted(t *testing.T) {
	w := newCmdWorld(t)
	d := w.startCmdDriver("d1")
	c := sim.NewController(simConfig(d.Addr().String(), "HINT1"))
	runController(t, c)
	waitSession(t, d, "HINT1")

	const n = 5
	for i := range n {
		resp := w.submit("HINT1", withWait(unlock(uint16(1+i%4)), 5*time.Second))
		if resp.Result == nil || resp.Result.Status != scpgate.StatusOK {
			t.Fatalf("command %d: got %s %+v, want ok", i, resp.Status, resp.Result)
		}
		// What the caller was told is what a lookup finds.
		if st, res := w.get(resp.ID); st != scpgate.StatusOK || res == nil || !res.Finished.Equal(resp.Result.Finished) {
			t.Errorf("get %s after its result: %s %+v, want the same ok result", resp.ID, st, res)
		}
	}
	w.waitDrained("HINT1")
	st := d.CommandStats()
	// The first command may be read by the session's first look, if that
	// look ran after the command was stored; every later one is hinted.
	if st.Hinted+st.Fetched != n || st.Hinted < n-1 {
		t.Errorf("hinted %d, fetched %d; want %d commands, at least %d hinted", st.Hinted, st.Fetched, n, n-1)
	}
}

// TestCommandHintOverflow: more commands arrive for a busy controller than
// its session holds hints for; it drops them and reads the stream instead.
// Every command is still delivered once, in queue order. The controller
// leaves its first window of commands unanswered, so that nothing is taken
// from the hints until they give up, however slow the submissions are.
func TestCommandHintOverflow(t *testing.T) {
	w := newCmdWorld(t)
	d := w.startDriver("d1", func(o *driver.Options) { o.CommandAnswerTimeout = 3 * time.Second })
	cfg := simConfig(d.Addr().String(), "HINT2")
	cfg.DropAnswers = driver.DefaultCommandWindow
	c := sim.NewController(cfg)
	runController(t, c)
	waitSession(t, d, "HINT2")

	const n = 80
	ids := make([]string, 0, n)
	seqs := make([]uint32, 0, n)
	for i := range n {
		resp := w.submit("HINT2", unlock(uint16(1+i%4)))
		ids = append(ids, resp.ID)
		seqs = append(seqs, uint32(resp.Seq))
	}
	res := w.waitFinal(30*time.Second, ids...)
	for i, id := range ids {
		want, reason := scpgate.StatusOK, ""
		if i < driver.DefaultCommandWindow {
			want, reason = scpgate.StatusFailed, "unanswered"
		}
		if res[id].Status != want || res[id].Reason != reason {
			t.Errorf("command %d (%s): got %s %q, want %s %q", i, id, res[id].Status, res[id].Reason, want, reason)
		}
	}
	if got := tagsOf(c); !slices.Equal(got, seqs) {
		t.Errorf("controller received tags %v, want %v (each once, in order)", got, seqs)
	}
	if st := d.CommandStats(); st.HintOverflows == 0 || st.Fetched == 0 {
		t.Errorf("hint overflows %d, commands read %d; want both > 0", st.HintOverflows, st.Fetched)
	}
}

// TestCommandHintsAfterNATSRestart: NATS restarts under a connected
// controller; commands submitted after it are delivered (the hint consumer
// comes back, and the sessions read their queues again meanwhile).
func TestCommandHintsAfterNATSRestart(t *testing.T) {
	w := newCmdWorld(t)
	d := w.startCmdDriver("d1")
	c := sim.NewController(simConfig(d.Addr().String(), "HINT3"))
	runController(t, c)
	waitSession(t, d, "HINT3")
	if resp := w.submit("HINT3", withWait(unlock(1), 5*time.Second)); resp.Result == nil {
		t.Fatalf("command before the restart: got %s, want a result", resp.Status)
	}

	w.restart(func() {})
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if !w.nc.IsConnected() {
			return fmt.Errorf("test connection not back")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 3 {
		var resp commander.SubmitResponse
		natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() (err error) {
			// the commander may still be reconnecting
			resp, err = w.svc.Submit(ctx, "HINT3", withWait(unlock(uint16(1+i)), 10*time.Second))
			if err != nil {
				return fmt.Errorf("command %d after the restart: %w", i, err)
			}
			return nil
		})
		if resp.Result == nil || resp.Result.Status != scpgate.StatusOK {
			t.Fatalf("command %d after the restart: %+v, want ok", i, resp.Result)
		}
	}
}

// TestCommandUnanswered: a command the controller never answers ends
// failed, reason unanswered, after CommandAnswerTimeout, and the queue
// moves on to the next command (with a window of one, which the
// unanswered command held).
func TestCommandUnanswered(t *testing.T) {
	w := newCmdWorld(t)
	d := w.startDriver("d1", func(o *driver.Options) {
		o.CommandAnswerTimeout = 300 * time.Millisecond
		o.CommandWindow = 1
	})
	cfg := simConfig(d.Addr().String(), "MUTE1")
	cfg.DropAnswers = 1
	c := sim.NewController(cfg)
	runController(t, c)
	waitSession(t, d, "MUTE1")

	first := w.submit("MUTE1", unlock(1))
	second := w.submit("MUTE1", withWait(unlock(2), 5*time.Second))
	if second.Result == nil || second.Result.Status != scpgate.StatusOK {
		t.Fatalf("second command: got %s %+v, want ok after the first gave up", second.Status, second.Result)
	}
	res := w.waitFinal(5*time.Second, first.ID)[first.ID]
	if res.Status != scpgate.StatusFailed || res.Reason != "unanswered" || res.Sent == nil {
		t.Errorf("first command: got %+v, want failed, reason unanswered, with its sent time", res)
	} else if waited := res.Finished.Sub(*res.Sent); waited < 300*time.Millisecond {
		t.Errorf("first command gave up after %s, want at least the 300ms answer timeout", waited)
	} else if s := second.Result.Sent; s == nil || s.Before(res.Finished) {
		t.Errorf("second command sent at %v, want after the first gave up (%v)", s, res.Finished)
	}
	w.waitDrained("MUTE1")
	if st := d.CommandStats(); st.Unanswered != 1 || st.Failed != 1 || st.OK != 1 {
		t.Errorf("stats %+v: want 1 unanswered (counted failed) and 1 ok", st)
	}
}
