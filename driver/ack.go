package driver

import (
	"sync"
	"time"
)

// ackState is the cumulative ack a session owes its controller. Guarded
// by session.mu.
type ackState struct {
	seq  uint32 // newest cumulative ack to send
	sent uint32 // newest ack handed to the writer
	last uint32 // newest ack sent, for SessionInfo
	// deferred: the session waits in the driver's ack queue; now: the
	// newest ack is due (see ackDueLocked).
	deferred, now bool
}

// Ack coalescing: while a session has more transactions in flight or
// already read, its cumulative ack waits until ackBatch more are
// confirmed or ackDelay has passed, so that a controller sending a backlog
// gets one ack per batch rather than one per PubAck (each a socket write
// on both sides). A session with nothing more in flight is acknowledged at
// once.
//
// While read loops wait for the driver's in-flight budget (a reconnect
// storm), each controller's share of the throughput is a few dozen
// transactions a second or less, too few for 50 ms to gather more than
// one or two: the deferred acks then wait ackDelayStalled. Those
// controllers are waiting for their backlogs to be read anyway; the
// controller keeps its transactions until acknowledged and needs no
// window of its own (docs/protocol.md, flow control).
const (
	ackBatch        = 64
	ackDelay        = 50 * time.Millisecond
	ackDelayStalled = 250 * time.Millisecond
)

// ackDueLocked says whether the newest ack goes out now or is deferred
// (and was not deferred already). s.mu must be held.
func (s *session) ackDueLocked() (now, later bool) {
	if (s.inflight.tracker.Pending() == 0 && !s.burst.Load()) || s.ack.seq-s.ack.sent >= ackBatch || s.life.quiesce {
		s.ack.now = true
		return true, false
	}
	if s.ack.deferred {
		return false, false
	}
	s.ack.deferred = true
	return false, true
}

// ackReadyLocked says whether an ack is due to be written. s.mu must be
// held.
func (s *session) ackReadyLocked() bool { return s.ack.now && s.ack.seq != s.ack.sent }

// ackQueue holds the sessions whose ack was deferred.
type ackQueue struct {
	mu   sync.Mutex
	list []*session
	kick chan struct{} // cap 1: the list became non-empty
}

// deferAck has the ack flusher wake s within ackDelay.
func (d *Driver) deferAck(s *session) {
	q := &d.acks
	q.mu.Lock()
	q.list = append(q.list, s)
	first := len(q.list) == 1
	q.mu.Unlock()
	if first {
		select {
		case q.kick <- struct{}{}:
		default:
		}
	}
}

// ackFlusher wakes the writers of the sessions with deferred acks, ackDelay
// after the first of them was deferred. It sleeps while there are none.
func (d *Driver) ackFlusher() {
	q := &d.acks
	t := time.NewTimer(time.Hour)
	t.Stop()
	var spare []*session
	for {
		select {
		case <-d.bgCtx.Done():
			return
		case <-q.kick:
		}
		delay := ackDelay
		if d.budget.waiting() {
			delay = ackDelayStalled
		}
		t.Reset(delay)
		select {
		case <-d.bgCtx.Done():
			return
		case <-t.C:
		}
		q.mu.Lock()
		list := q.list
		q.list = spare[:0]
		q.mu.Unlock()
		for i, s := range list {
			s.mu.Lock()
			s.ack.deferred, s.ack.now = false, true
			s.mu.Unlock()
			s.wake()
			list[i] = nil
		}
		spare = list
	}
}
