package sim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	sb "github.com/scpgate/scpgate/scpbridge"
)

// Session I/O sizes.
const (
	readBuffer  = 512 // bytes; host frames are small
	batchFrames = 256 // transactions per write, so acks are read between writes
	byeTimeout  = time.Second
)

// writeBufs pools write buffers: an idle controller holds none.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// closedCh is always ready; selecting on it means "keep flushing".
var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// sessionEnd says why a session ended and how to reconnect.
type sessionEnd struct {
	reason   string
	err      error
	welcomed bool          // the session was established: reset the backoff
	after    time.Duration // the host asked to wait this long (reject, bye)
	quick    bool          // reconnect soon without growing the backoff
}

// inFrame is one frame from the reader goroutine, payload copied.
type inFrame struct {
	h   sb.Header
	p   []byte
	err error
}

// link is one connection's session. Everything but the reader goroutine
// runs in the goroutine of Controller.Run, which owns all fields.
type link struct {
	c        *Controller
	conn     net.Conn
	sess     *sb.ControllerSession
	frames   chan inFrame
	done     chan struct{} // closed when the session ends: stops the reader
	epoch    uint32        // boot epoch the hello announced
	welcomed bool
	sendNext uint32 // next log serial to send
	hb       time.Duration
	offline  time.Duration
	lastTx   time.Time
	nonce    uint64
	answers  []answer // command answers waiting for CommandLatency
	wbuf     *[]byte  // pooled; frames queued for the next write
	tx       sb.Transaction
	resetNow bool        // a reset command was answered: end the session
	sent     []sentBatch // written, not yet acked (only with Config.AckLatency)
}

// connect dials, runs one session and reports how it ended.
func (c *Controller) connect(ctx context.Context) sessionEnd {
	// Dial on a short-lived goroutine: the dial path is deep, and the
	// long-lived goroutine of Run keeps whatever stack it grows to.
	type dialed struct {
		conn net.Conn
		err  error
	}
	ch := make(chan dialed, 1)
	go func() {
		conn, err := c.dial(ctx)
		ch <- dialed{conn, err}
	}()
	d := <-ch
	conn, err := d.conn, d.err
	if err != nil {
		return sessionEnd{reason: "dial", err: err}
	}
	now := time.Now()
	l := &link{
		c:      c,
		conn:   conn,
		sess:   sb.NewControllerSession(sb.Timing{Handshake: c.cfg.HandshakeTimeout}, now),
		frames: make(chan inFrame, 16),
		done:   make(chan struct{}),
		lastTx: now,
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		l.read()
	}()
	end := l.run(ctx)
	close(l.done)
	conn.Close()
	<-readerDone
	l.putBuf()
	if l.welcomed {
		c.mu.Lock()
		c.st.Connected = false
		c.mu.Unlock()
	}
	end.welcomed = l.welcomed
	return end
}

// dial connects to the target, from LocalAddr if set, through TLS if set.
func (c *Controller) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: c.cfg.DialTimeout}
	if c.cfg.LocalAddr != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(c.cfg.LocalAddr)}
	}
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Target)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", c.cfg.Target, err)
	}
	if c.cfg.TLS == nil {
		return conn, nil
	}
	tc := c.cfg.TLS.Clone()
	if tc.ServerName == "" {
		tc.ServerName, _, _ = net.SplitHostPort(c.cfg.Target)
	}
	tconn := tls.Client(conn, tc)
	hctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	if err := tconn.HandshakeContext(hctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", c.cfg.Target, err)
	}
	return tconn, nil
}

