package sim

import (
	"fmt"
	"testing"
	"time"
)

// countMix runs the event mix of fresh controllers over simulated time and
// returns how many transactions they logged or started.
func countMix(controllers int, rate float64, window, step time.Duration) (transactions int) {
	for j := 0; j < controllers; j++ {
		c := NewController(Config{Target: "x", Serial: fmt.Sprint("MIX", j), Rate: rate})
		now := time.Unix(1_000_000, 0)
		c.mix.reschedule(now, rate)
		for t := time.Duration(0); t < window; t += step {
			now = now.Add(step)
			c.mix.due(now, func(e entry) { transactions++ })
		}
		transactions += len(c.mix.follow) // started but not yet due
	}
	return transactions
}

func TestMixRateHoldsLongRunAndFromStart(t *testing.T) {
	tests := []struct {
		name        string
		controllers int
		rate        float64
		window      time.Duration
	}{
		{"one controller, long run", 1, 0.2, 50_000 * time.Second},
		{"many controllers, 12s from start", 2000, 0.2, 12 * time.Second},
		{"fast controller", 1, 50, 1000 * time.Second},
	}
	for _, tc := range tests {
		got := countMix(tc.controllers, tc.rate, tc.window, 100*time.Millisecond)
		want := float64(tc.controllers) * tc.rate * tc.window.Seconds()
		if r := float64(got) / want; r < 0.9 || r > 1.1 {
			t.Errorf("%s: %d transactions, want about %.0f", tc.name, got, want)
		}
	}
}

func TestTransactionsPerActivityMatchesTheMix(t *testing.T) {
	c := NewController(Config{Target: "x", Serial: "K"})
	const n = 200_000
	now := time.Unix(1_000_000, 0)
	total := 0
	for i := 0; i < n; i++ {
		c.mix.activity(now)
		total += len(c.mix.follow)
		c.mix.follow = c.mix.follow[:0]
	}
	got := float64(total) / n
	if got < transactionsPerActivity*0.98 || got > transactionsPerActivity*1.02 {
		t.Fatalf("mean transactions per activity %.3f, constant says %.2f", got, transactionsPerActivity)
	}
}
