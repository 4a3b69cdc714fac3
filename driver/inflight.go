package driver

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/scpbridge"
)

// inflight is a session's publishing state: its transactions from the
// read loop until JetStream confirmed them. Guarded by session.mu.
type inflight struct {
	tracker    *scpbridge.AckTracker // allocated on the first transaction
	win        *pubWindow            // allocated on the first transaction
	nextTicket uint64
	retrying   bool // failed or queued publishes wait for the retrier (retry.go)
	holding    int  // unconfirmed pubs holding driver tokens
	confirms   uint64
	ended      bool // publishing state released; late PubAcks are ignored
}

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
	if int(t) >= len(s.inflight.win.subjects) {
		return s.subject(k)
	}
	subj := s.inflight.win.subjects[t]
	if subj == "" {
		subj = s.subject(k)
		s.inflight.win.subjects[t] = subj
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

// windowRoom returns the room left in the session's window, allocating
// the publishing state on the first transaction; quiesced reports a
// draining session, which publishes nothing more.
func (s *session) windowRoom() (room int, quiesced bool) {
	n := s.d.opts.MaxInflightPerSession
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.life.quiesce {
		return 0, true
	}
	if s.inflight.tracker == nil {
		s.inflight.tracker = scpbridge.NewAckTracker(n)
		s.inflight.win = &pubWindow{ring: make([]*pub, n)}
	}
	return n - s.inflight.tracker.Pending(), false
}

// track enters p, the transaction of sequence seq, in the session's
// window. direct says it is to be published now; else it is queued
// behind the publishes the retrier holds (or NATS is down). It reports
// false when the session ended.
func (s *session) track(p *pub, seq uint32) (direct, ok bool) {
	connected := s.d.pb.connected.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	ticket, ok := s.inflight.tracker.Add(seq)
	if !ok || s.inflight.ended { // the decoder guarantees order and the window was checked
		return false, false
	}
	p.ticket = ticket
	s.inflight.nextTicket = ticket + 1
	s.inflight.win.ring[ticket%uint64(len(s.inflight.win.ring))] = p
	s.inflight.holding++
	direct = !s.inflight.retrying && connected
	if direct {
		p.state = pubInflight
	} else {
		p.state = pubQueued
		s.inflight.retrying = true
	}
	return direct, true
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
		room := s.d.opts.MaxInflightPerSession - s.inflight.tracker.Pending()
		s.mu.Unlock()
		if room > 0 {
			return room
		}
	}
}

// releasePublishes gives back the driver tokens the session still holds
// when it ends. Its unconfirmed transactions are dropped here, not lost:
// they were never acknowledged, so the controller sends them again.
func (s *session) releasePublishes() {
	s.releaseSpare()
	s.mu.Lock()
	n := s.inflight.holding
	s.inflight.holding, s.inflight.ended = 0, true
	if s.inflight.win != nil {
		clear(s.inflight.win.ring)
	}
	s.mu.Unlock()
	s.d.budget.release(n)
	s.d.rt.forget(s)
}
