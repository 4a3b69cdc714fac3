package driver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Publisher errors, each a reason a publish is sent again.
var (
	// errPubAckTimeout: no PubAck within Options.PublishTimeout.
	errPubAckTimeout = errors.New("driver: no PubAck within the publish timeout")
	// errPubDisconnected: the NATS connection dropped with the publish
	// unconfirmed; its PubAck, if any, is not awaited.
	errPubDisconnected = errors.New("driver: NATS connection lost before the PubAck")
	// errNoSlot: more publishes in flight than the driver's budget, which
	// cannot happen while every publish holds a token.
	errNoSlot = errors.New("driver: no free publish slot")
)

// publisher publishes events on the core NATS connection and matches
// their PubAcks, instead of jetstream's PublishMsgAsync, which for every
// message allocates a future, a timer and a reply token, keeps them in a
// map, and decodes the PubAck into a struct with encoding/json.
//
// Every publish takes a slot of a fixed table (one per in-flight token,
// so a free slot is always there) and carries the slot's reply subject,
// <prefix><slot>.<generation>, which one wildcard subscription hears.
// A slot's generation changes whenever it is let go without its PubAck
// (timeout, disconnect, failed write), so a late PubAck of an earlier
// publish is never taken for the current one's. A slot released by its
// own PubAck keeps its generation and reply subject: JetStream answers a
// publish once, and the steady state builds no string.
//
// It is one-way: it tells its owner the outcome of every publish through
// settled, and knows nothing else of the driver.
type publisher struct {
	nc      *nats.Conn
	timeout time.Duration // Options.PublishTimeout
	// settled receives each publish's outcome once: its PubAck, or the
	// error for which it is to be sent again. It runs on the PubAck
	// subscription's goroutine, the sweep or the sender, and must not
	// block.
	settled func(p *pub, pa pubAck, err error)
	stale   *atomic.Uint64 // counts replies to no current publish

	prefix string // "_INBOX.<nuid>.", the subscription's subject without "*"
	sub    *nats.Subscription
	status chan nats.Status // connection status changes, from nats.go

	now atomic.Int64 // coarse clock (unix ns) for timeouts, set by sweep
	// connected follows the connection's status without taking its lock
	// (nats.go's IsConnected does, against every publish); it may lag by
	// a status event, which only sends a publish to the retrier early or
	// into nats.go's reconnect buffer (failed when the event arrives).
	connected atomic.Bool

	mu    sync.Mutex
	slots []pubSlot // grown on demand up to max: an idle driver keeps none
	free  []uint32  // indices of free slots, a stack
	used  int
	max   int // most slots (one per in-flight token)
}

// pubSlot is one entry of the table; guarded by publisher.mu.
type pubSlot struct {
	p     *pub   // nil when free
	gen   uint32 // generation, part of reply
	reply string // prefix + index + "." + gen
	sent  int64  // coarse time of the publish
}

// newPublisher returns a publisher on nc with up to n slots, whose
// publishes time out after timeout; settled receives their outcomes and
// stale counts replies that find no publish. start subscribes. Slots are
// made as publishes need them (n of them would be 1.3 MB at the default
// budget, resident in every empty driver).
func newPublisher(nc *nats.Conn, n int, timeout time.Duration, settled func(*pub, pubAck, error), stale *atomic.Uint64) *publisher {
	pb := &publisher{
		nc:      nc,
		timeout: timeout,
		settled: settled,
		stale:   stale,
		prefix:  nc.NewInbox() + ".",
		max:     n,
	}
	pb.now.Store(time.Now().UnixNano())
	return pb
}

// start subscribes to the PubAcks and to connection status changes.
func (pb *publisher) start() error {
	sub, err := pb.nc.Subscribe(pb.prefix+"*.*", pb.onReply)
	if err != nil {
		return fmt.Errorf("subscribe to PubAcks: %w", err)
	}
	// Every unconfirmed publish of the driver may be answered at once.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("PubAck subscription limits: %w", err)
	}
	pb.sub = sub
	pb.status = pb.nc.StatusChanged(nats.CONNECTED, nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	pb.connected.Store(pb.nc.IsConnected())
	return nil
}

// stop unsubscribes; publishes still in flight stay unconfirmed (their
// sessions are closed and their controllers send them again).
func (pb *publisher) stop() {
	if pb.sub != nil {
		_ = pb.sub.Unsubscribe()
	}
	if pb.status != nil {
		pb.nc.RemoveStatusListener(pb.status)
	}
}

// send publishes p with the reply subject of a free slot. It reports
// false when the write failed; p is then settled with the error, once.
func (pb *publisher) send(p *pub) bool {
	pb.mu.Lock()
	i, ok := pb.takeLocked()
	if !ok { // more publishes in flight than tokens: a bug, not a load
		pb.mu.Unlock()
		pb.settled(p, pubAck{}, errNoSlot)
		return false
	}
	sl := &pb.slots[i]
	sl.p = p
	sl.sent = pb.now.Load()
	if sl.reply == "" {
		sl.reply = pb.replyOf(i, sl.gen)
	}
	gen := sl.gen
	pb.used++
	p.msg.Reply = sl.reply
	pb.mu.Unlock()
	// p.msg is not written again until this attempt is settled (its slot
	// released by the PubAck or an error): the ack handler reads only p's
	// session and ticket.
	if err := pb.nc.PublishMsg(&p.msg); err != nil {
		if pb.release(i, gen, p) { // else settled meanwhile (disconnect), failed there
			pb.settled(p, pubAck{}, fmt.Errorf("publish: %w", err))
		}
		return false
	}
	return true
}

