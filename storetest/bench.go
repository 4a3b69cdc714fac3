package storetest

import (
	"context"
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
}
