package sim_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/internal/natstest"
	sb "github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
)

// testHost is a minimal SCP/TCP host for the tests: it accepts
// controllers, welcomes (or rejects) them through scpbridge.HostSession,
// and hands every received frame to the test. Acknowledgements are sent
// only when the test asks, or automatically with autoAck.
type testHost struct {
	t       *testing.T
	ln      net.Listener
	timing  sb.Timing
	conns   chan *hostConn
	autoAck atomic.Bool     // ack every transaction as it arrives
	silent  atomic.Bool     // after welcome, send nothing (no pongs, no acks)
	quiet   atomic.Bool     // do not queue frames for the test, only count them
	txTypes [8]atomic.Int64 // transactions received, by type
	txTotal atomic.Int64
	mu      sync.Mutex
	rejects []sb.Reject // rejects to answer the next hellos with
	nextID  atomic.Uint64
}

// hostConn is one accepted session.
type hostConn struct {
	h       *testHost
	conn    net.Conn
	hello   sb.Hello
	at      time.Time // when the hello arrived
	frames  chan any  // sb.Transaction, sb.CommandStatus, sb.Ping, sb.Pong, sb.Bye, error
	pending []any     // frames read by expect but not yet wanted (test goroutine only)
	wmu     sync.Mutex
}

func newTestHost(t *testing.T, timing sb.Timing) *testHost {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	h := &testHost{t: t, ln: ln, timing: timing, conns: make(chan *hostConn, 16)}
	var wg sync.WaitGroup
	var open sync.Map
	t.Cleanup(func() {
		ln.Close()
		open.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			open.Store(c, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer open.Delete(c)
				defer c.Close()
				h.serve(c)
			}()
		}
	}()
	return h
}

func (h *testHost) addr() string { return h.ln.Addr().String() }

func (h *testHost) rejectNext(r sb.Reject) {
	h.mu.Lock()
	h.rejects = append(h.rejects, r)
	h.mu.Unlock()
}

func (h *testHost) serve(c net.Conn) {
	sess := sb.NewHostSession(h.timing, time.Now())
	r := sb.NewReader(c, 0)
	hd, p, err := r.Next()
	if err != nil {
		return
	}
	if _, err := sess.Receive(time.Now(), hd, p); err != nil {
		h.t.Errorf("host: hello: %v", err)
		return
	}
	queue := 1024
	if h.quiet.Load() {
		queue = 1
	}
	hc := &hostConn{h: h, conn: c, hello: sess.Hello, at: time.Now(), frames: make(chan any, queue)}
	h.mu.Lock()
	var rej *sb.Reject
	if len(h.rejects) > 0 {
		rej = &h.rejects[0]
		h.rejects = h.rejects[1:]
	}
	h.mu.Unlock()
	if rej != nil {
		hc.send(rej)
		select {
		case h.conns <- hc:
		default:
		}
		return
	}
	hc.send(sess.Welcome(h.nextID.Add(1), time.Now()))
	select {
	case h.conns <- hc:
	default: // nobody is waiting for sessions (fleet tests)
	}
	defer close(hc.frames)
	for {
		hd, p, err := r.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				hc.frames <- err
			}
			return
		}
		t, err := sess.Receive(time.Now(), hd, p)
		if err != nil {
			hc.frames <- err
			return
		}
		if h.quiet.Load() {
			if t == sb.FrameTransaction {
				h.count(sess.Tx)
				if h.autoAck.Load() {
					hc.send(&sb.TranAck{BootEpoch: sess.Hello.BootEpoch, LastSeq: sess.Tx.Seq})
				}
			}
			if t == sb.FramePing {
				hc.send(&sb.Pong{Nonce: sess.Ping.Nonce})
			}
			continue
		}
		switch t {
		case sb.FrameTransaction:
			h.count(sess.Tx)
			hc.frames <- sess.Tx
			if h.autoAck.Load() && !h.silent.Load() {
				hc.send(&sb.TranAck{BootEpoch: sess.Hello.BootEpoch, LastSeq: sess.Tx.Seq})
			}
		case sb.FrameCommandStatus:
			hc.frames <- sess.Status
		case sb.FramePing:
			hc.frames <- sess.Ping
			if !h.silent.Load() {
				hc.send(&sb.Pong{Nonce: sess.Ping.Nonce})
			}
		case sb.FramePong:
			hc.frames <- sess.Pong
		case sb.FrameBye:
			hc.frames <- sess.Bye
			return
		}
	}
}

