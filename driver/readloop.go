package driver

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/scpbridge"
)

// readErrReason classifies an error of the frame reader.
func (s *session) readErrReason(err error) scpgate.CloseReason {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, scpbridge.ErrTruncated):
		return scpgate.ReasonControllerClosed
	case errors.Is(err, os.ErrDeadlineExceeded):
		if s.loop.hs.State() == scpbridge.StateHandshake {
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
		if s.loop.rd == nil {
			s.releaseSpare() // the read may wait: tokens taken ahead go back
		}
		h, p, err := s.next()
		now := time.Now()
		s.burst.Store(err == nil && s.loop.rd.rd.Buffered() > 0)
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
		t, err := s.loop.hs.Receive(now, h, p)
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
			if s.send(&scpbridge.Pong{Nonce: s.loop.hs.Ping.Nonce}) != nil {
				return
			}
		case scpbridge.FrameCommandStatus:
			s.d.cmds.Status(s, &s.loop.hs.Status)
		case scpbridge.FramePong:
		case scpbridge.FrameBye:
			s.log.Info().Stringer("bye", s.loop.hs.Bye.Reason).Str("text", s.loop.hs.Bye.Text).Msg("controller said bye")
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
	dl := s.loop.hs.Deadline()
	if r := s.loop.resumedAt.Add(s.d.opts.Timing.OfflineTime); r.After(dl) {
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
