package driver

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PubAck errors.
var (
	// errNoResponders is the failure of a publish that no stream took: the
	// server answered with a 503 status and no body (the stream is not
	// there, or its leader is not elected yet).
	errNoResponders = errors.New("driver: no stream took the event (no responders)")
	// errBadPubAck is the failure of a publish whose reply was not a
	// PubAck; the event is published again.
	errBadPubAck = errors.New("driver: reply is not a PubAck")
)

// pubAck is what the driver needs of a JetStream PubAck.
type pubAck struct {
	stream    string
	seq       uint64
	duplicate bool
}

// parsePubAck reads a publish's reply. JetStream answers a stored event
// with a one-line JSON object the server assembles from a template:
//
//	{"stream":"SCP_EVENTS","seq":123}
//	{"stream":"SCP_EVENTS","seq":123,"duplicate": true}
//	{"stream":"SCP_EVENTS","domain":"hub","seq":123}
//
// parsePubAck reads those without allocating (fastPubAck); anything else
// (an error reply, a field it does not know, escapes in a string) goes
// through encoding/json, as nats.go reads every reply. A reply without a
// body is the server's status message (503: no responders).
func parsePubAck(m *nats.Msg) (pubAck, error) {
	if len(m.Data) == 0 {
		if m.Header.Get("Status") == "503" {
			return pubAck{}, errNoResponders
		}
		return pubAck{}, fmt.Errorf("%w: status %q %q", errBadPubAck, m.Header.Get("Status"), m.Header.Get("Description"))
	}
	if pa, ok := fastPubAck(m.Data); ok {
		return pa, nil
	}
	return slowPubAck(m.Data)
}

// pubAckResponse is a PubAck or an API error, as encoding/json reads it.
type pubAckResponse struct {
	Error     *jetstream.APIError `json:"error,omitempty"`
	Stream    string              `json:"stream"`
	Sequence  uint64              `json:"seq"`
	Duplicate bool                `json:"duplicate,omitempty"`
}

// slowPubAck reads a reply with encoding/json.
func slowPubAck(data []byte) (pubAck, error) {
	var r pubAckResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return pubAck{}, fmt.Errorf("%w: %v", errBadPubAck, err)
	}
	if r.Error != nil {
		return pubAck{}, r.Error
	}
	if r.Stream == "" {
		return pubAck{}, fmt.Errorf("%w: no stream in %q", errBadPubAck, data)
	}
	return pubAck{stream: r.Stream, seq: r.Sequence, duplicate: r.Duplicate}, nil
}

// fastPubAck reads a flat JSON object of the keys stream, domain (plain
// strings), seq (an unsigned integer) and duplicate (a boolean), with
// optional white space. It reports false for anything else, which the
// caller then reads with encoding/json; it never accepts what
// encoding/json would read differently.
func fastPubAck(b []byte) (pubAck, bool) {
	var pa pubAck
	var sawSeq bool
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return pa, false
	}
	i = skipSpace(b, i+1)
	for {
		var key []byte
		var ok bool
		if key, i, ok = plainString(b, i); !ok {
			return pa, false
		}
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return pa, false
		}
		i = skipSpace(b, i+1)
		switch string(key) { // no allocation: the compiler compares in place
		case "stream":
			var v []byte
			if v, i, ok = plainString(b, i); !ok || pa.stream != "" {
				return pa, false
			}
			pa.stream = pubAckStream(v)
		case "domain":
			if _, i, ok = plainString(b, i); !ok {
				return pa, false
			}
		case "seq":
			if pa.seq, i, ok = uintValue(b, i); !ok || sawSeq {
				return pa, false
			}
			sawSeq = true
		case "duplicate":
			switch {
			case hasAt(b, i, "true"):
				pa.duplicate, i = true, i+4
			case hasAt(b, i, "false"):
				pa.duplicate, i = false, i+5
			default:
				return pa, false
			}
		default:
			return pa, false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return pa, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
			continue
		case '}':
			if skipSpace(b, i+1) != len(b) || pa.stream == "" || !sawSeq {
				return pa, false
			}
			return pa, true
		default:
			return pa, false
		}
	}
}

// eventsStream is the usual stream name, returned without allocating.
const eventsStream = "SCP_EVENTS"

// pubAckStream returns the stream name v as a string; the usual one costs
// no allocation.
func pubAckStream(v []byte) string {
	if string(v) == eventsStream {
		return eventsStream
	}
	return string(v)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string at b[i] that holds no escapes and no
// control characters; it returns its content and the index past it.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, i, false // escapes and non-ASCII: encoding/json decides
		}
	}
	return nil, i, false
}

// uintValue reads a JSON unsigned integer (no sign, fraction or exponent,
// no leading zero) at b[i] that fits in a uint64.
func uintValue(b []byte, i int) (uint64, int, bool) {
	j := i
	var n uint64
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		if j-i >= 19 { // 19 digits always fit; longer ones go to encoding/json
			return 0, i, false
		}
		n = n*10 + uint64(b[j]-'0')
		j++
	}
	if j == i || (b[i] == '0' && j-i > 1) {
		return 0, i, false
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
		return 0, i, false
	}
	return n, j, true
}

func hasAt(b []byte, i int, s string) bool {
	return len(b)-i >= len(s) && string(b[i:i+len(s)]) == s
}
