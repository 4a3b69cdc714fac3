package driver_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
)

// header builds a frame header.
func header(version byte, t scpbridge.FrameType, length uint16) []byte {
	h := []byte{scpbridge.Magic0, scpbridge.Magic1, version, byte(t), 0, 0, 0, 0}
	binary.BigEndian.PutUint16(h[6:], length)
	return h
}

// expectClosed waits until the driver closes r's connection.
func expectClosed(t *testing.T, name string, r *raw) {
	t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, r.conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("%s: connection still open", name)
	}
	r.conn.Close()
}

// TestBadInput: garbage, an oversized length, a truncated frame, a frame
// before hello, a handshake that never finishes, an invalid serial and an
// unsupported version are each closed with their reason, while a good
// controller keeps being served.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	d := e.startDriver("d1", func(o *driver.Options) {
		o.Timing = scpbridge.Timing{Handshake: 300 * time.Millisecond, Heartbeat: 500 * time.Millisecond, OfflineTime: 3 * time.Second}
	})
	addr := d.Addr().String()
	good := sim.NewController(simConfig(addr, "GOOD1"))
	good.SetRate(200)
	runController(t, good)
	waitSession(t, d, "GOOD1")

	cases := []struct {
		name string
		send func(r *raw)
	}{
		{"garbage", func(r *raw) { r.writeBytes([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) }},
		{"oversized length", func(r *raw) { r.writeBytes(header(scpbridge.Version, scpbridge.FrameHello, 0xffff)) }},
		{"truncated frame", func(r *raw) {
			r.writeBytes(append(header(scpbridge.Version, scpbridge.FrameHello, 40), "\x05ABCDE"...))
			_ = r.conn.(*net.TCPConn).CloseWrite()
		}},
		{"transaction before hello", func(r *raw) {
			r.write(&scpbridge.Transaction{Seq: 1, Type: scpbridge.TranDoor, Code: scpbridge.DoorSecure})
		}},
		{"no hello", func(*raw) {}},
	}
	for _, c := range cases {
		r := dialRaw(t, addr)
		c.send(r)
		expectClosed(t, c.name, r)
	}

	// An invalid serial and an unsupported version get a reject.
	r := dialRaw(t, addr)
	r.write(&scpbridge.Hello{Serial: "bad.serial", BootEpoch: 1})
	if ft, err := r.next(2 * time.Second); err != nil || ft != scpbridge.FrameReject || r.cs.Reject.Reason != scpbridge.RejectBadSerial {
		t.Errorf("invalid serial: got %s %+v, %v; want reject bad_serial", ft, r.cs.Reject, err)
	}
	expectClosed(t, "invalid serial", r)
	r = dialRaw(t, addr)
	r.writeBytes(append(header(0x20, scpbridge.FrameHello, 0), make([]byte, 0)...))
	if ft, err := r.next(2 * time.Second); err != nil || ft != scpbridge.FrameReject || r.cs.Reject.Reason != scpbridge.RejectUnsupportedVersion {
		t.Errorf("version 2.0: got %s %+v, %v; want reject unsupported_version", ft, r.cs.Reject, err)
	}
	expectClosed(t, "unsupported version", r)

	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		st := d.Stats()
		want := map[scpgate.CloseReason]uint64{
			scpgate.ReasonProtocolError:    4,
			scpgate.ReasonHandshakeTimeout: 1,
			scpgate.ReasonRejected:         2,
		}
		for reason, n := range want {
			if got := st.Closed(reason); got != n {
				return fmt.Errorf("closed %s: %d, want %d (all: %v)", reason, got, n, st.Closes)
			}
		}
		if st.Rejected(scpbridge.RejectBadSerial) != 1 || st.Rejected(scpbridge.RejectUnsupportedVersion) != 1 {
			return fmt.Errorf("rejects %v, want one bad_serial and one unsupported_version", st.Rejects)
		}
		return nil
	})

	// The good controller was served throughout.
	acked := good.Stats().Acked
	good.SetRate(0)
	waitAcked(t, 10*time.Second, good)
	if acked == 0 {
		t.Errorf("good controller had nothing acknowledged during the bad input")
	}
	if n := good.Stats().Sessions; n != 1 {
		t.Errorf("good controller needed %d sessions, want 1", n)
	}
	checkExactlyOnce(t, readEvents(t, e.js), good)
}
