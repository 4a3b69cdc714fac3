// Package backoff is the one exponential backoff of scpgate: a wait that
// starts at Min and doubles after every failure up to Max, and a sleep that
// ends with its context.
package backoff

import (
	"context"
	"time"
)

// Backoff hands out the waits between attempts: Min, then twice the
// previous wait after each failure, never more than Max. The zero value
// waits 0; it is not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	next     time.Duration // 0: Min
}

// Next returns the wait before the next attempt and doubles the one after.
func (b *Backoff) Next() time.Duration {
	if b.next == 0 {
		b.next = b.Min
	}
	wait := min(b.next, b.Max)
	b.next = min(2*wait, b.Max)
	return wait
}

// Reset starts again at Min, after a success.
func (b *Backoff) Reset() { b.next = 0 }

// Ceiling returns the wait after attempt failures (0 for the first):
// min(max, min·2^attempt).
func Ceiling(minWait, maxWait time.Duration, attempt int) time.Duration {
	limit := minWait
	for i := 0; i < attempt && limit < maxWait; i++ {
		limit *= 2
	}
	return min(limit, maxWait)
}

// Sleep waits d, or until ctx ends, whose error it then returns.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
