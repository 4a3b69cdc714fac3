package driver

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/streams"
)

// Session errors.
var (
	// errSessionClosed is returned by send on a session that is closing.
	errSessionClosed = errors.New("driver: session closed")
	// errSlowConsumer is returned by send when the session's queue was full;
	// the session is closed with ReasonSlowConsumer.
	errSlowConsumer = errors.New("driver: send queue full")
)

// lingerTime bounds how long a closing session reads (and drops) what the
// controller still sends after our bye, so the bye is not lost to a reset.
const lingerTime = time.Second

// busyRetryAfter is the least retry_after of a reject busy (the driver is
// at Options.MaxSessions): time for the load balancer to send the
// controller elsewhere, or for sessions here to end.
const busyRetryAfter = time.Second

// aLongTimeAgo is a deadline in the past, used to wake a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// session is one controller connection. The handshake runs on the accept
// goroutine (serve), the read loop on a fresh one; a writer goroutine
// (writeLoop) owns the socket writes while there is something to write and
// stops when the queue is empty, so that an idle session holds one
// goroutine; ctx cancels both.
type session struct {
	d      *Driver
	conn   net.Conn
	remote string
	since  time.Time

	ctx    context.Context
	cancel context.CancelFunc

	// set during the handshake, then read-only
	id       string // session id (16 hex digits)
	idNum    uint64
	serial   string
	model    string
	firmware string
	epoch    uint32
	promoted chan struct{}  // closed when a held session's presence began (see identity.go)
	vouched  bool           // its hello carried the serial's secret (see secretAdmits)
	log      zerolog.Logger // adds remote, session and serial (see Run)

	// owned by the read loop
	hs        *scpbridge.HostSession
	rd        *frameReader    // nil while idle (see readbuf.go)
	raw       syscall.RawConn // nil when the socket cannot be waited on without a reader
	resumedAt time.Time       // when the loop last resumed after waiting for the window
	spare     int             // budget tokens taken ahead for transactions already read

	presence  atomic.Int32  // presenceOn, or held back (see identity.go)
	lastWrite atomic.Int64  // unix ns of the last write, for heartbeats
	welcomed  atomic.Bool   // the welcome is queued: heartbeats may ping
	burst     atomic.Bool   // the read loop holds more frames past the current one
	windowCh  chan struct{} // cap 1: confirmations freed window space
	startDone chan struct{} // closed when the presence start work finished

	mu sync.Mutex // guards the fields below
	// publishing (see publish.go)
	tracker    *scpbridge.AckTracker // allocated on the first transaction
	win        *pubWindow            // allocated on the first transaction
	nextTicket uint64
	retrying   bool // failed or queued publishes wait for the retrier
	holding    int  // unconfirmed pubs holding driver tokens
	confirms   uint64
	ended      bool // publishing state released; late PubAcks are ignored
	// writer queue (see writer.go)
	out       *[]byte // encoded frames not yet taken by the writer
	outFrames int
	ackSeq    uint32 // newest cumulative ack to send
	ackSent   uint32 // newest ack handed to the writer
	lastAcked uint32 // newest ack sent, for SessionInfo
	writing   bool   // a writer goroutine runs
	// ackDeferred: the session waits in the driver's ack queue; ackNow:
	// the newest ack is due (see ackDueLocked).
	ackDeferred, ackNow bool
	// writerExited, when set, is closed by the writer as it stops.
	writerExited chan struct{}
	pingFrame    scpbridge.Ping    // the heartbeat's frame
	ackFrame     scpbridge.TranAck // flush's frame
	// lifecycle
	closing     bool
	reason      scpgate.CloseReason
	byeSent     bool      // a bye was queued: linger after the final flush
	noFlush     bool      // skip the final flush (slow consumer)
	quiesce     bool      // draining: stop publishing, bye once everything is acked
	drainAt     time.Time // when quiesce was set
	kvRev       uint64
	reasserting bool   // a rewrite of the scp_sessions record is under way
	foreign     uint64 // newest foreign scp_sessions revision seen before kvRev was known
}

func newSession(d *Driver, conn net.Conn) *session {
	now := time.Now()
	s := &session{
		d:         d,
		conn:      conn,
		remote:    conn.RemoteAddr().String(),
		since:     now,
		windowCh:  make(chan struct{}, 1),
		startDone: make(chan struct{}),
	}
	s.idNum = rand.Uint64()
	s.id = fmt.Sprintf("%016x", s.idNum)
	// A hook rather than With: With allocates a 500-byte context buffer
	// per logger, which every idle session would keep.
	s.log = d.log.Hook(logFields{s})
	s.ctx, s.cancel = context.WithCancel(d.bgCtx)
	s.raw = rawConnOf(conn)
	if tc, ok := conn.(interface{ SetWriteBuffer(int) error }); ok && d.opts.WriteBuffer > 0 {
		_ = tc.SetWriteBuffer(d.opts.WriteBuffer)
	}
	return s
}

