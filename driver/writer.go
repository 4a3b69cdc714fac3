package driver

import (
	"fmt"
	"sync"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/scpbridge"
)

// finalFlushTimeout bounds the last write of a closing session (its bye).
const finalFlushTimeout = 2 * time.Second

// maxPooledBuf is the largest write buffer returned to the pool.
const maxPooledBuf = 64 << 10

// bufPool holds write buffers: an idle session holds none.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > maxPooledBuf {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// send queues m for the session's writer. It never blocks: when the queue
// already holds Options.SendQueue frames the controller is not reading
// fast enough, and the session is closed as a slow consumer.
func (s *session) send(m scpbridge.Message) error {
	if err := s.queue(m); err != nil {
		return err
	}
	s.wake()
	return nil
}

// queue is send without waking a writer.
func (s *session) queue(m scpbridge.Message) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return errSessionClosed
	}
	if s.outFrames >= s.d.opts.SendQueue {
		s.mu.Unlock()
		s.log.Warn().Int("queued", s.d.opts.SendQueue).Msg("send queue full: slow consumer")
		s.close(scpgate.ReasonSlowConsumer, nil)
		return errSlowConsumer
	}
	err := s.appendLocked(m)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("queue %s frame: %w", m.FrameType(), err)
	}
	return nil
}

// appendLocked encodes m onto the writer's queue. s.mu must be held.
func (s *session) appendLocked(m scpbridge.Message) error {
	if s.out == nil {
		s.out = getBuf()
	}
	b, err := scpbridge.AppendFrame(*s.out, m)
	*s.out = b
	if err != nil {
		return err
	}
	s.outFrames++
	return nil
}

// wake makes sure what is queued gets written. It starts a writer unless
// one runs (a writer looks at the queue again before it stops) or the
// session is closing (finish makes the last flush itself). At most one
// writer runs per session at any time: it owns the socket writes while it
// runs, and an idle session holds no writer goroutine at all.
func (s *session) wake() {
	s.mu.Lock()
	start := !s.writing && !s.closing
	if start {
		s.writing = true
	}
	s.mu.Unlock()
	if start {
		go s.writeLoop()
	}
}

// writeNow writes what is queued on the calling goroutine, unless a writer
// runs already (then that one writes it).
func (s *session) writeNow() {
	s.mu.Lock()
	start := !s.writing && !s.closing
	if start {
		s.writing = true
	}
	s.mu.Unlock()
	if start {
		s.writeLoop()
	}
}

// writeLoop writes whatever is queued in one write (frames, then the
// newest cumulative ack) until nothing is left or the session closes, then
// stops.
func (s *session) writeLoop() {
	for {
		wrote, err := s.flush(s.d.opts.WriteTimeout)
		if err != nil {
			s.log.Warn().Err(err).Msg("write failed")
			s.close(scpgate.ReasonWriteError, nil)
		} else if wrote {
			s.lastWrite.Store(time.Now().UnixNano())
		}
		s.checkDrained()
		s.mu.Lock()
		if s.closing || (s.out == nil && !s.ackReadyLocked()) {
			s.writing = false
			exited := s.writerExited
			s.mu.Unlock()
			if exited != nil {
				close(exited)
			}
			return
		}
		s.mu.Unlock()
	}
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
	if (s.tracker.Pending() == 0 && !s.burst.Load()) || s.ackSeq-s.ackSent >= ackBatch || s.quiesce {
		s.ackNow = true
		return true, false
	}
	if s.ackDeferred {
		return false, false
	}
	s.ackDeferred = true
	return false, true
}

// ackReadyLocked says whether an ack is due to be written. s.mu must be
// held.
func (s *session) ackReadyLocked() bool { return s.ackNow && s.ackSeq != s.ackSent }

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
	defer d.bgWG.Done()
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
			s.ackDeferred, s.ackNow = false, true
			s.mu.Unlock()
			s.wake()
			list[i] = nil
		}
		spare = list
	}
}

