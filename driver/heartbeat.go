package driver

import "time"

// heartbeats pings the welcomed sessions that wrote nothing for about a
// heartbeat interval: one loop per driver rather than a timer per session,
// which idle sessions would each hold.
//
// Each session is pinged a little early, by up to an eighth of the
// interval, fixed per session: sessions that connected together (after a
// restart, say) would otherwise be pinged in one burst every interval,
// forever, and every burst of thousands of writes (and the controllers'
// answers) delays whatever else the driver does at that moment. With
// periods that differ, the pings spread evenly over the interval within a
// few rounds.
func (d *Driver) heartbeats() {
	hb := d.opts.Timing.Heartbeat
	early := uint64(hb / 8)
	t := time.NewTicker(max(min(hb/20, 250*time.Millisecond), 10*time.Millisecond))
	defer t.Stop()
	var due []*session
	for {
		select {
		case <-d.bgCtx.Done():
			return
		case now := <-t.C:
			silent := now.Add(-hb).UnixNano()
			d.mu.Lock()
			for _, s := range d.sessions {
				if !s.welcomed.Load() {
					continue // its first frame must be the welcome
				}
				skew := int64(0)
				if early > 0 {
					skew = int64(s.idNum % early)
				}
				if s.lastWrite.Load() <= silent+skew {
					due = append(due, s)
				}
			}
			d.mu.Unlock()
			for i, s := range due {
				s.heartbeatDue()
				due[i] = nil
			}
			due = due[:0]
		}
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
