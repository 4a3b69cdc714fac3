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
