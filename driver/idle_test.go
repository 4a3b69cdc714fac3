package driver_test

import (
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/scpbridge"
)

// BenchmarkIdleSession measures the memory of an idle established session
// (heap and goroutine stacks, the driver's side plus a bare client socket)
// after its handshake; an op is one session. Run with -benchtime=2000x.
func BenchmarkIdleSession(b *testing.B) {
	e := newEnv(b)
	d := e.startDriver("idle", func(o *driver.Options) {
		o.Log = o.Log.Level(5)
		o.Timing = scpbridge.Timing{Handshake: 10 * time.Second, Heartbeat: time.Minute, OfflineTime: 3 * time.Minute}
	})
	addr := d.Addr().String()
	conns := make([]net.Conn, 0, b.N)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	before, beforeStack := memInUse()
	b.ResetTimer()
	buf := make([]byte, 64)
	for i := range b.N {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatalf("dial: %v", err)
		}
		conns = append(conns, c)
		hello, _ := scpbridge.AppendFrame(nil, &scpbridge.Hello{Serial: fmt.Sprintf("IDLE%06d", i), BootEpoch: 1})
		if _, err := c.Write(hello); err != nil {
			b.Fatalf("hello: %v", err)
		}
		if _, err := c.Read(buf); err != nil { // the welcome
			b.Fatalf("welcome: %v", err)
		}
	}
	natstest.CheckFor(b, 30*time.Second, 20*time.Millisecond, func() error {
		if n := d.Stats().Sessions; n != b.N {
			return fmt.Errorf("%d sessions", n)
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond) // let the presence writes of the last sessions finish
	b.StopTimer()
	after, afterStack := memInUse()
	b.ReportMetric(float64(int64(after)-int64(before))/float64(b.N), "bytes/session")
	b.ReportMetric(float64(int64(afterStack)-int64(beforeStack))/float64(b.N), "stack-bytes/session")
}

// memInUse returns heap plus stack in use, and the stack alone.
func memInUse() (total, stack uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse, m.StackInuse
}

// TestIdleSessionOneGoroutine: an established session that sends nothing
// holds its read loop and nothing else (no writer, no presence goroutine),
// and still answers pings and is pinged.
func TestIdleSessionOneGoroutine(t *testing.T) {
	e := newEnv(t)
	d := e.startDriver("idle1", func(o *driver.Options) {
		o.Timing = scpbridge.Timing{Handshake: 5 * time.Second, Heartbeat: 300 * time.Millisecond, OfflineTime: time.Minute}
	})
	addr := d.Addr().String()
	base := runtime.NumGoroutine()
	const n = 40
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		hello, _ := scpbridge.AppendFrame(nil, &scpbridge.Hello{Serial: fmt.Sprintf("LAZY%03d", i), BootEpoch: 1})
		if _, err := c.Write(hello); err != nil {
			t.Fatalf("hello: %v", err)
		}
		conns[i] = c
	}
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if s := d.Stats().Sessions; s != n {
			return fmt.Errorf("%d sessions", s)
		}
		return nil
	})
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if extra := runtime.NumGoroutine() - base; extra > n+n/4 { // a few are the driver's own
			return fmt.Errorf("%d goroutines for %d idle sessions, want about one each", extra, n)
		}
		return nil
	})

	// The driver pings an idle session, and answers its ping.
	r := scpbridge.NewReader(conns[0], 0)
	hs := scpbridge.NewControllerSession(scpbridge.Timing{}, time.Now())
	_ = conns[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	sawPing := false
	for !sawPing {
		h, p, err := r.Next()
		if err != nil {
			t.Fatalf("read from the driver: %v", err)
		}
		typ, err := hs.Receive(time.Now(), h, p)
		if err != nil {
			t.Fatalf("receive %s: %v", h.Type, err)
		}
		sawPing = typ == scpbridge.FramePing
	}
	ping, _ := scpbridge.AppendFrame(nil, &scpbridge.Ping{Nonce: 77})
	if _, err := conns[0].Write(ping); err != nil {
		t.Fatalf("ping: %v", err)
	}
	for {
		h, p, err := r.Next()
		if err != nil {
			t.Fatalf("read the pong: %v", err)
		}
		typ, _ := hs.Receive(time.Now(), h, p)
		if typ == scpbridge.FramePong && hs.Pong.Nonce == 77 {
			break
		}
	}
}