// read runs in its own goroutine: it reads frames and hands copies to the
// session loop until the connection fails or the session ends.
func (l *link) read() {
	r := sb.NewReader(l.conn, readBuffer)
	for {
		h, p, err := r.Next()
		f := inFrame{h: h, err: err}
		if err == nil && len(p) > 0 {
			f.p = append([]byte(nil), p...)
		}
		select {
		case l.frames <- f:
		case <-l.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// run is the session loop: hello, then frames, timers and log sending
// until the session ends.
func (l *link) run(ctx context.Context) sessionEnd {
	c := l.c
	c.mu.Lock()
	l.epoch = c.epoch
	hello := &sb.Hello{Serial: c.cfg.Serial, Model: c.cfg.Model, Firmware: c.cfg.Firmware, MAC: c.mac, BootEpoch: c.epoch, Log: c.txl.status(),
		Secret: c.cfg.Secret}
	c.mu.Unlock()
	if err := l.queue(hello); err != nil {
		return sessionEnd{reason: "hello", err: err}
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		c.tick(now)
		if end, stop := l.check(now); stop {
			return end
		}
		l.dueAnswers(now)
		more, err := l.flush(now)
		if err != nil {
			return sessionEnd{reason: "write", err: err}
		}
		if l.resetNow {
			l.bye(sb.ByeShutdown, "reset")
			return sessionEnd{reason: "reset command", quick: true}
		}
		timer.Reset(l.wake(now).Sub(now))
		var flushCh <-chan struct{}
		if more {
			flushCh = closedCh
		}
		select {
		case <-ctx.Done():
			l.bye(sb.ByeShutdown, "stopping")
			return sessionEnd{reason: "stopped"}
		case f := <-l.frames:
			if end, stop := l.handle(f, time.Now()); stop {
				return end
			}
		case <-timer.C:
		case <-c.kick:
		case <-flushCh:
		}
	}
}

// wake returns when the loop must next look at its timers.
func (l *link) wake(now time.Time) time.Time {
	w := l.sess.Deadline()
	if l.welcomed {
		if p := l.lastTx.Add(l.hb); p.Before(w) {
			w = p
		}
	}
	if len(l.answers) > 0 && l.answers[0].due.Before(w) {
		w = l.answers[0].due
	}
	if m := l.c.mix.wake(); !m.IsZero() && m.Before(w) {
		w = m
	}
	if w.Before(now) {
		w = now
	}
	return w
}

// check ends the session when the host fell silent, the handshake timed
// out, or the controller was restarted.
func (l *link) check(now time.Time) (sessionEnd, bool) {
	c := l.c
	c.mu.Lock()
	restarted := c.epoch != l.epoch
	c.mu.Unlock()
	if restarted {
		return sessionEnd{reason: "restart", quick: true}, true
	}
	if now.Before(l.sess.Deadline()) || len(l.frames) > 0 {
		return sessionEnd{}, false // frames waiting (a long write) prove the host alive
	}
	if !l.welcomed {
		return sessionEnd{reason: "handshake timeout"}, true
	}
	c.mu.Lock()
	c.st.Offline++
	c.mu.Unlock()
	l.bye(sb.ByeHeartbeat, "host silent")
	return sessionEnd{reason: "host offline"}, true
}

// handle acts on one frame from the host.
func (l *link) handle(f inFrame, now time.Time) (sessionEnd, bool) {
	if f.err != nil {
		if errors.Is(f.err, io.EOF) {
			return sessionEnd{reason: "host closed"}, true
		}
		return sessionEnd{reason: "read", err: f.err}, true
	}
	t, err := l.sess.Receive(now, f.h, f.p)
	if err != nil {
		if t == sb.FrameCommand && l.welcomed && len(f.p) >= 4 {
			l.refuse(err, now) // a bad body is the command's fault, not the session's
			return sessionEnd{}, false
		}
		l.bye(sb.ByeProtocol, err.Error())
		return sessionEnd{reason: "protocol", err: err}, true
	}
	c := l.c
	switch t {
	case sb.FrameWelcome:
		l.established(now)
	case sb.FrameReject:
		c.mu.Lock()
		c.st.Rejected++
		c.mu.Unlock()
		r := l.sess.Reject
		return sessionEnd{reason: "rejected: " + r.Reason.String(), after: time.Duration(r.RetryAfterMS) * time.Millisecond}, true
	case sb.FrameTranAck:
		c.mu.Lock()
		a := l.sess.Ack
		if a.BootEpoch == c.epoch {
			c.st.Acked += uint64(c.txl.ack(a.LastSeq))
			c.reportLostLocked()
		}
		c.mu.Unlock()
		if a.BootEpoch == l.epoch {
			l.ackedTransactions(a.LastSeq, now)
		}
	case sb.FrameCommand:
		l.command(now)
	case sb.FramePing:
		if err := l.queue(&sb.Pong{Nonce: l.sess.Ping.Nonce}); err != nil {
			return sessionEnd{reason: "pong", err: err}, true
		}
	case sb.FrameBye:
		b := l.sess.Bye
		return sessionEnd{reason: "host bye: " + b.Reason.String(), after: time.Duration(b.ReconnectAfterMS) * time.Millisecond}, true
	}
	return sessionEnd{}, false
}

// established starts the established phase: heartbeat timing from the
// welcome, a log_over_limit report if the log overflowed, and sending from
// the oldest unacknowledged transaction.
func (l *link) established(now time.Time) {
	w := l.sess.Welcome
	l.welcomed = true
	l.hb = time.Duration(w.HeartbeatMS) * time.Millisecond
	l.offline = time.Duration(w.OfflineMS) * time.Millisecond
	c := l.c
	c.mu.Lock()
	c.st.Connected = true
	c.st.Sessions++
	if c.cfg.LogCommEvents && c.epoch == l.epoch {
		c.logLocked(entry{timeMS: now.UnixMilli(), src: sb.SourceController, typ: sb.TranSystem, code: sb.SystemCommOnline}, false)
	}
	c.reportLostLocked()
	l.sendNext = c.txl.first()
	c.mu.Unlock()
	c.log.Debug().Uint64("session", w.SessionID).Uint32("from", l.sendNext).Msg("session established")
}

// queue appends m to the frames of the next write.
func (l *link) queue(m sb.Message) error {
	if l.wbuf == nil {
		l.wbuf = writeBufs.Get().(*[]byte)
	}
	b, err := sb.AppendFrame(*l.wbuf, m)
	*l.wbuf = b
	if err != nil {
		return fmt.Errorf("encode %s: %w", m.FrameType(), err)
	}
	return nil
}

func (l *link) putBuf() {
	if l.wbuf != nil {
		*l.wbuf = (*l.wbuf)[:0]
		writeBufs.Put(l.wbuf)
		l.wbuf = nil
	}
}

// flush writes the queued frames plus up to batchFrames transactions from
// the log, or a ping when the controller has been silent for a heartbeat.
// It reports whether more of the log is waiting.
func (l *link) flush(now time.Time) (more bool, err error) {
	c := l.c
	from, to := l.sendNext, l.sendNext
	if l.welcomed {
		c.mu.Lock()
		if c.epoch == l.epoch {
			l.sendNext = max(l.sendNext, c.txl.first())
			from = l.sendNext
			for k := 0; l.sendNext <= c.txl.lastLogged && k < batchFrames && err == nil; k++ {
				c.txl.at(l.sendNext).fill(&l.tx, l.sendNext)
				err = l.queue(&l.tx)
				l.sendNext++
			}
			more = l.sendNext <= c.txl.lastLogged
			to = l.sendNext
		}
		c.mu.Unlock()
		if err != nil {
			return false, err
		}
		if l.wbuf == nil && now.Sub(l.lastTx) >= l.hb {
			l.nonce++
			if err := l.queue(&sb.Ping{Nonce: l.nonce}); err != nil {
				return false, err
			}
			c.mu.Lock()
			c.st.PingsSent++
			c.mu.Unlock()
		}
	}
	if l.wbuf == nil {
		return more, nil
	}
	timeout := l.offline
	if !l.welcomed {
		timeout = c.cfg.HandshakeTimeout
	}
	err = l.write(now, timeout)
	if err == nil && to > from {
		l.sentTransactions(from, to-1, now)
	}
	return more, err
}

// write sends the queued frames with a write deadline.
func (l *link) write(now time.Time, timeout time.Duration) error {
	defer l.putBuf()
	if err := l.conn.SetWriteDeadline(now.Add(timeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := l.conn.Write(*l.wbuf); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	l.lastTx = now
	l.sess.Sent(now)
	return nil
}

// bye sends a bye (and whatever is queued) on a best-effort basis.
func (l *link) bye(reason sb.ByeReason, text string) {
	if len(text) > sb.MaxTextLen {
		text = text[:sb.MaxTextLen]
	}
	if l.queue(&sb.Bye{Reason: reason, Text: text}) != nil {
		l.putBuf()
		return
	}
	_ = l.write(time.Now(), byeTimeout)
}
