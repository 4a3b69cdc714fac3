package driver

import (
	"context"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
)

// SetBeforeWelcome makes every session run fn between taking its serial on
// the driver and queueing its welcome, widening that window for tests. It
// returns a function that removes fn. Set it before the driver starts.
func SetBeforeWelcome(fn func()) (restore func()) {
	beforeWelcome = fn
	return func() { beforeWelcome = nil }
}

// StaleReads makes the next n first reads of command queues of d answer
// "not found", as a replica that has not stored the newest commands yet
// would. Call it between New and Start.
func StaleReads(d *Driver, n int64) {
	h := d.hooks.(*commandHooks)
	var left atomic.Int64
	left.Store(n)
	direct := h.firstRead
	h.firstRead = func(ctx context.Context, seq uint64, subject string) (*jetstream.RawStreamMsg, error) {
		if left.Add(-1) >= 0 {
			return nil, jetstream.ErrMsgNotFound
		}
		return direct(ctx, seq, subject)
	}
}
