package driver

import (
	"cmp"
	"errors"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/scpbridge"
)

// busyRetryAfter is the least retry_after of a reject busy (the driver is
// at Options.MaxSessions): time for the load balancer to send the
// controller elsewhere, or for sessions here to end.
const busyRetryAfter = time.Second

// handshake reads the hello and answers with a welcome or a reject. It
// reports whether the session is established; if not, the connection is
// closed and counted.
func (s *session) handshake() bool {
	if err := s.conn.SetReadDeadline(s.loop.hs.Deadline()); err != nil {
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
	hello := &s.loop.hs.Hello
	s.serial, s.model, s.firmware, s.epoch = hello.Serial, hello.Model, hello.Firmware, hello.BootEpoch
	if why, text, ok := s.admit(); !ok {
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
	if err := s.queue(s.loop.hs.Welcome(s.idNum, now)); err != nil {
		s.d.unregister(s)
		s.mu.Lock()
		reason := s.life.reason // taken over already, or the driver closing
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
		if _, err := s.loop.hs.Receive(now, h, p); err != nil {
			return now, err
		}
		if s.loop.hs.State() == scpbridge.StateEstablished {
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
