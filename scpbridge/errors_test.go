package scpbridge_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/scpgate/scpgate/scpbridge"
)

// sentinels are the errors every codec failure must wrap exactly one of.
var sentinels = []error{
	scpbridge.ErrBadMagic, scpbridge.ErrUnsupportedVersion, scpbridge.ErrFrameTooLarge,
	scpbridge.ErrTruncated, scpbridge.ErrBadField, scpbridge.ErrUnknownType, scpbridge.ErrUnexpectedFrame,
}

// checkWraps fails unless err wraps want and no other sentinel.
func checkWraps(t *testing.T, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %v", want)
	}
	for _, s := range sentinels {
		if got := errors.Is(err, s); got != (s == want) {
			t.Errorf("errors.Is(%q, %v) = %v, want %v", err, s, got, s == want)
		}
	}
}

// p builds a payload from typed values, big-endian: uint8, uint16, uint32,
// uint64, int64, string (raw bytes) and []byte.
func p(vs ...any) []byte {
	var b []byte
	for _, v := range vs {
		switch v := v.(type) {
		case uint8:
			b = append(b, v)
		case uint16:
			b = binary.BigEndian.AppendUint16(b, v)
		case uint32:
			b = binary.BigEndian.AppendUint32(b, v)
		case uint64:
			b = binary.BigEndian.AppendUint64(b, v)
		case int64:
			b = binary.BigEndian.AppendUint64(b, uint64(v))
		case string:
			b = append(b, v...)
		case []byte:
			b = append(b, v...)
		default:
			panic("p: unsupported type")
		}
	}
	return b
}

type u8 = uint8
type u16 = uint16
type u32 = uint32
type u64 = uint64

func TestParseHeaderErrors(t *testing.T) {
	hdr := func(m0, m1, ver, typ byte, n uint16) []byte {
		return binary.BigEndian.AppendUint16([]byte{m0, m1, ver, typ, 0, 0}, n)
	}
	tests := []struct {
		name   string
		in     []byte
		want   error
		wantIn string
	}{
		{"empty", nil, scpbridge.ErrTruncated, "header is 0 bytes"},
		{"seven bytes", hdr('S', 'C', 0x10, 1, 0)[:7], scpbridge.ErrTruncated, "header is 7 bytes"},
		{"bad magic", hdr('S', 'D', 0x10, 1, 0), scpbridge.ErrBadMagic, "0x5344"},
		{"http", []byte("GET / HTTP/1.1"), scpbridge.ErrBadMagic, "0x4745"},
		{"major 2", hdr('S', 'C', 0x20, 1, 0), scpbridge.ErrUnsupportedVersion, "2.0"},
		{"major 0", hdr('S', 'C', 0x03, 1, 0), scpbridge.ErrUnsupportedVersion, "0.3"},
		{"length max+1", hdr('S', 'C', 0x10, 0x10, scpbridge.MaxPayload+1), scpbridge.ErrFrameTooLarge, "4097 > 4096"},
		{"length 0xffff", hdr('S', 'C', 0x10, 0x10, 0xffff), scpbridge.ErrFrameTooLarge, "65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := scpbridge.ParseHeader(tt.in)
			checkWraps(t, err, tt.want)
			if err != nil && !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("got %q, want it to contain %q", err, tt.wantIn)
			}
		})
	}
}

func TestParseHeaderAcceptsNewerMinorAndFlags(t *testing.T) {
	b := []byte{'S', 'C', 0x1f, 0x10, 0xff, 0xff, 0x00, 0x05}
	h, err := scpbridge.ParseHeader(b)
	if err != nil {
		t.Fatalf("got %v, want a 1.15 header with unknown flags accepted", err)
	}
	if h.Minor() != 15 || h.Flags != 0xff || h.Type != scpbridge.FrameTransaction || h.Length != 5 {
		t.Errorf("got %+v, want minor 15, flags 0xff, type transaction, length 5", h)
	}
}

func TestDecodeUnknownType(t *testing.T) {
	_, err := scpbridge.Decode(scpbridge.Header{Version: scpbridge.Version, Type: 0x7f}, nil)
	checkWraps(t, err, scpbridge.ErrUnknownType)
	if !strings.Contains(err.Error(), "frame(0x7f)") {
		t.Errorf("got %q, want it to name frame(0x7f)", err)
	}
}

