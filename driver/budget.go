package driver

import (
	"context"
	"sync"
	"time"
)

// budget is the driver's in-flight budget: one token per unconfirmed
// transaction, Options.MaxInflightTotal in all. When it runs out (a
// reconnect storm: thousands of sessions each with a backlog), read loops
// queue for tokens in order of arrival, and freed tokens are handed over
// in batches: a waiter is woken once grantMin tokens (or all it asked for)
// are free, and takes up to what it asked for. One wakeup then carries
// several transactions of one session, whose PubAcks come back together
// and are acknowledged to the controller in one frame, instead of one
// wakeup, one publish and nearly one ack frame per transaction.
type budget struct {
	total    int
	grantMin int

	mu      sync.Mutex
	free    int
	waiters []*budgetWaiter // FIFO; canceled ones are skipped
	head    int             // index of the first live entry of waiters
}

// budgetWaiter is one read loop waiting for tokens.
type budgetWaiter struct {
	want     int
	got      int           // set when granted; guarded by budget.mu
	canceled bool          // guarded by budget.mu
	ready    chan struct{} // closed when granted
}

// budgetGrantMin is the batch a waiting read loop is woken for (when it
// asked for at least as many); smaller budgets use smaller batches.
const budgetGrantMin = 16

func newBudget(total int) *budget {
	return &budget{total: total, free: total, grantMin: max(1, min(budgetGrantMin, total/64))}
}

// acquire takes between 1 and want tokens, waiting while none may be
// handed out. It returns 0 when ctx ends first.
func (b *budget) acquire(ctx context.Context, want int) int {
	want = max(1, min(want, b.total))
	b.mu.Lock()
	if b.head == len(b.waiters) && b.free > 0 { // nobody queued: take what is there
		n := min(b.free, want)
		b.free -= n
		b.mu.Unlock()
		return n
	}
	w := &budgetWaiter{want: want, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.grantLocked() // tokens may be free below grantMin with nobody waiting
	b.mu.Unlock()
	select {
	case <-w.ready:
		return w.got
	case <-ctx.Done():
	}
	b.mu.Lock()
	n := w.got // granted meanwhile: give back
	w.canceled, w.got = true, 0
	b.mu.Unlock()
	if n > 0 {
		b.release(n)
	}
	return 0
}

// tryAcquire takes up to want tokens if some are free and nobody waits.
func (b *budget) tryAcquire(want int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.head != len(b.waiters) || b.free == 0 {
		return 0
	}
	n := min(b.free, max(1, want))
	b.free -= n
	return n
}

// release gives n tokens back and wakes the waiters they suffice for.
func (b *budget) release(n int) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.free += n
	b.grantLocked()
	b.mu.Unlock()
}

// grantLocked hands free tokens to the waiters in order: to the first as
// many as it wants, once that many or grantMin are free. b.mu must be held.
func (b *budget) grantLocked() {
	for b.head < len(b.waiters) {
		w := b.waiters[b.head]
		if !w.canceled {
			n := min(b.free, w.want)
			if n < w.want && n < b.grantMin {
				b.compactLocked()
				return
			}
			b.free -= n
			w.got = n
			close(w.ready)
		}
		b.waiters[b.head] = nil
		b.head++
	}
	b.waiters, b.head = b.waiters[:0], 0
}

// compactLocked drops the served entries at the front of the queue once
// they are most of it, so that a queue that never empties (a long storm)
// does not grow. b.mu must be held.
func (b *budget) compactLocked() {
	if b.head >= 1024 && 2*b.head >= len(b.waiters) {
		n := copy(b.waiters, b.waiters[b.head:])
		clear(b.waiters[n:])
		b.waiters, b.head = b.waiters[:n], 0
	}
}

// flush hands the free tokens to the first waiter even below grantMin, so
// that a few tokens never stay unused for long; flushBudget calls it.
func (b *budget) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.head < len(b.waiters) && b.free > 0 {
		w := b.waiters[b.head]
		b.waiters[b.head] = nil
		b.head++
		if w.canceled {
			continue
		}
		w.got = min(b.free, w.want)
		b.free -= w.got
		close(w.ready)
	}
	if b.head == len(b.waiters) {
		b.waiters, b.head = b.waiters[:0], 0
	}
}

// waiting reports whether read loops wait for tokens.
func (b *budget) waiting() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.head < len(b.waiters)
}

// inUse returns the tokens taken (by unconfirmed transactions and read
// loops about to publish).
func (b *budget) inUse() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total - b.free
}

// flushBudget flushes the budget (see budget.flush) at the pace of the
// publisher's sweep, until the driver closes.
func (d *Driver) flushBudget() {
	t := time.NewTicker(sweepEvery(d.opts.PublishTimeout))
	defer t.Stop()
	for {
		select {
		case <-d.bgCtx.Done():
			return
		case <-t.C:
			d.budget.flush()
		}
	}
}