func (h *testHost) count(tx sb.Transaction) {
	h.txTotal.Add(1)
	if int(tx.Type) < len(h.txTypes) {
		h.txTypes[tx.Type].Add(1)
	}
}

// next waits for the next session (welcomed or rejected).
func (h *testHost) next(timeout time.Duration) *hostConn {
	h.t.Helper()
	select {
	case hc := <-h.conns:
		return hc
	case <-time.After(timeout):
		h.t.Fatalf("no controller connected within %v", timeout)
		return nil
	}
}

func (hc *hostConn) send(m sb.Message) {
	b, err := sb.AppendFrame(nil, m)
	if err != nil {
		hc.h.t.Errorf("host: encode %s: %v", m.FrameType(), err)
		return
	}
	hc.sendRaw(b)
}

func (hc *hostConn) sendRaw(b []byte) {
	hc.wmu.Lock()
	defer hc.wmu.Unlock()
	hc.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	hc.conn.Write(b) // a closed connection shows up in the test's expectations
}

func (hc *hostConn) ack(seq uint32) {
	hc.send(&sb.TranAck{BootEpoch: hc.hello.BootEpoch, LastSeq: seq})
}

// expect returns the first frame of type T for which keep returns true
// (nil keeps any). Frames passed over stay queued for later expectations.
func expect[T any](t *testing.T, hc *hostConn, timeout time.Duration, keep func(T) bool) T {
	t.Helper()
	for i, f := range hc.pending {
		if v, match := f.(T); match && (keep == nil || keep(v)) {
			hc.pending = append(hc.pending[:i], hc.pending[i+1:]...)
			return v
		}
	}
	deadline := time.After(timeout)
	for {
		select {
		case f, ok := <-hc.frames:
			if !ok {
				var zero T
				t.Fatalf("session closed while waiting for %T", zero)
			}
			if err, isErr := f.(error); isErr {
				t.Fatalf("host: %v", err)
			}
			if v, match := f.(T); match && (keep == nil || keep(v)) {
				return v
			}
			hc.pending = append(hc.pending, f)
		case <-deadline:
			var zero T
			t.Fatalf("no %T within %v", zero, timeout)
		}
	}
}

// expectTxs returns the next n transactions.
func expectTxs(t *testing.T, hc *hostConn, n int) []sb.Transaction {
	t.Helper()
	out := make([]sb.Transaction, 0, n)
	for len(out) < n {
		out = append(out, expect[sb.Transaction](t, hc, 5*time.Second, nil))
	}
	return out
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	natstest.CheckFor(t, timeout, 10*time.Millisecond, func() error {
		if !cond() {
			return fmt.Errorf("waiting for %s", what)
		}
		return nil
	})
}

// rawCommand encodes a command frame by hand, for codes Command refuses to
// encode.
func rawCommand(tag uint32, code uint8, body []byte) []byte {
	p := binary.BigEndian.AppendUint32(nil, tag)
	p = append(p, code)
	p = binary.BigEndian.AppendUint16(p, uint16(len(body)))
	p = append(p, body...)
	h := []byte{sb.Magic0, sb.Magic1, sb.Version, byte(sb.FrameCommand), 0, 0, 0, 0}
	binary.BigEndian.PutUint16(h[6:], uint16(len(p)))
	return append(h, p...)
}

// testConfig is a controller configuration with short timings for tests.
func testConfig(t *testing.T, target, serial string) sim.Config {
	return sim.Config{
		Target:           target,
		Serial:           serial,
		Log:              zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel),
		Seed:             1,
		BootEpoch:        1000,
		Backoff:          sim.BackoffConfig{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond},
		HandshakeTimeout: 2 * time.Second,
	}
}

// start runs c until the test ends.
func start(t *testing.T, c *sim.Controller) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("controller did not stop")
		}
	})
}
