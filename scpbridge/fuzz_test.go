package scpbridge_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/scpgate/scpgate/scpbridge"
)

// sentinelCount returns how many codec sentinels err wraps.
func sentinelCount(err error) int {
	n := 0
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	return n
}

// knownTypes are the frame types of version 1.0.
func knownTypes() []scpbridge.FrameType {
	var out []scpbridge.FrameType
	for v := 0; v < 256; v++ {
		if ft := scpbridge.FrameType(v); ft.Known() {
			out = append(out, ft)
		}
	}
	return out
}

// checkRoundTrip re-encodes a decoded message and decodes it again: the
// result must be the same message, and encoding it must give the same
// bytes (the encoding is canonical).
func checkRoundTrip(t *testing.T, m scpbridge.Message) {
	t.Helper()
	b, err := scpbridge.AppendFrame(nil, m)
	if err != nil {
		// The one asymmetry by design: a command with a code this version
		// does not know decodes (so the controller can NAK it) but is
		// never sent.
		if c, ok := m.(*scpbridge.Command); ok && !c.Code.Valid() && errors.Is(err, scpbridge.ErrBadField) {
			return
		}
		t.Fatalf("decoded %T %+v does not encode: %v", m, m, err)
	}
	h, err := scpbridge.ParseHeader(b)
	if err != nil {
		t.Fatalf("re-encoded header: %v", err)
	}
	m2, err := scpbridge.Decode(h, b[scpbridge.HeaderLen:])
	if err != nil {
		t.Fatalf("re-encoded %T does not decode: %v\n%x", m, err, b)
	}
	if !sameMessage(m, m2) {
		t.Fatalf("round trip changed the message:\n got %+v\nwant %+v", m2, m)
	}
	b2, err := scpbridge.AppendFrame(nil, m2)
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("encoding is not canonical: %x then %x (%v)", b, b2, err)
	}
}

// fuzzSeeds are the golden frames, the whole golden stream and a few
// broken ones.
func fuzzSeeds() [][]byte {
	var out [][]byte
	for _, c := range goldenCases() {
		out = append(out, mustFrame(c.msg))
	}
	stream := goldenStream()
	out = append(out, stream, stream[:len(stream)-3],
		nil, []byte("SC"), []byte{'S', 'C', 0x20, 1, 0, 0, 0, 0}, []byte{'S', 'C', 0x10, 0x10, 0, 0, 0xff, 0xff},
		[]byte{'S', 'C', 0x1f, 0x99, 0xff, 0xff, 0, 2, 1, 2})
	return out
}

// FuzzDecode feeds bytes to the Reader and Decode, and also decodes them
// as the payload of every known frame type. Nothing may panic; every error
// wraps exactly one sentinel; whatever decodes survives a round trip.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, size := range []int{16, 0} {
			r := scpbridge.NewReader(bytes.NewReader(data), size)
			for i := 0; i < 256; i++ {
				h, payload, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					if sentinelCount(err) != 1 {
						t.Fatalf("Reader.Next: %v wraps %d sentinels, want 1", err, sentinelCount(err))
					}
					break
				}
				if len(payload) != int(h.Length) {
					t.Fatalf("payload is %d bytes, header says %d", len(payload), h.Length)
				}
				m, err := scpbridge.Decode(h, payload)
				if err != nil {
					if sentinelCount(err) != 1 || (h.Type.Known() && errors.Is(err, scpbridge.ErrUnknownType)) {
						t.Fatalf("Decode %s: %v", h.Type, err)
					}
					continue
				}
				checkRoundTrip(t, m)
			}
		}
		for _, ft := range knownTypes() {
			m, err := scpbridge.Decode(scpbridge.Header{Version: scpbridge.Version, Type: ft, Length: uint16(len(data))}, data)
			if err != nil {
				if sentinelCount(err) != 1 {
					t.Fatalf("Decode %s: %v wraps %d sentinels", ft, err, sentinelCount(err))
				}
				continue
			}
			if m.FrameType() != ft {
				t.Fatalf("Decode %s gave a %s", ft, m.FrameType())
			}
			checkRoundTrip(t, m)
		}
	})
}

// FuzzHostSession drives both session state machines with arbitrary frame
// streams: nothing panics, errors wrap one sentinel, states only move
// forward, a closed session refuses every known frame, and accepted
// transactions have increasing serials.
func FuzzHostSession(f *testing.F) {
	hello := mustFrame(helloMsg)
	welcome := mustFrame(&scpbridge.Welcome{SessionID: 1, HeartbeatMS: 5000, OfflineMS: 15000})
	for _, s := range fuzzSeeds() {
		f.Add(s)
		f.Add(append(append([]byte{}, hello...), s...))
		f.Add(append(append([]byte{}, welcome...), s...))
	}
	f.Add(append(hello, transactionStream(5)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		host := scpbridge.NewHostSession(scpbridge.Timing{}, t0)
		ctl := scpbridge.NewControllerSession(scpbridge.Timing{}, t0)
		hostDead, ctlDead := false, false
		var lastSeq uint32
		r := scpbridge.NewReader(bytes.NewReader(data), 64)
		now := t0
		for i := 0; i < 256; i++ {
			h, payload, err := r.Next()
			if err != nil {
				return
			}
			now = now.Add(time.Millisecond)
			if !hostDead {
				before := host.State()
				_, err := host.Receive(now, h, payload)
				after := host.State()
				switch {
				case after < before:
					t.Fatalf("host state went back from %s to %s", before, after)
				case err != nil && sentinelCount(err) != 1:
					t.Fatalf("host: %v wraps %d sentinels", err, sentinelCount(err))
				case err == nil && before == scpbridge.StateClosed && h.Type.Known():
					t.Fatalf("closed host session accepted %s", h.Type)
				case err == nil && h.Type == scpbridge.FrameTransaction:
					if host.Tx.Seq <= lastSeq {
						t.Fatalf("host accepted seq %d after %d", host.Tx.Seq, lastSeq)
					}
					lastSeq = host.Tx.Seq
				}
				if !host.Deadline().After(now) {
					t.Fatalf("host deadline %v not after the last frame at %v", host.Deadline(), now)
				}
				hostDead = err != nil // the caller would close the connection
			}
			if !ctlDead {
				before := ctl.State()
				_, err := ctl.Receive(now, h, payload)
				switch after := ctl.State(); {
				case after < before:
					t.Fatalf("controller state went back from %s to %s", before, after)
				case err != nil && sentinelCount(err) != 1:
					t.Fatalf("controller: %v wraps %d sentinels", err, sentinelCount(err))
				case err == nil && before == scpbridge.StateClosed && h.Type.Known():
					t.Fatalf("closed controller session accepted %s", h.Type)
				}
				ctlDead = err != nil
			}
		}
	})
}
