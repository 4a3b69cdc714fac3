package driver

import (
	"sync"
	"time"
)

// Retry timing: a session whose publishes failed is retried after
// retryMinWait, then after twice as long each time nothing of it was
// confirmed in between, up to Options.RetryBackoffMax.
const (
	retryMinWait = 50 * time.Millisecond
	retryTick    = 25 * time.Millisecond
)

// retryEntry is the retry state of one session.
type retryEntry struct {
	scheduled bool          // work is waiting
	due       time.Time     // not before
	wait      time.Duration // current backoff
	confirms  uint64        // the session's confirms at the previous round
}

// retrier holds the sessions with failed or queued publishes.
type retrier struct {
	mu sync.Mutex
	m  map[*session]*retryEntry
}

func newRetrier() retrier { return retrier{m: make(map[*session]*retryEntry)} }

// schedule marks s as having work for the retrier.
func (r *retrier) schedule(s *session) {
	r.mu.Lock()
	e := r.m[s]
	if e == nil {
		e = &retryEntry{wait: retryMinWait, due: time.Now().Add(retryMinWait)}
		r.m[s] = e
	}
	e.scheduled = true
	r.mu.Unlock()
}

// hurry makes every scheduled session due now, at the minimum backoff:
// the cause of the failures is gone (a stream leader is back).
func (r *retrier) hurry() {
	now := time.Now()
	r.mu.Lock()
	for _, e := range r.m {
		e.wait, e.due = retryMinWait, now
	}
	r.mu.Unlock()
}

// forget drops an ended session.
func (r *retrier) forget(s *session) {
	r.mu.Lock()
	delete(r.m, s)
	r.mu.Unlock()
}

// takeDue returns the scheduled sessions whose backoff has passed and
// unschedules them.
func (r *retrier) takeDue(now time.Time) []*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*session
	for s, e := range r.m {
		if e.scheduled && !now.Before(e.due) {
			e.scheduled = false
			out = append(out, s)
		}
	}
	return out
}

// done records a retry round of s and sets its next backoff: back to the
// minimum if JetStream confirmed something of s since the previous round.
func (r *retrier) done(s *session, confirms uint64, max time.Duration, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.m[s]
	if e == nil {
		return
	}
	if confirms != e.confirms {
		e.wait = retryMinWait
	} else {
		e.wait = min(2*e.wait, max)
	}
	e.confirms = confirms
	e.due = now.Add(e.wait)
}

// retryLoop republishes, in order and with their original message ids,
// the transactions whose publish failed, once NATS is connected again.
func (d *Driver) retryLoop() {
	t := time.NewTicker(retryTick)
	defer t.Stop()
	for {
		select {
		case <-d.bgCtx.Done():
			return
		case <-t.C:
		}
		if !d.nc.IsConnected() {
			continue // scheduled work stays due until NATS is back
		}
		now := time.Now()
		for _, s := range d.rt.takeDue(now) {
			confirms := d.republish(s)
			d.rt.done(s, confirms, d.opts.RetryBackoffMax, now)
		}
	}
}

// republish sends the session's failed and queued publishes in ticket
// order. While it runs the session stays in retry mode, so transactions
// read meanwhile are queued behind and sent by the next pass; failed ones
// that fail again wait for the next round. It returns the session's
// confirm count.
func (d *Driver) republish(s *session) uint64 {
	first := true
	for {
		s.mu.Lock()
		confirms := s.inflight.confirms
		if s.inflight.ended || s.inflight.tracker == nil {
			s.mu.Unlock()
			return confirms
		}
		var list []*pub
		failedLeft := false
		head := s.inflight.nextTicket - uint64(s.inflight.tracker.Pending())
		for t := head; t < s.inflight.nextTicket; t++ {
			p := s.inflight.win.ring[t%uint64(len(s.inflight.win.ring))]
			switch {
			case p == nil:
			case p.state == pubQueued, first && p.state == pubFailed:
				p.state = pubInflight
				list = append(list, p)
			case p.state == pubFailed:
				failedLeft = true
			}
		}
		if len(list) == 0 {
			s.inflight.retrying = failedLeft
			s.mu.Unlock()
			if failedLeft {
				d.rt.schedule(s)
			}
			return confirms
		}
		s.mu.Unlock()
		for i, p := range list {
			if !d.publish(p) {
				s.mu.Lock()
				for _, q := range list[i+1:] {
					if q.state == pubInflight {
						q.state = pubFailed
					}
				}
				s.mu.Unlock()
				d.rt.schedule(s)
				return confirms
			}
			d.stats.republished.Add(1)
		}
		first = false
	}
}
