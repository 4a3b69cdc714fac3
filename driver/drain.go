package driver

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/scpbridge"
)

// drainTick is how often Drain releases the next wave of sessions.
const drainTick = 10 * time.Millisecond

// Drain stops the driver gracefully: /readyz turns 503, the listener
// closes, and the sessions are released in waves of Options.DrainRate per
// second. A released session stops publishing, waits until JetStream
// confirmed everything it published and the controller got the ack, then
// says bye (draining, reconnect after a small random delay) and closes
// with ReasonDrained. By Options.DrainDeadline (or ctx's deadline, if
// sooner) the remaining sessions are closed with ReasonShutdown and
// presence updates still in progress are cut short, so Drain returns
// by its deadline even while NATS is unreachable. Drain then waits for
// the presence updates (until the deadline) and closes the driver.
func (d *Driver) Drain(ctx context.Context) error {
	if d.closed.Load() || !d.draining.CompareAndSwap(false, true) {
		return ErrClosed
	}
	deadline := time.Now().Add(d.opts.DrainDeadline)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if d.ln != nil {
		d.ln.Close()
	}
	d.mu.Lock()
	list := make([]*session, 0, len(d.sessions))
	for _, s := range d.sessions {
		list = append(list, s)
	}
	d.mu.Unlock()
	d.log.Info().Int("sessions", len(list)).Float64("rate", d.opts.DrainRate).Time("deadline", deadline).Msg("draining")

	start := time.Now()
	tick := time.NewTicker(drainTick)
	released := 0
waves:
	for released < len(list) {
		due := min(len(list), 1+int(time.Since(start).Seconds()*d.opts.DrainRate))
		for ; released < due; released++ {
			list[released].beginDrain()
		}
		if released == len(list) {
			break
		}
		select {
		case <-dctx.Done():
			break waves
		case <-tick.C:
		}
	}
	tick.Stop()

	if !waitDone(dctx, &d.connWG) {
		d.mu.Lock()
		rest := make([]*session, 0, len(d.conns))
		for s := range d.conns {
			rest = append(rest, s)
		}
		d.mu.Unlock()
		d.log.Warn().Int("sessions", len(rest)).Msg("drain deadline passed; closing the rest")
		d.hardStop() // presence attempts in progress end now
		for _, s := range rest {
			s.close(scpgate.ReasonShutdown, d.byeDraining("driver shutting down"))
		}
		d.connWG.Wait()
	}
	waitDone(dctx, &d.presWG)
	d.log.Info().Dur("took", time.Since(start)).Msg("drained")
	return d.Close()
}

// waitDone waits for wg or ctx, reporting whether wg finished.
func waitDone(ctx context.Context, wg interface{ Wait() }) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// byeDraining returns a draining bye with a random reconnect delay, so the
// released controllers do not all come back at the same instant.
func (d *Driver) byeDraining(text string) *scpbridge.Bye {
	return &scpbridge.Bye{Reason: scpbridge.ByeDraining, ReconnectAfterMS: uint32(d.reconnectAfter() / time.Millisecond), Text: text}
}

// reconnectAfter returns a random delay in [0, ReconnectAfterMax).
func (d *Driver) reconnectAfter() time.Duration {
	return rand.N(d.opts.ReconnectAfterMax)
}

// beginDrain makes the session stop publishing; once everything it
// published is confirmed and acknowledged, the writer says bye (draining)
// and the session closes with ReasonDrained.
func (s *session) beginDrain() {
	s.mu.Lock()
	s.life.quiesce, s.ack.now = true, true
	s.life.drainAt = time.Now()
	s.mu.Unlock()
	// Check again once the wait for command answers has passed.
	time.AfterFunc(s.d.opts.DrainAnswerWait, s.checkDrained)
	s.wake()
}

// checkDrained closes a quiescing session once nothing is in flight, the
// last ack was written and the commands sent to it were answered (or
// Options.DrainAnswerWait passed since it was released): a controller
// that answers a command after the session ended is sent it again by the
// next driver.
func (s *session) checkDrained() {
	s.mu.Lock()
	done := s.life.quiesce && !s.life.closing && (s.inflight.tracker == nil || s.inflight.tracker.Pending() == 0) && s.ack.sent == s.ack.seq
	since := time.Since(s.life.drainAt)
	s.mu.Unlock()
	if !done {
		return
	}
	if s.d.cmds.AwaitingAnswers(s) {
		if since < s.d.opts.DrainAnswerWait {
			return // delivery calls again once answered
		}
		s.d.cmds.CountDrainUnanswered()
		s.log.Warn().Dur("waited", since).Msg("draining: commands sent still unanswered; releasing the session")
	}
	s.close(closeReasonOfQuiesced(s), s.d.byeDraining("driver draining"))
}
