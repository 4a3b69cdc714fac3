package delivery

// Scheduling: a session with work (a kick: a new session, a hint, a status,
// a timer) waits in the run queue for one of commandWorkers goroutines,
// which steps it (window.go). A session is queued at most once; kicks that
// arrive while it is queued or stepped coalesce into one more step.

import (
	"context"
	"sync"
	"time"
)

// kick schedules cs on a worker; kicks coalesce and never block.
func (h *Delivery) kick(cs *cmdSession) {
	cs.mu.Lock()
	cs.dirty = true
	if cs.queued || cs.running {
		cs.mu.Unlock()
		return
	}
	cs.queued = true
	cs.mu.Unlock()
	h.rq.push(cs)
}

// after kicks cs again in d, unless an earlier kick is already timed. The
// timer is dropped when the session ends.
func (h *Delivery) after(cs *cmdSession, d time.Duration) {
	at := time.Now().Add(d)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.ended {
		return
	}
	if cs.timer != nil {
		if !at.Before(cs.timerAt) {
			return
		}
		cs.timer.Stop()
	}
	cs.timerAt = at
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		cs.mu.Lock()
		if cs.timer == t {
			cs.timer = nil
		}
		cs.mu.Unlock()
		h.kick(cs)
	})
	cs.timer = t
}

// failed counts a failed operation of cs and retries it with backoff.
func (h *Delivery) failed(cs *cmdSession, what string, err error) {
	h.stats.errors.Add(1)
	cs.mu.Lock()
	n := cs.fails
	if n < 16 {
		cs.fails++
	}
	ended := cs.ended
	cs.mu.Unlock()
	ev := cs.log().Debug()
	if n == 0 || ended {
		ev = cs.log().Warn()
	}
	ev.Err(err).Msg(what + " failed")
	h.after(cs, min(retryMin<<n, retryMax))
}

// succeeded resets the backoff of cs.
func (cs *cmdSession) succeeded() {
	cs.mu.Lock()
	cs.fails = 0
	cs.mu.Unlock()
}

// dispatch makes every session read its queue again after a NATS
// reconnect or an error of the hint consumer, and stops the consumer when
// the driver closes.
func (h *Delivery) dispatch(ctx context.Context) {
	tick := time.NewTicker(rescanEvery)
	defer tick.Stop()
	reconnects := h.nc.Stats().Reconnects
	for {
		select {
		case <-ctx.Done():
			h.stopHints()
			h.rq.close()
			return
		case <-tick.C:
			h.checkIncarnation(ctx)
			r := h.nc.Stats().Reconnects
			if r != reconnects || h.lostHints.Swap(false) {
				reconnects = r
				h.rescan()
			}
		}
	}
}

// sessionList returns the sessions held now.
func (h *Delivery) sessionList() []*cmdSession {
	h.mu.RLock()
	defer h.mu.RUnlock()
	list := make([]*cmdSession, 0, len(h.sessions))
	for _, cs := range h.sessions {
		list = append(list, cs)
	}
	return list
}

// rescan makes every session read its queue once more, its hints no
// longer trusted.
func (h *Delivery) rescan() {
	h.hintGen.Add(1)
	list := h.sessionList()
	h.log.Info().Int("sessions", len(list)).Msg("rescanning command queues")
	for _, cs := range list {
		h.kick(cs)
	}
}

// worker steps scheduled sessions until the driver closes; then it
// completes what is queued and returns. ctx ends flushTimeout after the
// driver closed.
func (h *Delivery) worker(ctx context.Context) {
	for {
		cs, flushing, ok := h.rq.pop()
		if !ok {
			return
		}
		cs.mu.Lock()
		cs.queued, cs.running, cs.dirty = false, true, false
		cs.mu.Unlock()
		h.step(ctx, cs, flushing)
		cs.mu.Lock()
		cs.running = false
		again := cs.dirty && !flushing
		if again {
			cs.queued = true
		}
		cs.mu.Unlock()
		if again {
			h.rq.push(cs)
		}
	}
}

// runQueue is the FIFO of sessions waiting for a worker. A session is in
// it at most once (cmdSession.queued), so it holds at most one entry per
// session.
type runQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []*cmdSession
	closed bool
	cancel context.CancelFunc // ends the workers' context
}

func (q *runQueue) push(cs *cmdSession) {
	q.mu.Lock()
	q.items = append(q.items, cs)
	q.mu.Unlock()
	q.cond.Signal()
}

// pop waits for a session. After close it returns what is left, with
// flushing set, then ok false.
func (q *runQueue) pop() (cs *cmdSession, flushing, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return nil, false, false
	}
	cs = q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	if len(q.items) == 0 {
		q.items = nil // let the backing array go
	}
	return cs, q.closed, true
}

// close makes pop hand out the remaining sessions for flushing, then stop;
// the workers' context ends flushTimeout later.
func (q *runQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
	time.AfterFunc(flushTimeout, q.cancel)
}
