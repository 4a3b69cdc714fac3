package driver_test

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/scpgate/scpgate/scpbridge"
)

// raw is a hand-driven controller connection, for tests that need exact
// control of what is sent and when.
type raw struct {
	t    testing.TB
	conn net.Conn
	rd   *scpbridge.Reader
	cs   *scpbridge.ControllerSession
}

func dialRaw(t testing.TB, addr string) *raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &raw{t: t, conn: c, rd: scpbridge.NewReader(c, 0), cs: scpbridge.NewControllerSession(scpbridge.Timing{}, time.Now())}
}

func (r *raw) write(m scpbridge.Message) {
	r.t.Helper()
	b, err := scpbridge.AppendFrame(nil, m)
	if err != nil {
		r.t.Fatalf("encode %s: %v", m.FrameType(), err)
	}
	r.writeBytes(b)
}

func (r *raw) writeBytes(b []byte) {
	r.t.Helper()
	_ = r.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.conn.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// next reads one frame from the host into r.cs.
func (r *raw) next(timeout time.Duration) (scpbridge.FrameType, error) {
	_ = r.conn.SetReadDeadline(time.Now().Add(timeout))
	h, p, err := r.rd.Next()
	if err != nil {
		return 0, err
	}
	return r.cs.Receive(time.Now(), h, p)
}

// hello says hello and expects a welcome.
func (r *raw) hello(serial string, epoch uint32) {
	r.t.Helper()
	r.write(&scpbridge.Hello{Serial: serial, Model: "RAW-1", Firmware: "0.1", BootEpoch: epoch, Log: scpbridge.LogStatus{Capacity: 1000}})
	t, err := r.next(5 * time.Second)
	if err != nil || t != scpbridge.FrameWelcome {
		r.t.Fatalf("hello %s: got %s, %v; want welcome", serial, t, err)
	}
}

// tx sends transaction seq (an access grant).
func (r *raw) tx(seq uint32) {
	r.t.Helper()
	r.write(&scpbridge.Transaction{Seq: seq, TimeMS: time.Now().UnixMilli(), SourceType: scpbridge.SourceReader,
		SourceNum: 1, Type: scpbridge.TranAccess, Code: scpbridge.AccessGranted, Card: 1000 + uint64(seq), Facility: 7})
}

// until reads frames (answering pings) until want arrives or the
// connection fails; it returns the last frame type and error.
func (r *raw) until(want scpbridge.FrameType, timeout time.Duration) (scpbridge.FrameType, error) {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return 0, fmt.Errorf("no %s within %s", want, timeout)
		}
		t, err := r.next(left)
		if err != nil {
			return t, err
		}
		if t == scpbridge.FramePing {
			r.write(&scpbridge.Pong{Nonce: r.cs.Ping.Nonce})
		}
		if t == want {
			return t, nil
		}
	}
}

// waitAck reads until an ack covering seq arrives.
func (r *raw) waitAck(seq uint32, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for r.cs.Ack.LastSeq < seq {
		if _, err := r.until(scpbridge.FrameTranAck, time.Until(deadline)); err != nil {
			return fmt.Errorf("ack %d (have %d): %w", seq, r.cs.Ack.LastSeq, err)
		}
	}
	return nil
}

// waitClosed reads until the host closes the connection, returning the
// bye it sent, if any.
func (r *raw) waitClosed(timeout time.Duration) (*scpbridge.Bye, error) {
	deadline := time.Now().Add(timeout)
	var bye *scpbridge.Bye
	for {
		t, err := r.next(time.Until(deadline))
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return bye, fmt.Errorf("connection still open after %s", timeout)
			}
			return bye, nil
		}
		switch t {
		case scpbridge.FrameBye:
			b := r.cs.Bye
			bye = &b
		case scpbridge.FramePing:
			r.write(&scpbridge.Pong{Nonce: r.cs.Ping.Nonce})
		}
	}
}
