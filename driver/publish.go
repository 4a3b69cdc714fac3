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
	msg    nats.Msg
	s      *session
	ticket uint64 // AckTracker ticket
	state  pubState
	sent   time.Time // last handed to nats.go; set only with Options.PublishLatency
}

// publishes maps the messages handed to nats.go to their pub, for the
// async PubAck and error handlers.
type publishes struct {
	mu sync.Mutex
	m  map[*nats.Msg]*pub
}

func (p *publishes) add(x *pub) {
	p.mu.Lock()
	p.m[&x.msg] = x
	p.mu.Unlock()
}

func (p *publishes) take(m *nats.Msg) *pub {
	p.mu.Lock()
	x := p.m[m]
	delete(p.m, m)
	p.mu.Unlock()
	return x
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
	full := s.tracker.Full()
	s.mu.Unlock()
	stalled := false
	for full {
		stalled = true
		select {
		case <-s.windowCh:
		case <-s.ctx.Done():
			return false
		}
		s.mu.Lock()
		full = s.tracker.Full()
		s.mu.Unlock()
	}
	select {
	case d.sem <- struct{}{}:
	default:
		stalled = true
		select {
		case d.sem <- struct{}{}:
		case <-s.ctx.Done():
			return false
		}
	}
	if stalled {
		s.resumedAt = time.Now()
	}

	tx := &s.hs.Tx
	ev := TransactionEvent(s.serial, s.epoch, tx, now, d.opts.ID)
	data, err := EncodeEvent(&ev)
	if err != nil { // cannot happen with these types; never ack what was not stored
		<-d.sem
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
		<-d.sem
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
	s.burst.Store(s.rd != nil && s.rd.rd.Buffered() > 0)
	if direct {
		d.publish(p)
	} else {
		d.rt.schedule(s)
	}
	return true
}

// publish hands p to nats.go; a synchronous failure marks it for retry.
func (d *Driver) publish(p *pub) bool {
	if d.opts.PublishLatency != nil {
		p.sent = time.Now()
	}
	d.pubs.add(p)
	if _, err := d.js.PublishMsgAsync(&p.msg); err != nil {
		if d.pubs.take(&p.msg) != nil {
			d.pubFailed(p, err)
		}
		return false
	}
	return true
}

// onPubAck is the jetstream async ack handler: it runs on the ack
// goroutine for every PubAck and must not block.
func (d *Driver) onPubAck(_ jetstream.JetStream, m *nats.Msg, pa *jetstream.PubAck) {
	p := d.pubs.take(m)
	if p == nil {
		return
	}
	if pa.Duplicate {
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
	<-d.sem
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

// onPubErr is the jetstream async error handler (a PubAck timeout, an
// error reply, or the connection dropping with publishes pending). It may
// run with the publisher's lock held: it only marks and schedules.
func (d *Driver) onPubErr(_ jetstream.JetStream, m *nats.Msg, err error) {
	if p := d.pubs.take(m); p != nil {
		d.pubFailed(p, err)
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
	s.mu.Lock()
	n := s.holding
	s.holding, s.ended = 0, true
	for i := range s.ring {
		s.ring[i] = nil
	}
	s.mu.Unlock()
	for range n {
		<-s.d.sem
	}
	s.d.rt.forget(s)
}
