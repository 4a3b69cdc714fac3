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

// outQueue holds a session's encoded frames until the writer takes them.
// Guarded by session.mu.
type outQueue struct {
	buf     *[]byte // encoded frames not yet taken by the writer
	frames  int
	writing bool // a writer goroutine runs
	// exited, when set, is closed by the writer as it stops.
	exited chan struct{}
	ping   scpbridge.Ping    // the heartbeat's frame
	ack    scpbridge.TranAck // flush's frame
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
	if s.life.closing {
		s.mu.Unlock()
		return errSessionClosed
	}
	if s.out.frames >= s.d.opts.SendQueue {
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
	if s.out.buf == nil {
		s.out.buf = getBuf()
	}
	b, err := scpbridge.AppendFrame(*s.out.buf, m)
	*s.out.buf = b
	if err != nil {
		return err
	}
	s.out.frames++
	return nil
}

// wake makes sure what is queued gets written. It starts a writer unless
// one runs (a writer looks at the queue again before it stops) or the
// session is closing (finish makes the last flush itself). At most one
// writer runs per session at any time: it owns the socket writes while it
// runs, and an idle session holds no writer goroutine at all.
func (s *session) wake() {
	s.mu.Lock()
	start := !s.out.writing && !s.life.closing
	if start {
		s.out.writing = true
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
	start := !s.out.writing && !s.life.closing
	if start {
		s.out.writing = true
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
		if s.life.closing || (s.out.buf == nil && !s.ackReadyLocked()) {
			s.out.writing = false
			exited := s.out.exited
			s.mu.Unlock()
			if exited != nil {
				close(exited)
			}
			return
		}
		s.mu.Unlock()
	}
}

// finalFlush runs once the session is closing: it waits until no writer
// runs (none starts any more) and writes what is left (the bye).
func (s *session) finalFlush() {
	s.mu.Lock()
	var exited chan struct{}
	if s.out.writing {
		exited = make(chan struct{})
		s.out.exited = exited
	}
	s.mu.Unlock()
	if exited != nil {
		<-exited
	}
	s.mu.Lock()
	s.ack.now = true
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
	if s.life.noFlush {
		s.mu.Unlock()
		return false, nil
	}
	buf := s.out.buf
	s.out.buf, s.out.frames = nil, 0
	if s.ack.seq != s.ack.sent && (s.ack.now || buf != nil) { // frames going out anyway carry the ack
		s.ack.now = false
		if buf == nil {
			buf = getBuf()
		}
		s.out.ack = scpbridge.TranAck{BootEpoch: s.epoch, LastSeq: s.ack.seq}
		*buf, _ = scpbridge.AppendFrame(*buf, &s.out.ack) // fixed size: cannot fail
		s.ack.sent, s.ack.last = s.ack.seq, s.ack.seq
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