// serve runs the handshake on the accept goroutine. The read loop and the
// end of the session then run on a fresh goroutine: the handshake's
// logging and encoding grew this one's stack, which an idle session would
// keep for as long as it lives.
func (s *session) serve() {
	defer s.d.connWG.Done()
	s.hs = scpbridge.NewHostSession(s.d.opts.Timing, s.since)
	if !s.handshake() {
		s.d.unregister(s)
		return
	}
	s.d.stats.established.Add(1)
	s.log.Info().Str("model", s.model).Str("firmware", s.firmware).Uint32("boot_epoch", s.epoch).
		Uint32("last_logged", s.hs.Hello.Log.LastLogged).Uint32("last_acked", s.hs.Hello.Log.LastAcked).
		Msg("session started")
	s.startPresence()
	s.d.hooks.sessionStart(s)
	s.d.connWG.Add(1) // the accept goroutine's count is still held
	go func() {
		defer s.d.connWG.Done()
		s.readLoop()
		s.finish()
	}()
}

// logFields adds the session's remote address, id and (once known) serial
// to every log line of the session.
type logFields struct{ s *session }

// Run implements zerolog.Hook.
func (f logFields) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str("remote", f.s.remote).Str("session", f.s.id)
	if f.s.serial != "" {
		e.Str("serial", f.s.serial)
	}
}

// subject returns the session's event subject of kind k.
func (s *session) subject(k scpgate.Kind) string {
	subj, _ := streams.EventSubject(s.serial, k) // serial validated in the handshake
	return subj
}

// handshake reads the hello and answers with a welcome or a reject. It
// reports whether the session is established; if not, the connection is
// closed and counted.
func (s *session) handshake() bool {
	if err := s.conn.SetReadDeadline(s.hs.Deadline()); err != nil {
		return s.endEarly(scpgate.ReasonControllerClosed, err)
	}
	if s.ctx.Err() != nil {
		return s.endEarly(scpgate.ReasonShutdown, s.ctx.Err())
	}
	now, err := s.readHello()
	if err != nil && s.ctx.Err() != nil {
		return s.endEarly(scpgate.ReasonShutdown, err)
	}
	if err != nil {
		if errors.Is(err, scpbridge.ErrUnsupportedVersion) {
			return s.reject(scpbridge.RejectUnsupportedVersion, err.Error())
		}
		return s.endEarly(s.readErrReason(err), err)
	}
	hello := &s.hs.Hello
	s.serial, s.model, s.firmware, s.epoch = hello.Serial, hello.Model, hello.Firmware, hello.BootEpoch
	if err := streams.ValidSerial(s.serial); err != nil {
		return s.reject(scpbridge.RejectBadSerial, err.Error())
	}
	if s.d.opts.RequireCertSerial && !s.certAdmits() {
		return s.reject(scpbridge.RejectCertificateMismatch, "certificate identity differs from the serial")
	}
	if s.d.opts.Admit != nil && !s.d.opts.Admit(s.serial) {
		return s.reject(scpbridge.RejectNotAllowed, "serial not admitted")
	}
	if !s.secretAdmits() {
		return s.reject(scpbridge.RejectNotAllowed, "secret missing or wrong")
	}
	if !s.d.nc.IsConnected() {
		// Sessions already open stay open and stop being acknowledged; a
		// new one is better served by a driver that can store its events.
		return s.reject(scpbridge.RejectUnavailable, "event store unavailable")
	}
	if s.d.full(s.serial) {
		return s.reject(scpbridge.RejectBusy, "driver at its session cap")
	}
	if why, text, ok := s.admitIdentity(); !ok {
		return s.reject(why, text)
	}
	if why, ok := s.d.register(s); !ok {
		text := "driver draining"
		if why == scpbridge.RejectBusy {
			text = "driver at its session cap"
		}
		return s.reject(why, text)
	}
	if beforeWelcome != nil {
		beforeWelcome()
	}
	// Nothing was written yet: the welcome goes first, written on this
	// goroutine (no writer needs to start for it).
	if err := s.queue(s.hs.Welcome(s.idNum, now)); err != nil {
		s.d.unregister(s)
		s.mu.Lock()
		reason := s.reason // taken over already, or the driver closing
		s.mu.Unlock()
		return s.endEarly(cmp.Or(reason, scpgate.ReasonShutdown), err)
	}
	// Only now may the heartbeat loop queue a ping: after the welcome, as
	// protocol 7.1 requires of the first frame.
	s.welcomed.Store(true)
	s.writeNow()
	return true
}

// beforeWelcome, when set (tests only, see export_test.go), runs between
// a session's registration and its welcome.
var beforeWelcome func()

