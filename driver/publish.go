package driver

import (
	"sync"
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
	buf    []byte    // encoding buffer, kept with the pooled pub
	id     []string  // msg.Header's Nats-Msg-Id values, set without a map lookup
}

// pubWindow is a session's publishing state, allocated on its first
// transaction (an idle session holds none); guarded by the session's mu
// but for subjects, which only the read loop uses.
type pubWindow struct {
	ring     []*pub // by ticket % window
	subjects [len(kindOf)]string
}

// subjectOf returns the event subject of transaction type t (of kind k),
// built once per session and type.
func (s *session) subjectOf(t scpbridge.TranType, k scpgate.Kind) string {
	if int(t) >= len(s.win.subjects) {
		return s.subject(k)
	}
	subj := s.win.subjects[t]
	if subj == "" {
		subj = s.subject(k)
		s.win.subjects[t] = subj
	}
	return subj
}

// pubPool recycles pubs, with their header map and encoding buffer, once
// JetStream confirmed them: nats.go copies what it sends, so nothing
// else holds them by then.
var pubPool = sync.Pool{New: func() any {
	id := make([]string, 1)
	return &pub{msg: nats.Msg{Header: nats.Header{jetstream.MsgIDHeader: id}}, id: id}
}}

// newPub returns a pub of session s from the pool.
func newPub(s *session) *pub {
	p := pubPool.Get().(*pub)
	p.s = s
	return p
}

// encode sets p's data and message id to those of ev.
func (p *pub) encode(ev *scpgate.Event) bool {
	p.id[0] = ev.ID
	if b, ok := appendEvent(p.buf[:0], ev); ok {
		p.buf = b
		p.msg.Data = b
		return true
	}
	b, err := EncodeEvent(ev) // what appendEvent leaves to encoding/json
	if err != nil {
		p.s.log.Error().Err(err).Msg("encode event")
		return false
	}
	p.msg.Data = b
	return true
}

// recycle returns a confirmed p to the pool. The caller holds the
// session's mu and nothing else refers to p.
func (p *pub) recycle() {
	if cap(p.buf) > maxPooledEvent {
		return
	}
	p.id[0] = ""
	*p = pub{msg: nats.Msg{Header: p.msg.Header}, id: p.id, buf: p.buf[:0]}
	pubPool.Put(p)
}

// maxPooledEvent is the largest encoding buffer kept in the pool.
const maxPooledEvent = 1024

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
		s.win = &pubWindow{ring: make([]*pub, d.opts.MaxInflightPerSession)}
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
	if ev.TimeClamped {
		d.stats.timesClamped.Add(1)
		s.log.Warn().Uint32("seq", tx.Seq).Int64("time_ms", tx.TimeMS).Time("stored_time", ev.Time).
			Msg("transaction time outside years 0..9999; stored with time_clamped")
	}
	p := newPub(s)
	if !p.encode(&ev) { // cannot happen with these types; never ack what was not stored
		d.budget.release(1)
		s.close(scpgate.ReasonProtocolError, nil)
		return false
	}
	p.msg.Subject = s.subjectOf(tx.Type, ev.Kind)

	connected := d.pb.connected.Load()
	s.mu.Lock()
	ticket, ok := s.tracker.Add(tx.Seq)
	if !ok || s.ended { // the decoder guarantees order and the window was checked
		s.mu.Unlock()
		d.budget.release(1)
		return false
	}
	p.ticket = ticket
	s.nextTicket = ticket + 1
	s.win.ring[ticket%uint64(len(s.win.ring))] = p
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
	s.burst.Store(s.rd != nil && s.rd.rd.Buffered() > 0)
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
	d.pb.published()
	s := p.s
	s.mu.Lock()
	if s.ended || p.state != pubInflight {
		s.mu.Unlock()
		return
	}
	p.state = pubDone
	s.holding--
	s.confirms++
	s.win.ring[p.ticket%uint64(len(s.win.ring))] = nil
	before := s.tracker.Pending()
	seq, advanced := s.tracker.Confirm(p.ticket)
	p.recycle() // nothing refers to p any more
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
	quiet := false // logged once per outage, not per session
	switch err {
	case errNoResponders:
		d.pb.noResponders()
		quiet = true
	case errNoLeader:
		quiet = true
	}
	s := p.s
	s.mu.Lock()
	if s.ended || p.state != pubInflight {
		s.mu.Unlock()
		return
	}
	p.state = pubFailed
	first := !s.retrying
	s.retrying = true
	id := p.msg.Header.Get(jetstream.MsgIDHeader) // p may be sent again and recycled once s.mu is let go
	s.mu.Unlock()
	if first && !quiet {
		s.log.Warn().Err(err).Str("id", id).Msg("publish failed; will republish")
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
	if s.win != nil {
		clear(s.win.ring)
	}
	s.mu.Unlock()
	s.d.budget.release(n)
	s.d.rt.forget(s)
}
