package backoff_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/scpgate/scpgate/internal/backoff"
)

func TestNext(t *testing.T) {
	b := backoff.Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := b.Next(); got != w*time.Millisecond {
			t.Fatalf("wait %d: got %v, want %v", i, got, w*time.Millisecond)
		}
	}
	b.Reset()
	if got := b.Next(); got != 100*time.Millisecond {
		t.Errorf("after Reset: got %v, want 100ms", got)
	}
}

func TestCeiling(t *testing.T) {
	for _, tt := range []struct {
		attempt int
		want    time.Duration
	}{{-1, 250 * time.Millisecond}, {0, 250 * time.Millisecond}, {1, 500 * time.Millisecond}, {3, 2 * time.Second}, {10, 30 * time.Second}, {1000, 30 * time.Second}} {
		if got := backoff.Ceiling(250*time.Millisecond, 30*time.Second, tt.attempt); got != tt.want {
			t.Errorf("Ceiling(attempt %d): got %v, want %v", tt.attempt, got, tt.want)
		}
	}
}

func TestSleep(t *testing.T) {
	if err := backoff.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("got %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := backoff.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: got %v, want context.Canceled", err)
	}
}