// takeLocked takes a free slot, the last one freed first, or makes one
// while fewer than max exist. pb.mu must be held.
func (pb *publisher) takeLocked() (uint32, bool) {
	if n := len(pb.free); n > 0 {
		i := pb.free[n-1]
		pb.free = pb.free[:n-1]
		return i, true
	}
	n := len(pb.slots)
	if n >= pb.max {
		return 0, false
	}
	if n == cap(pb.slots) {
		// Double, up to max: a busy driver reaches its high-water mark
		// in a few copies and keeps it.
		grown := make([]pubSlot, n, min(max(2*n, 64), pb.max))
		copy(grown, pb.slots)
		pb.slots = grown
		pb.free = slices.Grow(pb.free, cap(grown)-len(pb.free))
	}
	pb.slots = pb.slots[:n+1]
	return uint32(n), true
}

// replyOf builds the reply subject of slot i at generation gen.
func (pb *publisher) replyOf(i, gen uint32) string {
	b := make([]byte, 0, len(pb.prefix)+16)
	b = append(b, pb.prefix...)
	b = strconv.AppendUint(b, uint64(i), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(gen), 10)
	return string(b)
}

// release frees slot i if it still holds p at generation gen, and moves
// the slot to its next generation. It reports whether it did.
func (pb *publisher) release(i, gen uint32, p *pub) bool {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	sl := &pb.slots[i]
	if sl.p != p || sl.gen != gen {
		return false
	}
	pb.abandonLocked(i)
	return true
}

// abandonLocked frees slot i without its PubAck. pb.mu must be held.
func (pb *publisher) abandonLocked(i uint32) {
	sl := &pb.slots[i]
	sl.p = nil
	sl.gen++
	sl.reply = ""
	pb.free = append(pb.free, i)
	pb.used--
}

// onReply handles one reply on the PubAck subscription (nats.go's
// delivery goroutine for it, one message at a time).
func (pb *publisher) onReply(m *nats.Msg) {
	i, gen, ok := parseReplyToken(m.Subject, len(pb.prefix))
	if !ok {
		pb.stale.Add(1)
		return
	}
	pb.mu.Lock()
	if int(i) >= len(pb.slots) {
		pb.mu.Unlock()
		pb.stale.Add(1)
		return
	}
	sl := &pb.slots[i]
	p := sl.p
	if p == nil || sl.gen != gen {
		pb.mu.Unlock()
		pb.stale.Add(1) // answered after its publish was given up
		return
	}
	sl.p = nil
	pb.free = append(pb.free, i)
	pb.used--
	pa, err := parsePubAck(m)
	if err != nil {
		// A reply that is not a PubAck: the slot's subject may be
		// answered again, so it moves on.
		sl.gen++
		sl.reply = ""
	}
	pb.mu.Unlock()
	pb.settled(p, pa, err)
}

// parseReplyToken reads "<slot>.<gen>" after the prefix of subj.
func parseReplyToken(subj string, prefix int) (i, gen uint32, ok bool) {
	if len(subj) <= prefix {
		return 0, 0, false
	}
	var n [2]uint64
	k, digits := 0, 0
	for _, c := range []byte(subj[prefix:]) {
		switch {
		case c >= '0' && c <= '9' && digits < 10:
			n[k] = n[k]*10 + uint64(c-'0')
			digits++
		case c == '.' && k == 0 && digits > 0:
			k, digits = 1, 0
		default:
			return 0, 0, false
		}
	}
	if k != 1 || digits == 0 || n[0] > 1<<32-1 || n[1] > 1<<32-1 {
		return 0, 0, false
	}
	return uint32(n[0]), uint32(n[1]), true
}

// sweepEvery is how often the publisher looks for overdue publishes and
// connection changes; a publish times out between PublishTimeout and
// PublishTimeout plus twice this (its time is the coarse clock's).
func sweepEvery(timeout time.Duration) time.Duration {
	return min(max(timeout/10, 10*time.Millisecond), 250*time.Millisecond)
}

// loop advances the coarse clock, fails overdue publishes, and fails every
// unconfirmed publish when the connection drops (their PubAcks may never
// come; the retrier sends them again, with the same message ids, once
// NATS is back). It returns when ctx ends.
func (pb *publisher) loop(ctx context.Context) {
	every := sweepEvery(pb.timeout)
	t := time.NewTicker(every)
	defer t.Stop()
	status := pb.status // stop closes it
	for {
		select {
		case <-ctx.Done():
			return
		case st, ok := <-status:
			if !ok {
				status = nil
				continue
			}
			if st == nats.CONNECTED {
				pb.connected.Store(true)
				continue
			}
			pb.connected.Store(false)
			pb.fail(1<<63-1, errPubDisconnected)
			if st == nats.CLOSED {
				status = nil
			}
		case now := <-t.C:
			pb.connected.Store(pb.nc.IsConnected()) // in case an event was dropped
			pb.now.Store(now.UnixNano())
			// A slot's time is up to one tick earlier than its publish.
			pb.fail(now.Add(-pb.timeout-every).UnixNano(), errPubAckTimeout)
		}
	}
}

// fail fails, with err, the publishes sent before cutoff (coarse unix ns).
func (pb *publisher) fail(cutoff int64, err error) {
	var failed []*pub
	pb.mu.Lock()
	if pb.used > 0 {
		for i := range pb.slots {
			sl := &pb.slots[i]
			if sl.p != nil && sl.sent < cutoff {
				failed = append(failed, sl.p)
				pb.abandonLocked(uint32(i))
			}
		}
	}
	pb.mu.Unlock()
	for _, p := range failed {
		pb.settled(p, pubAck{}, err)
	}
}

// failSent fails, with err, every publish sent up to now (by the coarse
// clock).
func (pb *publisher) failSent(err error) { pb.fail(pb.now.Load(), err) }
