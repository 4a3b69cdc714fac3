package driver

import (
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/scpbridge"
)

// pubState is where one transaction's publish stands; guarded by the
// session's mu.
type pubState uint8

const (
	pubInflight pubState = iota // handed to nats.go, PubAck awaited
	pubFailed                   // the last attempt failed; the retrier sends it again
	pubQueued                   // read while the session was retrying; not sent yet
	pubDone                     // confirmed by JetStream
)

// pub is one transaction on its way to JetStream. It keeps the encoded
// event until JetStream confirms it, so that a failed publish is sent again
// with the same message id.
type pub struct {
	msg    nats.Msg // Reply is set by each attempt (publisher.send)
	s      *session
	ticket uint64 // AckTracker ticket
	state  pubState
	sent   time.Time // last handed to nats.go; set only with Options.PublishLatency
}

// transaction publishes the transaction the read loop just decoded. It
// waits (not reading the socket) while the session's window or the
// driver's in-flight budget is full. It reports false when the session
// ended meanwhile.
func (s *session) transaction(now time.Time) bool {
	d := s.d
	d.stats.received.Add(1)
	s.burst.Store(true) // this one follows: the acks of the previous ones may wait
	s.mu.Lock()
	if s.quiesce {
		s.mu.Unlock()
		d.stats.deferred.Add(1) // the controller sends it again to its next driver
		return true
	}
	if s.tracker == nil {
		s.tracker = scpbridge.NewAckTracker(d.opts.MaxInflightPerSession)
		s.ring = make([]*pub, d.opts.MaxInflightPerSession)
	}
	room := d.opts.MaxInflightPerSession - s.tracker.Pending()
	s.mu.Unlock()
	stalled := false
	if room == 0 {
		s.releaseSpare() // the tokens this loop holds may serve others meanwhile
		stalled = true
		if room = s.waitWindow(); room == 0 {
			return false
		}
	}
	if s.spare == 0 {
		// Take tokens for the transactions already read as well, so that
		// a stalled loop is woken once for several of them (see budget).
		want := min(room, 1+s.bufferedFrames())
		if s.spare = d.budget.tryAcquire(want); s.spare == 0 {
			stalled = true
			if s.spare = d.budget.acquire(s.ctx, want); s.spare == 0 {
				return false
			}
		}
	}
	s.spare-- // this transaction's token
	if stalled {
		s.resumedAt = time.Now()
	}

	tx := &s.hs.Tx
	ev := TransactionEvent(s.serial, s.epoch, tx, now, d.opts.ID)
	data, err := EncodeEvent(&ev)
	if err != nil { // cannot happen with these types; never ack what was not stored
		d.budget.release(1)
		s.log.Error().Err(err).Msg("encode event")
		s.close(scpgate.ReasonProtocolError, nil)
		return false
	}
	p := &pub{s: s, msg: nats.Msg{
		Subject: s.subject(ev.Kind),
		Data:    data,
		Header:  nats.Header{jetstream.MsgIDHeader: []string{ev.ID}},
	}}

	connected := d.nc.IsConnected()
	s.mu.Lock()
	ticket, ok := s.tracker.Add(tx.Seq)
	if !ok || s.ended { // the decoder guarantees order and the window was checked
		s.mu.Unlock()
		d.budget.release(1)
		return false
	}
	p.ticket = ticket
	s.nextTicket = ticket + 1
	s.ring[ticket%uint64(len(s.ring))] = p
	s.holding++
	direct := !s.retrying && connected
	if direct {
		p.state = pubInflight
	} else {
		p.state = pubQueued
		s.retrying = true
	}
	s.mu.Unlock()
	// Before the PubAck can arrive: more to come only if more is read.
	more := s.rd != nil && s.rd.rd.Buffered() > 0
	s.burst.Store(more)
	if direct {
		d.publish(p)
	} else {
		d.rt.schedule(s)
	}
	if !more {
		s.releaseSpare() // the loop waits for the socket next
	}
	return true
}

// minTransactionFrame is about the smallest transaction frame (header and
// payload), used to guess how many transactions a read buffer holds.
const minTransactionFrame = scpbridge.HeaderLen + 16

// bufferedFrames guesses how many more transactions the read buffer holds.
func (s *session) bufferedFrames() int {
	if s.rd == nil {
		return 0
	}
	return s.rd.rd.Buffered() / minTransactionFrame
}

// waitWindow waits until the session's window has room and returns it,
// or 0 when the session ended.
func (s *session) waitWindow() int {
	for {
		select {
		case <-s.windowCh:
		case <-s.ctx.Done():
			return 0
		}
		s.mu.Lock()
		room := s.d.opts.MaxInflightPerSession - s.tracker.Pending()
		s.mu.Unlock()
		if room > 0 {
			return room
		}
	}
}

// releaseSpare gives back the budget tokens the read loop took ahead.
// Only the read loop (and finish, after it) calls it.
func (s *session) releaseSpare() {
	if s.spare > 0 {
		s.d.budget.release(s.spare)
		s.spare = 0
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
	s := p.s
	s.mu.Lock()
	if s.ended || p.state != pubInflight {
		s.mu.Unlock()
		return
	}
	p.state = pubDone
	s.holding--
	s.confirms++
	s.ring[p.ticket%uint64(len(s.ring))] = nil
	before := s.tracker.Pending()
	seq, advanced := s.tracker.Confirm(p.ticket)
	now, later := false, false
	if advanced {
		s.ackSeq = seq
		d.stats.acked.Add(uint64(before - s.tracker.Pending()))
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
	s := p.s
	s.mu.Lock()
	if s.ended || p.state != pubInflight {
		s.mu.Unlock()
		return
	}
	p.state = pubFailed
	first := !s.retrying
	s.retrying = true
	s.mu.Unlock()
	if first {
		s.log.Warn().Err(err).Str("id", p.msg.Header.Get(jetstream.MsgIDHeader)).Msg("publish failed; will republish")
	}
	d.rt.schedule(s)
}

// releasePublishes gives back the driver tokens the session still holds
// when it ends. Its unconfirmed transactions are dropped here, not lost:
// they were never acknowledged, so the controller sends them again.
func (s *session) releasePublishes() {
	s.releaseSpare()
	s.mu.Lock()
	n := s.holding
	s.holding, s.ended = 0, true
	for i := range s.ring {
		s.ring[i] = nil
	}
	s.mu.Unlock()
	s.d.budget.release(n)
	s.d.rt.forget(s)
}