// readHello reads frames until the hello, skipping frames of unknown
// types as the protocol requires; any other frame is an error.
func (s *session) readHello() (time.Time, error) {
	for {
		h, p, err := s.next()
		now := time.Now()
		if err != nil {
			return now, err
		}
		if _, err := s.hs.Receive(now, h, p); err != nil {
			return now, err
		}
		if s.hs.State() == scpbridge.StateEstablished {
			return now, nil
		}
		s.d.stats.unknown.Add(1)
	}
}

// reject refuses the handshake: the reject frame is written directly (no
// writer runs yet), then the connection is closed.
func (s *session) reject(why scpbridge.RejectReason, text string) bool {
	s.d.stats.rejected(why)
	retry := uint32(0)
	switch why {
	case scpbridge.RejectDraining, scpbridge.RejectUnavailable:
		retry = uint32(s.d.reconnectAfter() / time.Millisecond)
	case scpbridge.RejectBusy:
		retry = uint32((busyRetryAfter + s.d.reconnectAfter()) / time.Millisecond)
	}
	frame, err := scpbridge.AppendFrame(nil, &scpbridge.Reject{Reason: why, RetryAfterMS: retry, Text: printable(text)})
	if err == nil {
		_ = s.conn.SetWriteDeadline(time.Now().Add(s.d.opts.WriteTimeout))
		if _, err := s.conn.Write(frame); err == nil {
			s.linger()
		}
	}
	s.log.Info().Stringer("reject", why).Str("text", text).Msg("session rejected")
	s.d.stats.closed(scpgate.ReasonRejected)
	s.conn.Close()
	return false
}

// endEarly closes a connection that never became a session.
func (s *session) endEarly(reason scpgate.CloseReason, err error) bool {
	s.conn.Close()
	s.d.stats.closed(reason)
	ev := s.log.Info()
	if reason == scpgate.ReasonProtocolError {
		ev = s.log.Warn()
	}
	ev.Str("reason", string(reason)).AnErr("cause", err).Msg("connection closed before session start")
	return false
}

// readErrReason classifies an error of the frame reader.
func (s *session) readErrReason(err error) scpgate.CloseReason {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, scpbridge.ErrTruncated):
		return scpgate.ReasonControllerClosed
	case errors.Is(err, os.ErrDeadlineExceeded):
		if s.hs.State() == scpbridge.StateHandshake {
			return scpgate.ReasonHandshakeTimeout
		}
		return scpgate.ReasonHeartbeatTimeout
	case errors.Is(err, scpbridge.ErrBadMagic), errors.Is(err, scpbridge.ErrUnsupportedVersion),
		errors.Is(err, scpbridge.ErrFrameTooLarge), errors.Is(err, scpbridge.ErrTruncated),
		errors.Is(err, scpbridge.ErrBadField), errors.Is(err, scpbridge.ErrUnexpectedFrame):
		return scpgate.ReasonProtocolError
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return scpgate.ReasonHeartbeatTimeout
	}
	if tc, ok := s.conn.(*tls.Conn); ok && !tc.ConnectionState().HandshakeComplete {
		return scpgate.ReasonProtocolError // not TLS, or a failed TLS handshake
	}
	return scpgate.ReasonControllerClosed // connection reset and the like
}

// readLoop reads frames until the session closes.
func (s *session) readLoop() {
	var armed time.Time // the read deadline set on the socket
	for {
		// Setting a deadline costs about as much as reading a frame, so it
		// is moved only when it falls more than deadlineSlack behind; one
		// that fires early is re-armed below.
		if dl := s.readDeadline(); dl.Before(armed) || dl.Sub(armed) > deadlineSlack {
			if err := s.conn.SetReadDeadline(dl); err != nil {
				s.close(scpgate.ReasonControllerClosed, nil)
				return
			}
			armed = dl
		}
		if s.ctx.Err() != nil {
			return
		}
		s.releaseReader()
		if s.rd == nil {
			s.releaseSpare() // the read may wait: tokens taken ahead go back
		}
		h, p, err := s.next()
		now := time.Now()
		s.burst.Store(err == nil && s.rd.rd.Buffered() > 0)
		if err != nil {
			if s.ctx.Err() != nil {
				return // closed by someone else; the reason is set
			}
			if errors.Is(err, os.ErrDeadlineExceeded) && now.Before(s.readDeadline()) {
				armed = time.Time{} // early: the controller was heard since
				continue
			}
			s.readFailed(err)
			return
		}
		t, err := s.hs.Receive(now, h, p)
		if err != nil {
			s.log.Warn().Err(err).Msg("protocol error")
			s.close(scpgate.ReasonProtocolError, &scpbridge.Bye{Reason: scpbridge.ByeProtocol, Text: printable(err.Error())})
			return
		}
		switch t {
		case scpbridge.FrameTransaction:
			if !s.transaction(now) {
				return
			}
		case scpbridge.FramePing:
			if s.send(&scpbridge.Pong{Nonce: s.hs.Ping.Nonce}) != nil {
				return
			}
		case scpbridge.FrameCommandStatus:
			s.d.hooks.status(s, &s.hs.Status)
		case scpbridge.FramePong:
		case scpbridge.FrameBye:
			s.log.Info().Stringer("bye", s.hs.Bye.Reason).Str("text", s.hs.Bye.Text).Msg("controller said bye")
			s.close(scpgate.ReasonControllerClosed, nil)
			return
		default:
			s.d.stats.unknown.Add(1)
		}
	}
}

