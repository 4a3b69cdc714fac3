package driver

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/scpbridge"
)

// presenceOpTimeout bounds one scp_sessions write or presence publish.
const presenceOpTimeout = 2 * time.Second

// presenceWorkers bounds the goroutines doing presence work. A ramp of
// thousands of connects queues its presence work instead of holding a
// goroutine per session while JetStream catches up: the runtime never
// frees a goroutine's descriptor, so a peak of goroutines is paid for as
// long as the process lives.
const presenceWorkers = 64

// presenceQueue runs presence work in order of arrival on at most
// presenceWorkers goroutines, started when work arrives and stopped when
// the queue is empty.
type presenceQueue struct {
	mu      sync.Mutex
	work    []func()
	workers int
}

// presence queues f; d.presWG counts it until it has run.
func (d *Driver) presence(f func()) {
	d.presWG.Add(1)
	q := &d.presq
	q.mu.Lock()
	q.work = append(q.work, f)
	start := q.workers < presenceWorkers
	if start {
		q.workers++
	}
	q.mu.Unlock()
	if start {
		go d.presenceWorker()
	}
}

func (d *Driver) presenceWorker() {
	q := &d.presq
	for {
		q.mu.Lock()
		if len(q.work) == 0 {
			q.work = nil // let the backing array go
			q.workers--
			q.mu.Unlock()
			return
		}
		f := q.work[0]
		q.work[0] = nil
		q.work = q.work[1:]
		q.mu.Unlock()
		f()
		d.presWG.Done()
	}
}

// SessionRecord is the value of a controller's key in the scp_sessions
// bucket: which driver and session own it. The owner writes it when a
// session starts and deletes it when the session ends, unless another
// session took the key over meanwhile.
type SessionRecord struct {
	Driver   string    `json:"driver"`
	Session  string    `json:"session"`
	Remote   string    `json:"remote"`
	Since    time.Time `json:"since"`
	Model    string    `json:"model,omitempty"`
	Firmware string    `json:"firmware,omitempty"`
}

// presenceOf returns the session's presence description.
func (s *session) presenceOf(reason scpgate.CloseReason) scpgate.Presence {
	return scpgate.Presence{Session: s.id, Remote: s.remote, Model: s.model, Firmware: s.firmware, Reason: string(reason)}
}

// startPresence writes the session's scp_sessions key (retried while the
// session lives) and then publishes its online event (retried while the
// driver runs), on the presence queue.
func (s *session) startPresence() { s.d.presence(s.presenceStart) }

func (s *session) presenceStart() {
	d := s.d
	defer close(s.startDone)
	rec := s.record()
	var rev uint64
	ok := d.retryOp(s.ctx, s, "write scp_sessions", func(ctx context.Context) (err error) {
		rev, err = d.handles.Sessions.Put(ctx, s.serial, rec)
		return err
	})
	if ok {
		s.owned(rev)
	}
	p := s.presenceOf("")
	p.SessionRev = rev // orders this session's presence after older sessions'
	ev := PresenceEvent(s.serial, s.epoch, p, PresenceOnline, s.since, d.opts.ID)
	d.publishPresence(s, &ev)
}

// owned records the revision of our scp_sessions write; if another
// driver's newer write was seen before it, the session was taken over.
func (s *session) owned(rev uint64) {
	s.mu.Lock()
	s.own.kvRev = rev
	foreign := s.own.foreign
	s.mu.Unlock()
	if foreign > rev {
		s.takenOver("a newer session on another driver", "")
	}
}

// takenOver closes the session because another session, from byRemote,
// owns its serial.
func (s *session) takenOver(why, byRemote string) {
	s.d.stats.takeovers.Add(1)
	s.log.Warn().Str("by", why).Str("by_remote", byRemote).Msg("session taken over")
	s.close(scpgate.ReasonTakenOver, &scpbridge.Bye{Reason: scpbridge.ByeTakenOver, Text: printable(why)})
}

// endPresence deletes the session's scp_sessions key if it is still ours
// and publishes its offline event with the close reason, in the
// background, after the start work finished (so offline follows online).
func (s *session) endPresence(reason scpgate.CloseReason) {
	d := s.d
	d.presence(func() {
		<-s.startDone
		s.mu.Lock()
		rev := s.own.kvRev
		s.mu.Unlock()
		if rev != 0 {
			d.retryOp(d.bgCtx, s, "delete scp_sessions", func(ctx context.Context) error {
				err := d.handles.Sessions.Delete(ctx, s.serial, jetstream.LastRevision(rev))
				if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
					return nil // another session owns the key now: leave it
				}
				return err
			})
		}
		p := s.presenceOf(reason)
		p.SessionRev = rev
		ev := PresenceEvent(s.serial, s.epoch, p, PresenceOffline, time.Now(), d.opts.ID)
		d.publishPresence(s, &ev)
	})
}

