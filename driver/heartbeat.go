package driver

import "time"

// heartbeatStep is the shortest pause between two parts of a heartbeat
// round; a round has at most heartbeatParts parts.
const (
	heartbeatStep  = 10 * time.Millisecond
	heartbeatParts = 25
)

// heartbeats pings the welcomed sessions that wrote nothing for about a
// heartbeat interval: one loop per driver rather than a timer per session,
// which idle sessions would each hold.
//
// Each round (a twentieth of the interval, at most 250 ms) looks at every
// session once, a part at a time, heartbeatStep apart: looking at all
// 10,000 sessions of a driver and queuing their pings at one tick kept
// both cores busy for milliseconds four times a second, and every command
// or event that arrived then waited (docs/benchmarks.md, "Heartbeat
// bursts").
//
// Each session is pinged a little early, by up to an eighth of the
// interval, fixed per session: sessions that connected together (after a
// restart, say) would otherwise be pinged in one burst every interval,
// forever. With periods that differ, the pings spread evenly over the
// interval within a few rounds.
func (d *Driver) heartbeats() {
	hb := d.opts.Timing.Heartbeat
	early := uint64(hb / 8)
	r := newPingRound(max(min(hb/20, 250*time.Millisecond), heartbeatStep))
	t := time.NewTicker(r.step)
	defer t.Stop()
	for {
		select {
		case <-d.bgCtx.Done():
			return
		case now := <-t.C:
			silent := now.Add(-hb).UnixNano()
			for _, s := range r.next(d.sessionList) {
				if !s.welcomed.Load() {
					continue // its first frame must be the welcome
				}
				skew := int64(0)
				if early > 0 {
					skew = int64(s.idNum % early)
				}
				if s.lastWrite.Load() <= silent+skew {
					s.heartbeatDue()
				}
			}
			r.done()
		}
	}
}

// sessionList appends the established sessions to buf.
func (d *Driver) sessionList(buf []*session) []*session {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.sessions {
		buf = append(buf, s)
	}
	return buf
}

// pingRound splits a heartbeat round into parts: the sessions listed at
// its start, a share of them per step.
type pingRound struct {
	step  time.Duration // pause between parts
	parts int
	part  int        // the next part
	list  []*session // the sessions of the current round
}

// newPingRound returns the parts of a round that lasts round.
func newPingRound(round time.Duration) *pingRound {
	parts := min(max(int(round/heartbeatStep), 1), heartbeatParts)
	return &pingRound{step: round / time.Duration(parts), parts: parts}
}

// next returns the sessions to look at now; at the first part of a round
// it lists them with list.
func (r *pingRound) next(list func([]*session) []*session) []*session {
	if r.part == 0 {
		r.list = list(r.list[:0])
	}
	n := len(r.list)
	lo, hi := r.part*n/r.parts, (r.part+1)*n/r.parts
	r.part++
	return r.list[lo:hi]
}

// done ends a part; after the last one of a round, the list lets go of
// its sessions until the next round.
func (r *pingRound) done() {
	if r.part == r.parts {
		clear(r.list)
		r.part = 0
	}
}

// heartbeatDue queues a ping.
func (s *session) heartbeatDue() {
	s.mu.Lock()
	if s.life.closing {
		s.mu.Unlock()
		return
	}
	s.out.ping.Nonce++
	_ = s.appendLocked(&s.out.ping) // a ping is 16 bytes: it cannot fail
	s.mu.Unlock()
	s.wake()
}
