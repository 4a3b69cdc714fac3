package driver_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sim"
)

// BenchmarkCommandRoundTrip: an op is one command submitted through
// commander.Service with a wait, delivered by the driver to a connected
// simulated controller, answered, and its result back at the submitter.
// It reports the p50 and p99 round trip and the throughput.
func BenchmarkCommandRoundTrip(b *testing.B) {
	for _, tc := range []struct{ controllers, parallel int }{{1, 1}, {100, 1}, {100, 16}} {
		b.Run(fmt.Sprintf("controllers=%d/parallel=%d", tc.controllers, tc.parallel), func(b *testing.B) {
			benchRoundTrip(b, tc.controllers, tc.parallel)
		})
	}
}

func benchRoundTrip(b *testing.B, n, parallel int) {
	w := newCmdWorld(b)
	d := w.startDriver("bench", func(o *driver.Options) { o.Log = o.Log.Level(5) })
	f := sim.NewFleet(sim.FleetConfig{Controller: simConfig(d.Addr().String(), ""), Count: n, Ramp: 10000})
	runFleet(b, f)
	natstest.CheckFor(b, 20*time.Second, 10*time.Millisecond, func() error {
		if got := d.Stats().Sessions; got != n {
			return fmt.Errorf("%d of %d sessions up", got, n)
		}
		return nil
	})
	var serials []string
	for _, c := range f.Controllers() {
		serials = append(serials, c.Serial())
	}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				resp, err := w.svc.Submit(ctx, serials[int(i)%n], withWait(unlock(uint16(1+i%4)), 10*time.Second))
				cancel()
				lat[i] = time.Since(start)
				if err != nil || resp.Result == nil || resp.Result.Status != scpgate.StatusOK {
					b.Errorf("command %d: %v %+v", i, err, resp.Result)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
}