// publishPresence publishes a presence event, retrying while the driver
// runs. The message id makes a repeated publish harmless.
func (d *Driver) publishPresence(s *session, ev *scpgate.Event) {
	if !s.presenceAllowed(ev.Code) {
		return // an unknown serial past the rate (see identity.go)
	}
	data, err := EncodeEvent(ev)
	if err != nil {
		s.log.Error().Err(err).Msg("encode presence event")
		return
	}
	subject := s.subject(scpgate.KindPresence)
	d.retryOp(d.bgCtx, s, "publish presence "+ev.Code, func(ctx context.Context) error {
		msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{ev.ID}}}
		_, err := d.js.PublishMsg(ctx, msg)
		return err
	})
}

// retryOp runs op until it succeeds or ctx ends, with backoff. Each attempt
// gets presenceOpTimeout even when ctx has ended, so one attempt is always
// made, unless the driver stops hard (d.hardCtx: Drain's deadline passed,
// or Close while NATS is unreachable).
func (d *Driver) retryOp(ctx context.Context, s *session, what string, op func(context.Context) error) bool {
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		// Not ctx: an attempt outlives it, but not the driver's hard stop.
		octx, cancel := context.WithTimeout(d.hardCtx, presenceOpTimeout)
		err := op(octx)
		cancel()
		if err == nil {
			return true
		}
		d.stats.presenceErrs.Add(1)
		if d.hardCtx.Err() != nil {
			s.log.Warn().Err(err).Int("attempts", attempt).Msg(what + " abandoned: the driver stopped")
			return false
		}
		if attempt == 1 {
			s.log.Warn().Err(err).Msg(what + " failed; retrying")
		}
		select {
		case <-ctx.Done():
			s.log.Warn().Err(err).Int("attempts", attempt).Msg(what + " abandoned")
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// watchSessions watches scp_sessions (one watcher per driver) and closes a
// local session whose serial a newer session, on another driver, now owns.
func (d *Driver) watchSessions() {
	for d.bgCtx.Err() == nil {
		w, err := d.handles.Sessions.WatchAll(d.bgCtx, jetstream.UpdatesOnly(), jetstream.IgnoreDeletes())
		if err != nil {
			d.log.Warn().Err(err).Msg("watch scp_sessions failed; retrying")
			select {
			case <-d.bgCtx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		d.watch(w)
		if !d.nc.IsConnected() {
			// Stop deletes the consumer and waits for the answer: without
			// NATS that takes the whole request timeout, which a driver
			// stopping by its deadline cannot spend here.
			go func() { _ = w.Stop() }()
			continue
		}
		_ = w.Stop()
	}
}

// watch consumes one watcher until it ends or the driver closes.
func (d *Driver) watch(w jetstream.KeyWatcher) {
	for {
		select {
		case <-d.bgCtx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e != nil && e.Operation() == jetstream.KeyValuePut {
				d.sessionsUpdate(e.Key(), e.Revision(), e.Value())
			}
		}
	}
}

// sessionsUpdate handles one scp_sessions write.
func (d *Driver) sessionsUpdate(serial string, rev uint64, value []byte) {
	s := d.lookup(serial)
	if s == nil {
		return
	}
	var rec SessionRecord
	if err := json.Unmarshal(value, &rec); err != nil {
		d.log.Warn().Err(err).Str("serial", serial).Msg("bad scp_sessions value")
		return
	}
	if rec.Session == s.id {
		return // our own write
	}
	if rec.Driver == d.opts.ID {
		// A late write of an older session of this serial on this driver
		// (it was taken over locally while its write was under way): the
		// session in d.sessions is the live one, so write its record again.
		s.reassert()
		return
	}
	s.mu.Lock()
	ours := s.own.kvRev
	if ours == 0 && rev > s.own.foreign {
		s.own.foreign = rev // decided when our own write returns
	}
	s.mu.Unlock()
	if ours != 0 && rev > ours {
		s.takenOver("session "+rec.Session+" on driver "+rec.Driver, rec.Remote)
	}
}

// reassert writes the session's scp_sessions record again, after its own
// first write finished, and records the new revision.
func (s *session) reassert() {
	d := s.d
	s.mu.Lock()
	if s.life.closing || s.own.reasserting {
		s.mu.Unlock()
		return
	}
	s.own.reasserting = true
	s.mu.Unlock()
	d.bgWG.Go(func() { // called from the watcher, which bgWG already counts
		defer func() {
			s.mu.Lock()
			s.own.reasserting = false
			s.mu.Unlock()
		}()
		select {
		case <-s.startDone:
		case <-s.ctx.Done():
			return
		}
		s.log.Info().Msg("scp_sessions names an older session of this driver; writing ours again")
		var rev uint64
		if d.retryOp(s.ctx, s, "rewrite scp_sessions", func(ctx context.Context) (err error) {
			rev, err = d.handles.Sessions.Put(ctx, s.serial, s.record())
			return err
		}) {
			s.owned(rev)
		}
	})
}

// record returns the session's scp_sessions value.
func (s *session) record() []byte {
	rec, _ := json.Marshal(SessionRecord{
		Driver: s.d.opts.ID, Session: s.id, Remote: s.remote, Since: s.since.UTC(),
		Model: s.model, Firmware: s.firmware,
	})
	return rec
}
