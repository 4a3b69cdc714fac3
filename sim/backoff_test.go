package sim_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/scpgate/scpgate/sim"
)

func TestBackoffGrowsWithFullJitter(t *testing.T) {
	b := sim.BackoffConfig{Min: 250 * time.Millisecond, Max: 30 * time.Second}
	ceilings := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second,
		8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for attempt, want := range ceilings {
		if got := b.Ceiling(attempt); got != want {
			t.Errorf("Ceiling(%d) = %v, want %v", attempt, got, want)
		}
	}
	if got := b.Ceiling(1000); got != 30*time.Second {
		t.Errorf("Ceiling(1000) = %v, want the 30s cap", got)
	}

	r := rand.New(rand.NewPCG(1, 2))
	for _, attempt := range []int{0, 3, 10} {
		ceiling := b.Ceiling(attempt)
		const n = 2000
		var sum time.Duration
		distinct := map[time.Duration]bool{}
		for i := 0; i < n; i++ {
			d := b.Delay(attempt, r)
			if d < 0 || d >= ceiling {
				t.Fatalf("Delay(%d) = %v, want in [0, %v)", attempt, d, ceiling)
			}
			sum += d
			distinct[d] = true
		}
		// Full jitter: uniform over [0, ceiling), so the mean is near half
		// the ceiling and almost every draw differs.
		mean := sum / n
		if mean < ceiling*4/10 || mean > ceiling*6/10 {
			t.Errorf("attempt %d: mean delay %v, want about %v", attempt, mean, ceiling/2)
		}
		if len(distinct) < n*9/10 {
			t.Errorf("attempt %d: only %d distinct delays in %d draws", attempt, len(distinct), n)
		}
	}
}
