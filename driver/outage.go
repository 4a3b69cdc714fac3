package driver

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// errNoLeader fails the publishes still in flight when SCP_EVENTS is found
// without a leader: they went to the leader that is gone and may never be
// answered, so they are sent again (same message ids) without waiting for
// the PubAck timeout.
var errNoLeader = errors.New("driver: SCP_EVENTS lost its leader before the PubAck")

// outage follows the periods in which no stream takes the driver's events
// (JetStream answers "no responders": SCP_EVENTS has no leader, during an
// election or while it is missing), so that each is logged once, with its
// duration, and counted, instead of once per session and retry.
type outage struct {
	active atomic.Bool // read on every PubAck without the lock

	mu      sync.Mutex
	since   time.Time
	refused atomic.Uint64 // publishes answered "no responders" in this outage
}

// noResponders records a publish that no stream took. The first of an
// outage logs it and fails every publish in flight before it.
func (d *Driver) noResponders() {
	o := &d.outage
	o.refused.Add(1)
	if o.active.Load() {
		return
	}
	o.mu.Lock()
	if o.active.Load() {
		o.mu.Unlock()
		return
	}
	o.since = time.Now()
	o.active.Store(true)
	o.mu.Unlock()
	d.stats.noLeader.Add(1)
	d.log.Warn().Str("stream", eventsStream).
		Msg("SCP_EVENTS has no leader (no stream took the event): acknowledgements wait until it is back")
	d.pb.failSent(errNoLeader)
}

// published records a PubAck: it ends an outage, logs its duration and
// lets the retrier send the waiting events at once.
func (d *Driver) published() {
	o := &d.outage
	if !o.active.Load() {
		return
	}
	o.mu.Lock()
	if !o.active.Load() {
		o.mu.Unlock()
		return
	}
	o.active.Store(false)
	took := time.Since(o.since)
	refused := o.refused.Swap(0)
	o.mu.Unlock()
	d.stats.noLeaderNanos.Add(uint64(took))
	d.log.Warn().Str("stream", eventsStream).Dur("took", took).Uint64("refused", refused).
		Msgf("SCP_EVENTS has no leader: over after %s", took.Round(time.Millisecond))
	d.rt.hurry()
}
