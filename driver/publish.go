package driver

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/scpbridge"
)

// transaction publishes the transaction the read loop just decoded. It
// waits (not reading the socket) while the session's window or the
// driver's in-flight budget is full. It reports false when the session
// ended meanwhile.
func (s *session) transaction(now time.Time) bool {
	d := s.d
	d.stats.received.Add(1)
	s.burst.Store(true) // this one follows: the acks of the previous ones may wait
	room, quiesced := s.windowRoom()
	if quiesced {
		d.stats.deferred.Add(1) // the controller sends it again to its next driver
		return true
	}
	if !s.takeToken(room) {
		return false
	}
	p := s.pubOf(now)
	if p == nil { // cannot happen with these types; never ack what was not stored
		d.budget.release(1)
		s.close(scpgate.ReasonProtocolError, nil)
		return false
	}
	direct, ok := s.track(p, s.loop.hs.Tx.Seq)
	if !ok {
		d.budget.release(1)
		return false
	}
	// Before the PubAck can arrive: more to come only if more is read.
	s.burst.Store(s.loop.rd != nil && s.loop.rd.rd.Buffered() > 0)
	if direct {
		d.publish(p)
	} else {
		d.rt.schedule(s)
	}
	if s.bufferedFrames() == 0 {
		// Nothing or part of a frame left: the loop waits for the socket
		// next, without tokens taken ahead.
		s.releaseSpare()
	}
	return true
}

// takeToken takes the driver token of the transaction just read, waiting
// for room in the session's window (room is what it has now) and for the
// driver's budget. It reports false when the session ended meanwhile.
func (s *session) takeToken(room int) bool {
	d := s.d
	stalled := false
	if room == 0 {
		s.releaseSpare() // the tokens this loop holds may serve others meanwhile
		stalled = true
		if room = s.waitWindow(); room == 0 {
			return false
		}
	}
	if s.loop.spare == 0 {
		// Take tokens for the transactions already read as well, so that
		// a stalled loop is woken once for several of them (see budget).
		want := min(room, 1+s.bufferedFrames())
		if s.loop.spare = d.budget.tryAcquire(want); s.loop.spare == 0 {
			stalled = true
			if s.loop.spare = d.budget.acquire(s.ctx, want); s.loop.spare == 0 {
				return false
			}
		}
	}
	s.loop.spare-- // this transaction's token
	if stalled {
		s.loop.resumedAt = time.Now()
	}
	return true
}

// pubOf encodes the transaction just read as an event, or returns nil if
// it cannot be encoded.
func (s *session) pubOf(now time.Time) *pub {
	d := s.d
	tx := &s.loop.hs.Tx
	ev := TransactionEvent(s.serial, s.epoch, tx, now, d.opts.ID)
	if ev.TimeClamped {
		d.stats.timesClamped.Add(1)
		s.log.Warn().Uint32("seq", tx.Seq).Int64("time_ms", tx.TimeMS).Time("stored_time", ev.Time).
			Msg("transaction time outside years 0..9999; stored with time_clamped")
	}
	p := newPub(s)
	if !p.encode(&ev) {
		return nil
	}
	p.msg.Subject = s.subjectOf(tx.Type, ev.Kind)
	return p
}

// minTransactionFrame is about the smallest transaction frame (header and
// payload), used to guess how many transactions a read buffer holds.
const minTransactionFrame = scpbridge.HeaderLen + 16

// bufferedFrames guesses how many more transactions the read buffer holds.
func (s *session) bufferedFrames() int {
	if s.loop.rd == nil {
		return 0
	}
	return s.loop.rd.rd.Buffered() / minTransactionFrame
}

// releaseSpare gives back the budget tokens the read loop took ahead.
// Only the read loop (and finish, after it) calls it.
func (s *session) releaseSpare() {
	if s.loop.spare > 0 {
		s.d.budget.release(s.loop.spare)
		s.loop.spare = 0
	}
}

// publish sends p (see publisher); a failed write marks it for retry
// and reports false.
func (d *Driver) publish(p *pub) bool {
	if d.opts.PublishLatency != nil {
		p.sent = time.Now()
	}
	return d.pb.send(p)
}

// settled takes the outcome of a publish from the publisher: its PubAck,
// or the error for which it is sent again.
func (d *Driver) settled(p *pub, pa pubAck, err error) {
	if err != nil {
		d.pubFailed(p, err)
		return
	}
	d.onPubAck(p, pa.duplicate)
}

// onPubAck handles the PubAck of p. It runs on the PubAck subscription's
// goroutine and must not block.
func (d *Driver) onPubAck(p *pub, duplicate bool) {
	if duplicate {
		d.stats.duplicates.Add(1)
	}
	d.stats.published.Add(1)
	if f := d.opts.PublishLatency; f != nil {
		f(time.Since(p.sent))
	}
	d.published()
	s := p.s
	s.mu.Lock()
	if s.inflight.ended || p.state != pubInflight {
		s.mu.Unlock()
		return
	}
	p.state = pubDone
	s.inflight.holding--
	s.inflight.confirms++
	s.inflight.win.ring[p.ticket%uint64(len(s.inflight.win.ring))] = nil
	before := s.inflight.tracker.Pending()
	seq, advanced := s.inflight.tracker.Confirm(p.ticket)
	p.recycle() // nothing refers to p any more
	now, later := false, false
	if advanced {
		s.ack.seq = seq
		d.stats.acked.Add(uint64(before - s.inflight.tracker.Pending()))
		now, later = s.ackDueLocked()
	}
	s.mu.Unlock()
	d.budget.release(1)
	if later {
		d.deferAck(s)
	}
	if advanced {
		if now {
			s.wake()
		}
		select {
		case s.windowCh <- struct{}{}:
		default:
		}
	}
}

// pubFailed marks p for republishing.
func (d *Driver) pubFailed(p *pub, err error) {
	d.stats.pubErrors.Add(1)
	quiet := false // logged once per outage, not per session
	switch err {
	case errNoResponders:
		d.noResponders()
		quiet = true
	case errNoLeader:
		quiet = true
	}
	s := p.s
	s.mu.Lock()
	if s.inflight.ended || p.state != pubInflight {
		s.mu.Unlock()
		return
	}
	p.state = pubFailed
	first := !s.inflight.retrying
	s.inflight.retrying = true
	id := p.msg.Header.Get(jetstream.MsgIDHeader) // p may be sent again and recycled once s.mu is let go
	s.mu.Unlock()
	if first && !quiet {
		s.log.Warn().Err(err).Str("id", id).Msg("publish failed; will republish")
	}
	d.rt.schedule(s)
}
