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
	s.wake()
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

// wake tells the writer there is work.
func (s *session) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// writer-owned frames, reused so that acks and pings do not allocate.
type writerFrames struct {
	ack  scpbridge.TranAck
	ping scpbridge.Ping
}

// writeLoop owns every socket write of an established session. It writes
// whatever is queued in one write (frames, then the newest cumulative
// ack), pings when it has been silent for a heartbeat interval, and after
// the session is canceled makes one last flush (the bye).
func (s *session) writeLoop() {
	defer close(s.writerDone)
	var wf writerFrames
	timer := time.NewTimer(s.timing.Heartbeat)
	defer timer.Stop()
	for {
		select {
		case <-s.ctx.Done():
			if _, err := s.flush(&wf, finalFlushTimeout); err != nil {
				s.log.Debug().Err(err).Msg("final flush failed")
			}
			return
		case <-s.kick:
		case <-timer.C:
			wf.ping.Nonce++
			s.mu.Lock()
			_ = s.appendLocked(&wf.ping) // a ping is 16 bytes: it cannot fail
			s.mu.Unlock()
		}
		wrote, err := s.flush(&wf, s.d.opts.WriteTimeout)
		if err != nil {
			s.log.Warn().Err(err).Msg("write failed")
			s.close(scpgate.ReasonWriteError, nil)
			continue
		}
		if wrote {
			timer.Reset(s.timing.Heartbeat)
		}
		s.checkDrained()
	}
}

// flush writes the queued frames and the newest ack, if any, with one
// write under a deadline of timeout.
func (s *session) flush(wf *writerFrames, timeout time.Duration) (bool, error) {
	s.mu.Lock()
	if s.noFlush {
		s.mu.Unlock()
		return false, nil
	}
	buf := s.out
	s.out, s.outFrames = nil, 0
	if s.ackSeq != s.ackSent {
		if buf == nil {
			buf = getBuf()
		}
		wf.ack = scpbridge.TranAck{BootEpoch: s.epoch, LastSeq: s.ackSeq}
		*buf, _ = scpbridge.AppendFrame(*buf, &wf.ack) // fixed size: cannot fail
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
	s.quiesce = true
	s.mu.Unlock()
	s.wake()
}

// checkDrained closes a quiescing session once nothing is in flight and
// the last ack was written.
func (s *session) checkDrained() {
	s.mu.Lock()
	done := s.quiesce && !s.closing && (s.tracker == nil || s.tracker.Pending() == 0) && s.ackSent == s.ackSeq
	s.mu.Unlock()
	if done {
		s.close(scpgate.ReasonDrained, s.d.byeDraining("driver draining"))
	}
}
