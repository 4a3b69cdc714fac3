package scpbridge

import (
	"fmt"
	"time"
)

// Session timing defaults (see docs/protocol.md, "Session rules").
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultHeartbeat        = 5 * time.Second
	DefaultOfflineTime      = 15 * time.Second
)

// Timing is the liveness contract of a session.
type Timing struct {
	Handshake   time.Duration // hello (host side) or welcome (controller side) must arrive within this
	Heartbeat   time.Duration // a side that has sent nothing for this long sends a ping
	OfflineTime time.Duration // a peer silent for this long is offline
}

// WithDefaults fills zero fields with the defaults.
func (t Timing) WithDefaults() Timing {
	if t.Handshake <= 0 {
		t.Handshake = DefaultHandshakeTimeout
	}
	if t.Heartbeat <= 0 {
		t.Heartbeat = DefaultHeartbeat
	}
	if t.OfflineTime <= t.Heartbeat {
		t.OfflineTime = 3 * t.Heartbeat
	}
	return t
}

// State is where a session stands.
type State uint8

// Session states.
const (
	StateHandshake   State = iota // waiting for hello (host) or welcome (controller)
	StateEstablished              // frames flow both ways
	StateClosed                   // bye or reject seen; nothing more is accepted
)

func (s State) String() string {
	switch s {
	case StateHandshake:
		return "handshake"
	case StateEstablished:
		return "established"
	}
	return "closed"
}

// liveness tracks when a peer was last heard from and when we last spoke.
type liveness struct {
	timing  Timing
	state   State
	started time.Time
	lastRx  time.Time
	lastTx  time.Time
	unknown uint64
}

// State returns the session state.
func (l *liveness) State() State { return l.state }

// UnknownFrames counts frames of unknown types that were skipped.
func (l *liveness) UnknownFrames() uint64 { return l.unknown }

// Deadline is the instant after which the peer counts as gone: the end of
// the handshake window, then last-heard plus the offline time. A reader
// sets it as the connection's read deadline.
func (l *liveness) Deadline() time.Time {
	if l.state == StateHandshake {
		return l.started.Add(l.timing.Handshake)
	}
	return l.lastRx.Add(l.timing.OfflineTime)
}

// Sent records that a frame was written at now (for heartbeat timing).
func (l *liveness) Sent(now time.Time) { l.lastTx = now }

// PingDue reports whether we have been silent for a heartbeat interval.
func (l *liveness) PingDue(now time.Time) bool {
	return l.state == StateEstablished && now.Sub(l.lastTx) >= l.timing.Heartbeat
}

func unexpected(t FrameType, s State) error {
	return fmt.Errorf("%w: %s in state %s", ErrUnexpectedFrame, t, s)
}

// HostSession is the host (driver) end of a session as a state machine. It
// does no I/O: the caller reads frames, passes them to Receive, and acts on
// the returned type using the decoded value in the matching field. Decoded
// values are reused from frame to frame; transactions decode without
// allocating.
type HostSession struct {
	liveness
	Hello  Hello         // valid after FrameHello
	Tx     Transaction   // valid after FrameTransaction
	Status CommandStatus // valid after FrameCommandStatus
	Ping   Ping          // valid after FramePing: answer with Pong{Nonce}
	Pong   Pong          // valid after FramePong
	Bye    Bye           // valid after FrameBye
}

// NewHostSession starts a host session at now, waiting for hello.
func NewHostSession(t Timing, now time.Time) *HostSession {
	t = t.WithDefaults()
	return &HostSession{liveness: liveness{timing: t, started: now, lastRx: now, lastTx: now}}
}

// Timing returns the session's timing.
func (s *HostSession) Timing() Timing { return s.timing }

// Welcome returns the welcome that accepts this session.
func (s *HostSession) Welcome(sessionID uint64, now time.Time) *Welcome {
	return &Welcome{
		SessionID:   sessionID,
		HeartbeatMS: uint32(s.timing.Heartbeat / time.Millisecond),
		OfflineMS:   uint32(s.timing.OfflineTime / time.Millisecond),
		HostTimeMS:  now.UnixMilli(),
	}
}