// Fixed prefixes of valid payloads.
var (
	helloHead = p(u8(1), "A", u8(0), u8(0))                                         // serial "A", no model, no firmware
	tranBase  = p(u32(9), int64(exampleTimeMS), u8(2), u16(1))                      // seq, time, source
	statHead  = p(u32(5))                                                           // tag
	cardHead  = p(u32(1), u8(scpbridge.CmdCardAdd))                                 // tag, code
	cardBody  = p(u64(123), u32(42))                                                // card, facility
	cardTail  = p(u8(0), int64(0), int64(0))                                        // no levels, activate, expire
	welcomeOK = p(u64(1), u32(5000), u32(15000), int64(exampleTimeMS))              // valid welcome
	macAndLog = p([]byte{1, 2, 3, 4, 5, 6}, u32(1), u32(2), u32(3), u32(4), u32(5)) // mac, epoch, log status
)

// cmd builds a command payload with a correct body_len.
func cmd(code scpbridge.CommandCode, body []byte) []byte {
	return p(u32(1), u8(code), u16(len(body)), body)
}

func TestDecodeErrors(t *testing.T) {
	F := scpbridge.ErrBadField
	T := scpbridge.ErrTruncated
	tests := []struct {
		name    string
		frame   scpbridge.FrameType
		payload []byte
		want    error
		field   string
		wantIn  string
	}{
		{"hello empty", scpbridge.FrameHello, nil, T, "serial", "payload ends at byte 0"},
		{"hello serial empty", scpbridge.FrameHello, p(u8(0), u8(0), u8(0), macAndLog), F, "serial", "empty"},
		{"hello serial too long", scpbridge.FrameHello, p(u8(33), strings.Repeat("A", 33)), F, "serial", "length 33 > 32"},
		{"hello serial newline", scpbridge.FrameHello, p(u8(2), "A\n"), F, "serial", "0xa is not printable"},
		{"hello serial high byte", scpbridge.FrameHello, p(u8(2), "A\x80"), F, "serial", "0x80 is not printable"},
		{"hello serial cut", scpbridge.FrameHello, p(u8(5), "AB"), T, "serial", "payload ends"},
		{"hello model too long", scpbridge.FrameHello, p(u8(1), "A", u8(65), strings.Repeat("m", 65)), F, "model", "65 > 64"},
		{"hello firmware delete byte", scpbridge.FrameHello, p(u8(1), "A", u8(0), u8(1), "\x7f"), F, "firmware", "0x7f"},
		{"hello mac cut", scpbridge.FrameHello, p(helloHead, []byte{1, 2, 3}), T, "mac", "payload ends"},
		{"hello boot_epoch cut", scpbridge.FrameHello, p(helloHead, macAndLog[:8]), T, "boot_epoch", ""},
		{"hello last_acked cut", scpbridge.FrameHello, p(helloHead, macAndLog[:len(macAndLog)-1]), T, "last_acked", ""},

		{"welcome empty", scpbridge.FrameWelcome, nil, T, "session_id", ""},
		{"welcome host_time cut", scpbridge.FrameWelcome, welcomeOK[:len(welcomeOK)-1], T, "host_time_ms", ""},
		{"welcome heartbeat zero", scpbridge.FrameWelcome, p(u64(1), u32(0), u32(15000), int64(0)), F, "offline_ms", "non-zero heartbeat_ms"},
		{"welcome offline equals heartbeat", scpbridge.FrameWelcome, p(u64(1), u32(5000), u32(5000), int64(0)), F, "offline_ms", ""},
		{"welcome offline below heartbeat", scpbridge.FrameWelcome, p(u64(1), u32(5000), u32(10), int64(0)), F, "offline_ms", ""},

		{"reject empty", scpbridge.FrameReject, nil, T, "reason", ""},
		{"reject retry cut", scpbridge.FrameReject, p(u8(4), u16(0)), T, "retry_after_ms", ""},
		{"reject text missing", scpbridge.FrameReject, p(u8(4), u32(0)), T, "text", ""},
		{"reject text cut", scpbridge.FrameReject, p(u8(4), u32(0), u8(10), "busy"), T, "text", ""},
		{"reject text tab", scpbridge.FrameReject, p(u8(4), u32(0), u8(3), "a\tb"), F, "text", "0x9"},

		{"transaction empty", scpbridge.FrameTransaction, nil, T, "seq", ""},
		{"transaction time cut", scpbridge.FrameTransaction, tranBase[:7], T, "time_ms", ""},
		{"transaction source_type cut", scpbridge.FrameTransaction, tranBase[:12], T, "source_type", ""},
		{"transaction source_num cut", scpbridge.FrameTransaction, tranBase[:14], T, "source_num", ""},
		{"transaction tran_type cut", scpbridge.FrameTransaction, tranBase, T, "tran_type", ""},
		{"transaction code cut", scpbridge.FrameTransaction, p(tranBase, u8(2)), T, "code", ""},
		{"transaction body_len cut", scpbridge.FrameTransaction, p(tranBase, u8(2), u8(1)), T, "body_len", ""},
		{"transaction body cut", scpbridge.FrameTransaction, p(tranBase, u8(1), u8(1), u8(12), u32(0)), T, "body", ""},
		{"transaction seq zero", scpbridge.FrameTransaction, p(u32(0), tranBase[4:], u8(2), u8(1), u8(0)), F, "seq", "zero"},
		{"transaction type zero", scpbridge.FrameTransaction, p(tranBase, u8(0), u8(1), u8(0)), F, "tran_type", "tran_0"},
		{"transaction type eight", scpbridge.FrameTransaction, p(tranBase, u8(8), u8(1), u8(0)), F, "tran_type", "tran_8"},
		{"transaction access no body", scpbridge.FrameTransaction, p(tranBase, u8(1), u8(1), u8(0)), T, "card", ""},
		{"transaction access short body", scpbridge.FrameTransaction, p(tranBase, u8(1), u8(1), u8(10), u64(5), u16(0)), T, "facility", ""},
		{"transaction lost short", scpbridge.FrameTransaction, p(tranBase, u8(7), u8(3), u8(2), u16(0)), T, "lost", ""},

		{"tran_ack empty", scpbridge.FrameTranAck, nil, T, "boot_epoch", ""},
		{"tran_ack last_seq cut", scpbridge.FrameTranAck, p(u32(1), u16(0)), T, "last_seq", ""},

		{"command empty", scpbridge.FrameCommand, nil, T, "tag", ""},
		{"command code cut", scpbridge.FrameCommand, p(u32(1)), T, "code", ""},
		{"command body_len cut", scpbridge.FrameCommand, p(u32(1), u8(1), u8(0)), T, "body_len", ""},
		{"command body cut", scpbridge.FrameCommand, p(u32(1), u8(1), u16(8), u32(0)), T, "body", ""},
		{"set_time short", scpbridge.FrameCommand, cmd(scpbridge.CmdSetTime, p(u32(0))), T, "time_ms", ""},
		{"momentary_unlock short", scpbridge.FrameCommand, cmd(scpbridge.CmdMomentaryUnlock, p(u16(1))), T, "seconds", ""},
		{"door_mode mode zero", scpbridge.FrameCommand, cmd(scpbridge.CmdDoorMode, p(u16(1), u8(0))), F, "mode", "mode_0"},
		{"door_mode mode eight", scpbridge.FrameCommand, cmd(scpbridge.CmdDoorMode, p(u16(1), u8(8))), F, "mode", "mode_8"},
		{"door_mode short", scpbridge.FrameCommand, cmd(scpbridge.CmdDoorMode, p(u16(1))), T, "mode", ""},
		{"output action four", scpbridge.FrameCommand, cmd(scpbridge.CmdOutput, p(u16(1), u8(4), u32(0))), F, "action", "action_4"},
		{"output short", scpbridge.FrameCommand, cmd(scpbridge.CmdOutput, p(u16(1), u8(3))), T, "ms", ""},
		{"card_add pin letters", scpbridge.FrameCommand, cmd(scpbridge.CmdCardAdd, p(cardBody, u8(4), "12a4", cardTail)), F, "pin", "not digits"},
		{"card_add pin too long", scpbridge.FrameCommand, cmd(scpbridge.CmdCardAdd, p(cardBody, u8(9), "123456789", cardTail)), F, "pin", "9 > 8"},
		{"card_add pin control", scpbridge.FrameCommand, cmd(scpbridge.CmdCardAdd, p(cardBody, u8(1), "\x01", cardTail)), F, "pin", "not printable"},
		{"card_add levels too many", scpbridge.FrameCommand, cmd(scpbridge.CmdCardAdd, p(cardBody, u8(0), u8(33))), F, "levels", "33 > 32"},
		{"card_add levels cut", scpbridge.FrameCommand, cmd(scpbridge.CmdCardAdd, p(cardBody, u8(0), u8(3), u16(1))), T, "levels", ""},
		{"card_add expire cut", scpbridge.FrameCommand, cmd(scpbridge.CmdCardAdd, p(cardBody, cardTail[:len(cardTail)-1])), T, "expire", ""},
		{"card_add facility cut", scpbridge.FrameCommand, cmd(scpbridge.CmdCardAdd, cardBody[:10]), T, "facility", ""},
		{"card_delete short", scpbridge.FrameCommand, cmd(scpbridge.CmdCardDelete, p(u32(1))), T, "card", ""},
		{"access_level doors too many", scpbridge.FrameCommand, cmd(scpbridge.CmdAccessLevel, p(u16(1), u8(65))), F, "doors", "65 > 64"},
		{"access_level level cut", scpbridge.FrameCommand, cmd(scpbridge.CmdAccessLevel, p(u8(1))), T, "level", ""},
		{"access_level doors cut", scpbridge.FrameCommand, cmd(scpbridge.CmdAccessLevel, p(u16(1), u8(2), u16(1))), T, "doors", ""},

		{"command_status empty", scpbridge.FrameCommandStatus, nil, T, "tag", ""},
		{"command_status status three", scpbridge.FrameCommandStatus, p(statHead, u8(3), u8(0), u8(0)), F, "status", "status_3"},
		{"command_status nak_reason cut", scpbridge.FrameCommandStatus, p(statHead, u8(1)), T, "nak_reason", ""},
		{"command_status detail cut", scpbridge.FrameCommandStatus, p(statHead, u8(0), u8(0), u8(4), "ok"), T, "detail", ""},
		{"command_status detail escape", scpbridge.FrameCommandStatus, p(statHead, u8(2), u8(0), u8(2), "\x1bx"), F, "detail", "0x1b"},

		{"ping empty", scpbridge.FramePing, nil, T, "nonce", ""},
		{"pong cut", scpbridge.FramePong, p(u32(1)), T, "nonce", ""},

		{"bye empty", scpbridge.FrameBye, nil, T, "reason", ""},
		{"bye reconnect cut", scpbridge.FrameBye, p(u8(2), u8(0)), T, "reconnect_after_ms", ""},
		{"bye text cut", scpbridge.FrameBye, p(u8(2), u32(0), u8(1)), T, "text", ""},
		{"bye text nul", scpbridge.FrameBye, p(u8(2), u32(0), u8(1), u8(0)), F, "text", "0x0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := scpbridge.Header{Version: scpbridge.Version, Type: tt.frame, Length: uint16(len(tt.payload))}
			m, err := scpbridge.Decode(h, tt.payload)
			if m != nil {
				t.Errorf("got message %+v with the error, want nil", m)
			}
			checkWraps(t, err, tt.want)
			var fe *scpbridge.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got %T %q, want a *FieldError", err, err)
			}
			if fe.Frame != tt.frame || fe.Field != tt.field {
				t.Errorf("got frame %s field %s, want frame %s field %s", fe.Frame, fe.Field, tt.frame, tt.field)
			}
			msg := err.Error()
			for _, s := range []string{tt.frame.String(), "field " + tt.field, tt.wantIn} {
				if !strings.Contains(msg, s) {
					t.Errorf("got %q, want it to contain %q", msg, s)
				}
			}
		})
	}
}