// heartbeats pings the welcomed sessions that wrote nothing for about a
// heartbeat interval: one loop per driver rather than a timer per session,
// which idle sessions would each hold.
//
// Each session is pinged a little early, by up to an eighth of the
// interval, fixed per session: sessions that connected together (after a
// restart, say) would otherwise be pinged in one burst every interval,
// forever, and every burst of thousands of writes (and the controllers'
// answers) delays whatever else the driver does at that moment. With
// periods that differ, the pings spread evenly over the interval within a
// few rounds.
func (d *Driver) heartbeats() {
	defer d.bgWG.Done()
	hb := d.opts.Timing.Heartbeat
	early := uint64(hb / 8)
	t := time.NewTicker(max(min(hb/20, 250*time.Millisecond), 10*time.Millisecond))
	defer t.Stop()
	var due []*session
	for {
		select {
		case <-d.bgCtx.Done():
			return
		case now := <-t.C:
			silent := now.Add(-hb).UnixNano()
			d.mu.Lock()
			for _, s := range d.sessions {
				if !s.welcomed.Load() {
					continue // its first frame must be the welcome
				}
				skew := int64(0)
				if early > 0 {
					skew = int64(s.idNum % early)
				}
				if s.lastWrite.Load() <= silent+skew {
					due = append(due, s)
				}
			}
			d.mu.Unlock()
			for i, s := range due {
				s.heartbeatDue()
				due[i] = nil
			}
			due = due[:0]
		}
	}
}

// heartbeatDue queues a ping.
func (s *session) heartbeatDue() {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.pingFrame.Nonce++
	_ = s.appendLocked(&s.pingFrame) // a ping is 16 bytes: it cannot fail
	s.mu.Unlock()
	s.wake()
}

// finalFlush runs once the session is closing: it waits until no writer
// runs (none starts any more) and writes what is left (the bye).
func (s *session) finalFlush() {
	s.mu.Lock()
	var exited chan struct{}
	if s.writing {
		exited = make(chan struct{})
		s.writerExited = exited
	}
	s.mu.Unlock()
	if exited != nil {
		<-exited
	}
	s.mu.Lock()
	s.ackNow = true
	s.mu.Unlock()
	if _, err := s.flush(finalFlushTimeout); err != nil {
		s.log.Debug().Err(err).Msg("final flush failed")
	}
}

// flush writes the queued frames and the newest ack, if any, with one
// write under a deadline of timeout. Only the running writer, or
// finalFlush once no writer runs, calls it.
func (s *session) flush(timeout time.Duration) (bool, error) {
	s.mu.Lock()
	if s.noFlush {
		s.mu.Unlock()
		return false, nil
	}
	buf := s.out
	s.out, s.outFrames = nil, 0
	if s.ackSeq != s.ackSent && (s.ackNow || buf != nil) { // frames going out anyway carry the ack
		s.ackNow = false
		if buf == nil {
			buf = getBuf()
		}
		s.ackFrame = scpbridge.TranAck{BootEpoch: s.epoch, LastSeq: s.ackSeq}
		*buf, _ = scpbridge.AppendFrame(*buf, &s.ackFrame) // fixed size: cannot fail
		s.ackSent, s.lastAcked = s.ackSeq, s.ackSeq
		s.d.stats.ackFrames.Add(1)
	}
	s.mu.Unlock()
	if buf == nil {
		return false, nil
	}
	defer putBuf(buf)
	if len(*buf) == 0 {
		return false, nil
	}
	if err := s.conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return false, fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := s.conn.Write(*buf); err != nil {
		return true, fmt.Errorf("write %d bytes: %w", len(*buf), err)
	}
	return true, nil
}

// beginDrain makes the session stop publishing; once everything it
// published is confirmed and acknowledged, the writer says bye (draining)
// and the session closes with ReasonDrained.
func (s *session) beginDrain() {
	s.mu.Lock()
	s.quiesce, s.ackNow = true, true
	s.drainAt = time.Now()
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
	done := s.quiesce && !s.closing && (s.tracker == nil || s.tracker.Pending() == 0) && s.ackSent == s.ackSeq
	since := time.Since(s.drainAt)
	s.mu.Unlock()
	if !done {
		return
	}
	if s.d.hooks.awaitingAnswers(s) {
		if since < s.d.opts.DrainAnswerWait {
			return // the hooks call again once answered
		}
		if h, ok := s.d.hooks.(*commandHooks); ok {
			h.stats.drainUnanswered.Add(1)
		}
		s.log.Warn().Dur("waited", since).Msg("draining: commands sent still unanswered; releasing the session")
	}
	s.close(closeReasonOfQuiesced(s), s.d.byeDraining("driver draining"))
}
