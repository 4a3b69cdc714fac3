package sim_test

import (
	"encoding/json"
	"testing"
	"time"

	sb "github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
)

func TestHistogramQuantiles(t *testing.T) {
	var h sim.Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	s := h.Snapshot()
	if s.Total() != 1000 {
		t.Fatalf("total %d, want 1000", s.Total())
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}, {0, time.Millisecond}} {
		got := s.Quantile(tc.q)
		if d := got - tc.want; d < -tc.want/25 || d > tc.want/25 {
			t.Errorf("quantile %.2f: got %v, want %v within 4%%", tc.q, got, tc.want)
		}
	}
	if m := s.Mean(); m < 490*time.Millisecond || m > 510*time.Millisecond {
		t.Errorf("mean %v, want about 500ms", m)
	}
}

func TestHistogramSmallValuesAndMerge(t *testing.T) {
	var a, b sim.Histogram
	a.RecordN(3*time.Microsecond, 10)
	a.Record(-time.Second) // counted as 0
	b.RecordN(time.Hour, 2)
	b.RecordN(time.Second, 0) // nothing
	sa, sb := a.Snapshot(), b.Snapshot()
	var raw []byte
	raw, err := json.Marshal(sb)
	if err != nil {
		t.Fatal(err)
	}
	var back sim.HistogramSnapshot
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	sa.Merge(back)
	if sa.Total() != 13 {
		t.Fatalf("merged total %d, want 13", sa.Total())
	}
	if got := sa.Quantile(0.5); got != 3*time.Microsecond {
		t.Errorf("median %v, want 3µs (values below 32µs have buckets of their own)", got)
	}
	if got := sa.Quantile(1); got < 55*time.Minute || got > 65*time.Minute {
		t.Errorf("max %v, want about an hour", got)
	}
	a.Reset()
	if n := a.Snapshot().Total(); n != 0 {
		t.Errorf("after Reset: %d observations", n)
	}
	var empty sim.HistogramSnapshot
	if empty.Quantile(0.5) != 0 || empty.Mean() != 0 {
		t.Error("an empty snapshot has no quantiles")
	}
}

// TestAckLatencyRecorded: every transaction written is measured once, when
// the cumulative ack covering it arrives, including one ack covering a
// batch partly.
func TestAckLatencyRecorded(t *testing.T) {
	h := newTestHost(t, fastTiming)
	cfg := testConfig(t, h.addr(), "LAT1")
	cfg.AckLatency = new(sim.Histogram)
	c := sim.NewController(cfg)
	start(t, c)
	hc := h.next(5 * time.Second)

	c.Generate(10)
	expectTxs(t, hc, 10)
	time.Sleep(20 * time.Millisecond)
	hc.ack(4) // covers part of the batch
	waitFor(t, 5*time.Second, "4 measured", func() bool { return cfg.AckLatency.Snapshot().Total() == 4 })
	hc.ack(10)
	waitFor(t, 5*time.Second, "10 measured", func() bool { return cfg.AckLatency.Snapshot().Total() == 10 })
	if p := cfg.AckLatency.Snapshot().Quantile(0); p < 15*time.Millisecond {
		t.Errorf("fastest ack latency %v, want at least the 20ms the host waited", p)
	}
	hc.ack(10) // a repeated ack measures nothing
	c.Generate(1)
	expectTxs(t, hc, 1)
	hc.send(&sb.TranAck{BootEpoch: hc.hello.BootEpoch, LastSeq: 11})
	waitFor(t, 5*time.Second, "11 measured", func() bool { return cfg.AckLatency.Snapshot().Total() == 11 })
}

// TestPatternMatchesGenerate: Pattern returns what Generate logs.
func TestPatternMatchesGenerate(t *testing.T) {
	h := newTestHost(t, fastTiming)
	cfg := testConfig(t, h.addr(), "PAT1")
	c := sim.NewController(cfg)
	start(t, c)
	hc := h.next(5 * time.Second)
	c.Generate(25)
	got := expectTxs(t, hc, 25)
	full := c.Config()
	for i, tx := range got {
		want := sim.Pattern(&full, uint64(i), uint32(i+1), time.UnixMilli(tx.TimeMS))
		if tx != want {
			t.Fatalf("transaction %d: got %+v, want %+v", i, tx, want)
		}
	}
}