// bigMessage is a message whose payload exceeds MaxPayload.
type bigMessage struct{}

func (bigMessage) FrameType() scpbridge.FrameType { return scpbridge.FrameType(0x7e) }
func (bigMessage) AppendPayload(b []byte) ([]byte, error) {
	return append(b, make([]byte, scpbridge.MaxPayload+1)...), nil
}

func TestEncodeErrors(t *testing.T) {
	F := scpbridge.ErrBadField
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name   string
		msg    scpbridge.Message
		want   error
		field  string
		wantIn string
	}{
		{"hello serial empty", &scpbridge.Hello{}, F, "serial", "empty"},
		{"hello serial too long", &scpbridge.Hello{Serial: long(33)}, F, "serial", "33 > 32"},
		{"hello model newline", &scpbridge.Hello{Serial: "A", Model: "a\nb"}, F, "model", "not printable"},
		{"hello firmware too long", &scpbridge.Hello{Serial: "A", Firmware: long(65)}, F, "firmware", "65 > 64"},
		{"welcome heartbeat zero", &scpbridge.Welcome{OfflineMS: 1}, F, "offline_ms", "heartbeat_ms"},
		{"welcome offline too short", &scpbridge.Welcome{HeartbeatMS: 5, OfflineMS: 5}, F, "offline_ms", ""},
		{"reject text too long", &scpbridge.Reject{Reason: 1, Text: long(256)}, F, "text", "256 > 255"},
		{"transaction seq zero", &scpbridge.Transaction{Type: scpbridge.TranDoor}, F, "seq", "zero"},
		{"transaction type zero", &scpbridge.Transaction{Seq: 1}, F, "tran_type", "tran_0"},
		{"command code zero", &scpbridge.Command{Tag: 1}, F, "code", "command_0"},
		{"command code eleven", &scpbridge.Command{Tag: 1, Code: 11}, F, "code", "command_11"},
		{"door_mode mode zero", &scpbridge.Command{Code: scpbridge.CmdDoorMode}, F, "mode", "mode_0"},
		{"output action zero", &scpbridge.Command{Code: scpbridge.CmdOutput}, F, "action", "action_0"},
		{"card_add pin letters", &scpbridge.Command{Code: scpbridge.CmdCardAdd, PIN: "12ab"}, F, "pin", "not digits"},
		{"card_add pin too long", &scpbridge.Command{Code: scpbridge.CmdCardAdd, PIN: "123456789"}, F, "pin", "9 > 8"},
		{"card_add levels too many", &scpbridge.Command{Code: scpbridge.CmdCardAdd, Levels: make([]uint16, 33)}, F, "levels", "33 > 32"},
		{"access_level doors too many", &scpbridge.Command{Code: scpbridge.CmdAccessLevel, Doors: make([]uint16, 65)}, F, "doors", "65 > 64"},
		{"command_status status three", &scpbridge.CommandStatus{Status: 3}, F, "status", "status_3"},
		{"command_status detail too long", &scpbridge.CommandStatus{Detail: long(300)}, F, "detail", "300 > 255"},
		{"bye text control", &scpbridge.Bye{Reason: 1, Text: "\x00"}, F, "text", "not printable"},
		{"payload too large", bigMessage{}, scpbridge.ErrFrameTooLarge, "", "4097 > 4096"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("prefix")
			out, err := scpbridge.AppendFrame(dst, tt.msg)
			checkWraps(t, err, tt.want)
			if !bytes.Equal(out, []byte("prefix")) {
				t.Errorf("got dst %q after a failed append, want it unchanged", out)
			}
			msg := err.Error()
			for _, s := range []string{tt.msg.FrameType().String(), tt.wantIn} {
				if !strings.Contains(msg, s) {
					t.Errorf("got %q, want it to contain %q", msg, s)
				}
			}
			if tt.field == "" {
				return
			}
			var fe *scpbridge.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || fe.Frame != tt.msg.FrameType() {
				t.Errorf("got %#v, want a FieldError on %s field %s", err, tt.msg.FrameType(), tt.field)
			}
		})
	}
}