// Receive takes one frame from the controller at now. It returns the frame
// type on success. Unknown frame types are skipped (counted in
// UnknownFrames) and return their type with a nil error. Any error means
// the session must end with a protocol error.
func (s *HostSession) Receive(now time.Time, h Header, payload []byte) (FrameType, error) {
	s.lastRx = now
	t := h.Type
	if !t.Known() {
		s.unknown++
		return t, nil
	}
	switch s.state {
	case StateHandshake:
		if t != FrameHello {
			return t, unexpected(t, s.state)
		}
		if err := s.Hello.UnmarshalPayloadMinor(h.Minor(), payload); err != nil {
			return t, err
		}
		s.state = StateEstablished
		return t, nil
	case StateEstablished:
		switch t {
		case FrameTransaction:
			prev := s.Tx.Seq
			if err := s.Tx.UnmarshalPayload(payload); err != nil {
				return t, err
			}
			if prev != 0 && s.Tx.Seq <= prev {
				return t, &FieldError{Frame: t, Field: "seq", Reason: fmt.Sprintf("%d does not follow %d", s.Tx.Seq, prev), Err: ErrBadField}
			}
			return t, nil
		case FrameCommandStatus:
			return t, s.Status.UnmarshalPayload(payload)
		case FramePing:
			return t, s.Ping.UnmarshalPayload(payload)
		case FramePong:
			return t, s.Pong.UnmarshalPayload(payload)
		case FrameBye:
			if err := s.Bye.UnmarshalPayload(payload); err != nil {
				return t, err
			}
			s.state = StateClosed
			return t, nil
		}
	}
	return t, unexpected(t, s.state)
}

// ControllerSession is the controller end of a session as a state machine,
// used by the simulator. Like HostSession it does no I/O.
type ControllerSession struct {
	liveness
	Welcome Welcome // valid after FrameWelcome
	Reject  Reject  // valid after FrameReject
	Ack     TranAck // valid after FrameTranAck
	Command Command // valid after FrameCommand
	Ping    Ping    // valid after FramePing
	Pong    Pong    // valid after FramePong
	Bye     Bye     // valid after FrameBye
}

// NewControllerSession starts a controller session at now, after hello
// was sent, waiting for welcome. t.Handshake bounds the wait; heartbeat
// and offline time are taken from the welcome.
func NewControllerSession(t Timing, now time.Time) *ControllerSession {
	t = t.WithDefaults()
	return &ControllerSession{liveness: liveness{timing: t, started: now, lastRx: now, lastTx: now}}
}

// Receive takes one frame from the host at now; see HostSession.Receive.
func (s *ControllerSession) Receive(now time.Time, h Header, payload []byte) (FrameType, error) {
	s.lastRx = now
	t := h.Type
	if !t.Known() {
		s.unknown++
		return t, nil
	}
	if s.state == StateClosed {
		return t, unexpected(t, s.state)
	}
	if t == FrameBye {
		if err := s.Bye.UnmarshalPayload(payload); err != nil {
			return t, err
		}
		s.state = StateClosed
		return t, nil
	}
	if s.state == StateHandshake {
		switch t {
		case FrameWelcome:
			if err := s.Welcome.UnmarshalPayload(payload); err != nil {
				return t, err
			}
			s.timing.Heartbeat = time.Duration(s.Welcome.HeartbeatMS) * time.Millisecond
			s.timing.OfflineTime = time.Duration(s.Welcome.OfflineMS) * time.Millisecond
			s.state = StateEstablished
			return t, nil
		case FrameReject:
			if err := s.Reject.UnmarshalPayload(payload); err != nil {
				return t, err
			}
			s.state = StateClosed
			return t, nil
		}
		return t, unexpected(t, s.state)
	}
	switch t {
	case FrameTranAck:
		return t, s.Ack.UnmarshalPayload(payload)
	case FrameCommand:
		return t, s.Command.UnmarshalPayload(payload)
	case FramePing:
		return t, s.Ping.UnmarshalPayload(payload)
	case FramePong:
		return t, s.Pong.UnmarshalPayload(payload)
	}
	return t, unexpected(t, s.state)
}
