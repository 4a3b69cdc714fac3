package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
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

// aLongTimeAgo is a deadline in the past, used to wake a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// session is one controller connection. The handshake runs on the accept
// goroutine (serve), the read loop on a fresh one; a writer goroutine
// (writeLoop) owns the socket writes while there is something to write and
// stops when the queue is empty, so that an idle session holds one
// goroutine; ctx cancels both.
//
// Its fields are grouped by owner: set once, owned by the read loop,
// synchronized by themselves (atomics and channels), or guarded by mu
// (one mutex for all of inflight, out, ack, life and own).
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

	loop readLoopState // owned by the read loop

	// synchronized by themselves
	presence  atomic.Int32  // presenceOn, or held back (see identity.go)
	lastWrite atomic.Int64  // unix ns of the last write, for heartbeats (heartbeat.go)
	welcomed  atomic.Bool   // the welcome is queued: heartbeats may ping
	burst     atomic.Bool   // the read loop holds more frames past the current one (ack.go)
	windowCh  chan struct{} // cap 1: confirmations freed window space (inflight.go)
	startDone chan struct{} // closed when the presence start work finished

	mu       sync.Mutex // guards the groups below
	inflight inflight   // transactions on their way to JetStream (inflight.go)
	out      outQueue   // frames waiting for the writer (writer.go)
	ack      ackState   // the cumulative ack to send (ack.go)
	life     lifecycle  // closing and draining
	own      ownership  // the scp_sessions record (presence.go)
}

// readLoopState is what only the read loop uses (and the handshake before
// it, on the accept goroutine).
type readLoopState struct {
	hs        *scpbridge.HostSession
	rd        *frameReader    // nil while idle (see readbuf.go)
	raw       syscall.RawConn // nil when the socket cannot be waited on without a reader
	resumedAt time.Time       // when the loop last resumed after waiting for the window
	spare     int             // budget tokens taken ahead for transactions already read
}

// lifecycle is how the session ends; guarded by session.mu.
type lifecycle struct {
	closing bool
	reason  scpgate.CloseReason
	byeSent bool      // a bye was queued: linger after the final flush
	noFlush bool      // skip the final flush (slow consumer)
	quiesce bool      // draining: stop publishing, bye once everything is acked (drain.go)
	drainAt time.Time // when quiesce was set
}

// ownership is the session's hold on its scp_sessions record (see
// presence.go); guarded by session.mu.
type ownership struct {
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
	s.loop.raw = rawConnOf(conn)
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
	s.loop.hs = scpbridge.NewHostSession(s.d.opts.Timing, s.since)
	if !s.handshake() {
		s.d.unregister(s)
		return
	}
	s.d.stats.established.Add(1)
	s.log.Info().Str("model", s.model).Str("firmware", s.firmware).Uint32("boot_epoch", s.epoch).
		Uint32("last_logged", s.loop.hs.Hello.Log.LastLogged).Uint32("last_acked", s.loop.hs.Hello.Log.LastAcked).
		Msg("session started")
	s.startPresence()
	s.d.cmds.SessionStart(s)
	s.d.connWG.Go(func() { // the accept goroutine's count is still held
		s.readLoop()
		s.finish()
	})
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

// close ends the session with reason; the first reason wins. bye, when
// set, is queued (past the queue limit) for the writer's final flush. It
// never blocks: it cancels the session and wakes its read loop.
func (s *session) close(reason scpgate.CloseReason, bye *scpbridge.Bye) {
	s.mu.Lock()
	if s.life.closing {
		s.mu.Unlock()
		return
	}
	s.life.closing, s.life.reason = true, reason
	if bye != nil && reason != scpgate.ReasonWriteError && reason != scpgate.ReasonSlowConsumer {
		if s.appendLocked(bye) == nil {
			s.life.byeSent = true
		}
	}
	if reason == scpgate.ReasonSlowConsumer || reason == scpgate.ReasonWriteError {
		s.life.noFlush = true
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
	reason, bye := s.life.reason, s.life.byeSent
	s.mu.Unlock()
	if bye {
		s.linger()
	}
	s.conn.Close()
	s.releasePublishes()
	s.d.stats.closed(reason)
	s.d.cmds.SessionEnd(s)
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
	if s.inflight.tracker != nil {
		pending = s.inflight.tracker.Pending()
	}
	return SessionInfo{
		Serial: s.serial, Session: s.id, Remote: s.remote, Since: s.since.UTC(),
		Model: s.model, Firmware: s.firmware, BootEpoch: s.epoch,
		LastAcked: s.ack.last, Pending: pending,
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
