package driver

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/scpgate/scpgate/internal/natstest"
)

// waitQueued polls until n waiters are queued on b.
func waitQueued(t *testing.T, b *budget, n int) {
	t.Helper()
	natstest.CheckFor(t, 5*time.Second, time.Millisecond, func() error {
		b.mu.Lock()
		q := len(b.waiters) - b.head
		b.mu.Unlock()
		if q != n {
			return fmt.Errorf("%d waiters queued, want %d", q, n)
		}
		return nil
	})
}

func TestBudgetGrantsInBatches(t *testing.T) {
	b := newBudget(64 * budgetGrantMin) // grantMin = budgetGrantMin
	if n := b.acquire(context.Background(), b.total); n != b.total {
		t.Fatalf("first acquire got %d, want all %d", n, b.total)
	}
	if n := b.tryAcquire(1); n != 0 {
		t.Fatalf("tryAcquire on an empty budget got %d", n)
	}
	got := make(chan int, 2)
	go func() { got <- b.acquire(context.Background(), 40) }()
	waitQueued(t, b, 1)
	go func() { got <- b.acquire(context.Background(), 4) }()
	waitQueued(t, b, 2)

	b.release(budgetGrantMin - 1) // below the batch: nobody is woken
	select {
	case n := <-got:
		t.Fatalf("a waiter was woken with %d tokens, below the batch of %d", n, budgetGrantMin)
	case <-time.After(20 * time.Millisecond):
	}
	b.release(1) // a batch: the first waiter takes it, the second waits behind
	if n := <-got; n != budgetGrantMin {
		t.Fatalf("first waiter got %d, want %d", n, budgetGrantMin)
	}
	b.release(3)
	b.flush() // below the second waiter's 4 and the batch: flush hands them over
	if n := <-got; n != 3 {
		t.Fatalf("second waiter got %d after flush, want 3", n)
	}
	if n := b.inUse(); n != b.total {
		t.Errorf("in use %d, want %d", n, b.total)
	}
}

func TestBudgetCanceledWaiterGivesBack(t *testing.T) {
	b := newBudget(64)
	b.acquire(context.Background(), 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- b.acquire(ctx, 8) }()
	waitQueued(t, b, 1)
	cancel()
	if n := <-done; n != 0 {
		t.Fatalf("canceled acquire got %d, want 0", n)
	}
	b.release(64)
	if n := b.inUse(); n != 0 {
		t.Errorf("in use %d after everything was given back", n)
	}
	if b.waiting() {
		t.Errorf("a canceled waiter still counts as waiting")
	}
	if n := b.tryAcquire(100); n != 64 {
		t.Errorf("tryAcquire got %d, want 64", n)
	}
}
