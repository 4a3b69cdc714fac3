package storetest

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
)

// BenchBatch is the batch size of BenchWriteBatch, ingest's default.
const BenchBatch = 2000

// BenchWriteBatch measures WriteBatch of new BenchBatch-event batches (50
// controllers, BenchBatch/50 events each: presence, access, door, input,
// output..., so state is updated too) and reports rows/s.
func BenchWriteBatch(b *testing.B, s scpgate.Store) {
	ctx := context.Background()
	var rows int
	var spent time.Duration
	cpu0 := processCPU()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		events := HistoryFrom(uint64(i), i*50, 50, BenchBatch/50)[:BenchBatch]
		b.StartTimer()
		start := time.Now()
		n, err := s.WriteBatch(ctx, events, nil)
		spent += time.Since(start)
		if err != nil {
			b.Fatalf("write batch %d: %v", i, err)
		}
		if n != len(events) {
			b.Fatalf("batch %d: inserted %d of %d", i, n, len(events))
		}
		rows += n
	}
	b.ReportMetric(float64(rows)/spent.Seconds(), "rows/s")
	// CPU time per row varies much less than rows/s on a shared machine.
	// It counts the whole process: the store's work, and PostgreSQL's
	// client side only.
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(rows), "cpu-µs/row")
}

// processCPU returns the CPU time (user and system) this process used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
