package sim_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/internal/simtest"
	sb "github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
)

func TestFleetRandomMixIsAcknowledgedAndReported(t *testing.T) {
	h := newTestHost(t, fastTiming)
	h.quiet.Store(true)
	h.autoAck.Store(true)
	cfg := testConfig(t, h.addr(), "")
	cfg.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	cfg.Rate = 200
	f := sim.NewFleet(sim.FleetConfig{Controller: cfg, Count: 5, SerialPrefix: "MIX"})
	if got := f.Controllers()[4].Serial(); got != "MIX000004" {
		t.Fatalf("serial of controller 4 = %q, want MIX000004", got)
	}
	stop := simtest.RunFleet(t, f)
	waitFor(t, 10*time.Second, "1,000 transactions", func() bool { return h.txTotal.Load() >= 1000 })
	f.SetRate(0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.WaitAcked(ctx); err != nil {
		t.Fatalf("wait acked: %v", err)
	}
	r := f.Report()
	if r.Controllers != 5 || r.Connected != 5 || r.Generated == 0 || r.Acked != r.Generated || r.Unacked != 0 || r.DroppedOverflow != 0 {
		t.Fatalf("report %+v: want 5 connected, everything acknowledged", r)
	}
	for _, typ := range []sb.TranType{sb.TranAccess, sb.TranDoor, sb.TranInput} {
		if h.txTypes[typ].Load() == 0 {
			t.Errorf("no %s transactions in the mix", typ)
		}
	}
	if got := h.txTotal.Load(); got != int64(r.Generated) {
		t.Errorf("host received %d transactions, fleet generated %d", got, r.Generated)
	}
	stop()
	if r := f.Report(); r.Connected != 0 {
		t.Errorf("after stop %d still connected", r.Connected)
	}
}

func TestFleetWaitAckedReportsWhatIsLeft(t *testing.T) {
	h := newTestHost(t, fastTiming)
	h.quiet.Store(true) // receives but never acknowledges
	f := sim.NewFleet(sim.FleetConfig{Controller: testConfig(t, h.addr(), ""), Count: 2})
	simtest.RunFleet(t, f)
	for _, c := range f.Controllers() {
		c.Generate(7)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := f.WaitAcked(ctx)
	if !errors.Is(err, sim.ErrUnacked) || err.Error() != "14 transactions unacknowledged after drain timeout" {
		t.Fatalf("wait acked: %v, want 14 unacknowledged", err)
	}
}

// TestIdleFleetMemory measures what an idle connected controller costs
// (both ends of the loopback connection live in this process, so the
// figure includes the test host's side).
func TestIdleFleetMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("connects 2,000 controllers")
	}
	const n = 2000
	h := newTestHost(t, sb.Timing{Heartbeat: 30 * time.Second, OfflineTime: 90 * time.Second})
	h.quiet.Store(true)
	cfg := testConfig(t, h.addr(), "")
	cfg.Log = zerolog.Nop()
	var before runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	f := sim.NewFleet(sim.FleetConfig{Controller: cfg, Count: n, Ramp: 5000})
	simtest.RunFleet(t, f)
	waitFor(t, 20*time.Second, "all connected", func() bool { return f.Report().Connected == n })
	var after runtime.MemStats
	runtime.GC()
	runtime.GC() // the second empties sync.Pool victim caches
	runtime.ReadMemStats(&after)
	perConn := (int64(after.HeapAlloc+after.StackInuse) - int64(before.HeapAlloc+before.StackInuse)) / n
	perG := float64(runtime.NumGoroutine()-goroutines) / n
	t.Logf("heap %d KiB, stack %d KiB", (int64(after.HeapAlloc)-int64(before.HeapAlloc))/1024, (int64(after.StackInuse)-int64(before.StackInuse))/1024)
	if p := os.Getenv("SIM_HEAPPROFILE"); p != "" {
		fh, _ := os.Create(p)
		pprof.WriteHeapProfile(fh)
		fh.Close()
	}
	t.Logf("%d idle controllers: %.1f KiB heap+stack each (host side included), %.1f goroutines each", n, float64(perConn)/1024, perG)
	if perConn > 48<<10 {
		t.Errorf("%d bytes per idle controller and host session, want under 48 KiB", perConn)
	}
}