// deadlineSlack is how far the socket's read deadline may lag behind the
// session's (see readLoop).
const deadlineSlack = time.Second

// readDeadline is when the controller has been silent for too long.
func (s *session) readDeadline() time.Time {
	dl := s.hs.Deadline()
	if r := s.resumedAt.Add(s.d.opts.Timing.OfflineTime); r.After(dl) {
		dl = r // the loop was not reading: do not count that as silence
	}
	return dl
}

// readFailed closes the session after a read error.
func (s *session) readFailed(err error) {
	reason := s.readErrReason(err)
	var bye *scpbridge.Bye
	switch reason {
	case scpgate.ReasonProtocolError:
		s.log.Warn().Err(err).Msg("protocol error")
		bye = &scpbridge.Bye{Reason: scpbridge.ByeProtocol, Text: printable(err.Error())}
	case scpgate.ReasonHeartbeatTimeout:
		bye = &scpbridge.Bye{Reason: scpbridge.ByeHeartbeat, Text: "silent past the offline time"}
	}
	s.close(reason, bye)
}

// close ends the session with reason; the first reason wins. bye, when
// set, is queued (past the queue limit) for the writer's final flush. It
// never blocks: it cancels the session and wakes its read loop.
func (s *session) close(reason scpgate.CloseReason, bye *scpbridge.Bye) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.closing, s.reason = true, reason
	if bye != nil && reason != scpgate.ReasonWriteError && reason != scpgate.ReasonSlowConsumer {
		if s.appendLocked(bye) == nil {
			s.byeSent = true
		}
	}
	if reason == scpgate.ReasonSlowConsumer || reason == scpgate.ReasonWriteError {
		s.noFlush = true
	}
	s.mu.Unlock()
	s.cancel()
	_ = s.conn.SetReadDeadline(aLongTimeAgo)
	if reason == scpgate.ReasonSlowConsumer {
		_ = s.conn.SetWriteDeadline(aLongTimeAgo) // do not wait for a reader that stopped
	}
}

// finish runs after the read loop: it waits for the writer's final flush,
// lingers briefly after a bye, closes the connection, releases what the
// session held and records its end.
func (s *session) finish() {
	s.d.unregister(s)                    // a reconnect of the controller need not wait for the linger
	s.close(scpgate.ReasonShutdown, nil) // no-op: whatever ended the read loop closed the session
	s.finalFlush()
	s.mu.Lock()
	reason, bye := s.reason, s.byeSent
	s.mu.Unlock()
	if bye {
		s.linger()
	}
	s.conn.Close()
	s.releasePublishes()
	s.d.stats.closed(reason)
	s.d.hooks.sessionEnd(s, reason)
	s.endPresence(reason)
	ev := s.log.Info()
	switch reason {
	case scpgate.ReasonProtocolError, scpgate.ReasonSlowConsumer, scpgate.ReasonWriteError, scpgate.ReasonHeartbeatTimeout:
		ev = s.log.Warn()
	}
	ev.Str("reason", string(reason)).Dur("duration", time.Since(s.since)).Msg("session ended")
}

// linger half-closes the connection and reads what the peer still sends
// for up to lingerTime, so that a frame written just before (a bye or a
// reject) reaches the controller instead of being discarded by a reset.
func (s *session) linger() {
	if cw, ok := s.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = s.conn.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.Copy(io.Discard, s.conn)
}

// info describes the session.
func (s *session) info() SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	pending := 0
	if s.tracker != nil {
		pending = s.tracker.Pending()
	}
	return SessionInfo{
		Serial: s.serial, Session: s.id, Remote: s.remote, Since: s.since.UTC(),
		Model: s.model, Firmware: s.firmware, BootEpoch: s.epoch,
		LastAcked: s.lastAcked, Pending: pending,
	}
}

// printable cuts text to what a protocol text field accepts.
func printable(text string) string {
	b := make([]byte, 0, min(len(text), scpbridge.MaxTextLen))
	for i := 0; i < len(text) && len(b) < scpbridge.MaxTextLen; i++ {
		if c := text[i]; c >= 0x20 && c <= 0x7e {
			b = append(b, c)
		}
	}
	return string(b)
}