// TestDecodeIgnoresTrailingBytes checks the forward-compatibility rule:
// bytes after the fields a receiver knows (a newer minor may append) are
// ignored, in the payload and in bodies.
func TestDecodeIgnoresTrailingBytes(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			frame := mustFrame(c.msg)
			payload := append(frame[scpbridge.HeaderLen:], 0xde, 0xad)
			m, err := scpbridge.Decode(scpbridge.Header{Type: c.msg.FrameType(), Version: frame[2]}, payload)
			if err != nil {
				t.Fatalf("decode with 2 trailing bytes: %v", err)
			}
			if !sameMessage(m, c.msg) {
				t.Errorf("got %+v, want %+v", m, c.msg)
			}
		})
	}
	// A longer access body: card and facility, then 3 unknown bytes.
	body := p(u64(77), u32(8), []byte{1, 2, 3})
	var tx scpbridge.Transaction
	if err := tx.UnmarshalPayload(p(tranBase, u8(1), u8(1), u8(len(body)), body)); err != nil {
		t.Fatal(err)
	}
	if tx.Card != 77 || tx.Facility != 8 {
		t.Errorf("got card %d facility %d, want 77 and 8", tx.Card, tx.Facility)
	}
	// A command with an unknown code decodes, body skipped, so it can be NAKed.
	var c scpbridge.Command
	if err := c.UnmarshalPayload(p(u32(99), u8(200), u16(3), []byte{1, 2, 3})); err != nil {
		t.Fatalf("unknown command code: got %v, want nil", err)
	}
	if c.Tag != 99 || c.Code != 200 {
		t.Errorf("got tag %d code %d, want 99 and 200", c.Tag, c.Code)
	}
}
