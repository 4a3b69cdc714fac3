package driver_test

import (
	"context"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/scpbridge"
)

// TestDrainWaitsForCommandAnswers: a session released by Drain while a
// command sent to it is unanswered stays open until the controller
// answers, so the answer is stored and the next driver does not send the
// command again (a panel without tag memory would unlock twice).
func TestDrainWaitsForCommandAnswers(t *testing.T) {
	w := newCmdWorld(t)
	d := w.startDriver("d1", func(o *driver.Options) { o.DrainAnswerWait = 10 * time.Second })
	r := dialRaw(t, d.Addr().String())
	r.hello("DRAINC", 1)
	waitSession(t, d, "DRAINC")

	resp := w.submit("DRAINC", unlock(1))
	c := r.readCommand(5 * time.Second)

	drained := make(chan error, 1)
	go func() { drained <- d.Drain(context.Background()) }()
	// The session must stay open while the command is unanswered.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		ft, err := r.next(time.Until(deadline))
		if err != nil {
			break // the read timed out: nothing came, as wanted
		}
		if ft == scpbridge.FramePing {
			r.write(&scpbridge.Pong{Nonce: r.cs.Ping.Nonce})
			continue
		}
		t.Fatalf("got %s while a command was unanswered, want nothing until the answer", ft)
	}
	r.write(&scpbridge.CommandStatus{Tag: c.Tag, Status: scpbridge.StatusOK})
	bye, err := r.waitClosed(5 * time.Second)
	if err != nil || bye == nil || bye.Reason != scpbridge.ByeDraining {
		t.Fatalf("after the answer: bye %+v, %v; want a draining bye and close", bye, err)
	}
	if err := <-drained; err != nil {
		t.Fatalf("drain: %v", err)
	}
	res := w.waitFinal(5*time.Second, resp.ID)[resp.ID]
	if res.Status != scpgate.StatusOK || res.Driver != "d1" {
		t.Errorf("result %+v, want ok from d1", res)
	}
	w.waitDrained("DRAINC")
	if st := d.Stats(); st.Closed(scpgate.ReasonDrained) != 1 {
		t.Errorf("closes %v, want one drained", st.Closes)
	}
}

// TestDrainAnswerWaitBounded: a controller that never answers holds its
// session no longer than DrainAnswerWait; it is counted.
func TestDrainAnswerWaitBounded(t *testing.T) {
	w := newCmdWorld(t)
	d := w.startDriver("d1", func(o *driver.Options) { o.DrainAnswerWait = 300 * time.Millisecond })
	r := dialRaw(t, d.Addr().String())
	r.hello("DRAINM", 1)
	waitSession(t, d, "DRAINM")
	w.submit("DRAINM", unlock(1))
	r.readCommand(5 * time.Second)

	start := time.Now()
	if err := d.Drain(context.Background()); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if took := time.Since(start); took < 250*time.Millisecond || took > 5*time.Second {
		t.Errorf("drain took %s, want about the 300ms answer wait", took)
	}
	if st := d.CommandStats(); st.DrainUnanswered != 1 {
		t.Errorf("stats %+v, want 1 drain_unanswered", st)
	}
	if st := d.Stats(); st.Closed(scpgate.ReasonDrained) != 1 {
		t.Errorf("closes %v, want one drained", st.Closes)
	}
}
