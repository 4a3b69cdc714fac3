package scpbridge

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Frame header layout (8 bytes, all integers big-endian):
//
//	offset size field
//	0      2    magic   0x53 0x43 ("SC")
//	2      1    version major<<4 | minor; this package writes 1.0 (0x10),
//	            and 1.1 (0x11) for a hello that carries a secret
//	3      1    type    FrameType
//	4      1    flags   none defined in 1.0; senders write 0, receivers ignore
//	5      1    reserved, 0
//	6      2    length  payload length, at most MaxPayload
const (
	HeaderLen  = 8
	MaxPayload = 4096
	MaxFrame   = HeaderLen + MaxPayload

	Magic0 = 0x53
	Magic1 = 0x43

	VersionMajor = 1
	VersionMinor = 0
	Version      = VersionMajor<<4 | VersionMinor
)

// FrameType says what a frame's payload is.
type FrameType uint8

// Frame types. The arrow says who sends it (C: controller, H: host).
const (
	FrameHello         FrameType = 0x01 // C->H  identity and transaction log status
	FrameWelcome       FrameType = 0x02 // H->C  session accepted
	FrameReject        FrameType = 0x03 // H->C  session refused; the host closes
	FrameTransaction   FrameType = 0x10 // C->H  one logged transaction (event)
	FrameTranAck       FrameType = 0x11 // H->C  cumulative acknowledgement
	FrameCommand       FrameType = 0x20 // H->C  command with a host tag
	FrameCommandStatus FrameType = 0x21 // C->H  OK / NAK / FAILED for a tag
	FramePing          FrameType = 0x30 // both  heartbeat request
	FramePong          FrameType = 0x31 // both  heartbeat answer
	FrameBye           FrameType = 0x40 // both  orderly close with a reason
)

var frameNames = map[FrameType]string{
	FrameHello: "hello", FrameWelcome: "welcome", FrameReject: "reject",
	FrameTransaction: "transaction", FrameTranAck: "tran_ack",
	FrameCommand: "command", FrameCommandStatus: "command_status",
	FramePing: "ping", FramePong: "pong", FrameBye: "bye",
}

// Known reports whether t is a frame type of version 1.0.
func (t FrameType) Known() bool { _, ok := frameNames[t]; return ok }

func (t FrameType) String() string {
	if n, ok := frameNames[t]; ok {
		return n
	}
	return fmt.Sprintf("frame(0x%02x)", uint8(t))
}

// Header is a decoded frame header.
type Header struct {
	Version uint8 // major<<4 | minor as sent
	Type    FrameType
	Flags   uint8
	Length  uint16
}

// Minor returns the sender's minor version.
func (h Header) Minor() uint8 { return h.Version & 0x0f }

// Errors returned by the codec. Every decoding failure wraps exactly one of
// them, so callers can branch with errors.Is and logs still say what was
// wrong.
var (
	// ErrBadMagic means the first two bytes of a frame were not "SC": the
	// peer does not speak SCP/TCP or the stream lost its framing.
	ErrBadMagic = errors.New("scpbridge: bad magic")
	// ErrUnsupportedVersion means the frame's major version is not 1.
	ErrUnsupportedVersion = errors.New("scpbridge: unsupported major version")
	// ErrFrameTooLarge means a header announced a payload above MaxPayload;
	// nothing of it is read or allocated.
	ErrFrameTooLarge = errors.New("scpbridge: frame too large")
	// ErrTruncated means a payload ended before a field it must hold, or
	// the stream ended inside a frame.
	ErrTruncated = errors.New("scpbridge: truncated")
	// ErrBadField means a field held a value the protocol forbids.
	ErrBadField = errors.New("scpbridge: bad field")
	// ErrUnknownType means a frame type this version does not know. The
	// session rules say to skip such frames, so it is not fatal.
	ErrUnknownType = errors.New("scpbridge: unknown frame type")
	// ErrUnexpectedFrame means a known frame arrived in a session state
	// where it is not allowed (a transaction before hello, say).
	ErrUnexpectedFrame = errors.New("scpbridge: unexpected frame")
)

// FieldError names the frame and field a decode or encode failed on. It
// unwraps to ErrTruncated or ErrBadField.
type FieldError struct {
	Frame  FrameType
	Field  string
	Reason string
	Err    error
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%v: %s field %s: %s", e.Err, e.Frame, e.Field, e.Reason)
}

// Unwrap returns the sentinel error.
func (e *FieldError) Unwrap() error { return e.Err }

// ParseHeader decodes and checks an 8-byte frame header.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("%w: header is %d bytes, want %d", ErrTruncated, len(b), HeaderLen)
	}
	if b[0] != Magic0 || b[1] != Magic1 {
		return Header{}, fmt.Errorf("%w: got 0x%02x%02x", ErrBadMagic, b[0], b[1])
	}
	h := Header{Version: b[2], Type: FrameType(b[3]), Flags: b[4], Length: binary.BigEndian.Uint16(b[6:8])}
	if h.Version>>4 != VersionMajor {
		return h, fmt.Errorf("%w: %d.%d", ErrUnsupportedVersion, h.Version>>4, h.Minor())
	}
	if h.Length > MaxPayload {
		return h, fmt.Errorf("%w: payload %d > %d", ErrFrameTooLarge, h.Length, MaxPayload)
	}
	return h, nil
}

// Message is a typed frame payload.
type Message interface {
	// FrameType is the frame type that carries the message.
	FrameType() FrameType
	// AppendPayload appends the encoded payload to b.
	AppendPayload(b []byte) ([]byte, error)
}

// AppendFrame appends m as a complete frame (header and payload) to dst.
// It fails, leaving dst as it was, when a field breaks a protocol cap.
func AppendFrame(dst []byte, m Message) ([]byte, error) {
	start := len(dst)
	version := uint8(Version)
	if v, ok := m.(interface{ frameVersion() uint8 }); ok {
		version = v.frameVersion()
	}
	dst = append(dst, Magic0, Magic1, version, byte(m.FrameType()), 0, 0, 0, 0)
	out, err := m.AppendPayload(dst)
	if err != nil {
		return dst[:start], err
	}
	n := len(out) - start - HeaderLen
	if n > MaxPayload {
		return dst[:start], fmt.Errorf("%w: %s payload %d > %d", ErrFrameTooLarge, m.FrameType(), n, MaxPayload)
	}
	binary.BigEndian.PutUint16(out[start+6:], uint16(n))
	return out, nil
}

// Decode decodes a payload into a new message of the header's type. The
// driver's hot path uses the UnmarshalPayload methods on reused values
// instead; Decode is for tools and tests.
func Decode(h Header, payload []byte) (Message, error) {
	var m interface {
		Message
		UnmarshalPayload([]byte) error
	}
	switch h.Type {
	case FrameHello:
		m = new(Hello)
	case FrameWelcome:
		m = new(Welcome)
	case FrameReject:
		m = new(Reject)
	case FrameTransaction:
		m = new(Transaction)
	case FrameTranAck:
		m = new(TranAck)
	case FrameCommand:
		m = new(Command)
	case FrameCommandStatus:
		m = new(CommandStatus)
	case FramePing:
		m = new(Ping)
	case FramePong:
		m = new(Pong)
	case FrameBye:
		m = new(Bye)
	default:
		return nil, fmt.Errorf("%w: %s", ErrUnknownType, h.Type)
	}
	var err error
	if hello, ok := m.(*Hello); ok {
		err = hello.UnmarshalPayloadMinor(h.Minor(), payload)
	} else {
		err = m.UnmarshalPayload(payload)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}
