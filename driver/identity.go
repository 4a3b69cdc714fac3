package driver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/scpbridge"
)

// identityOpTimeout bounds one read or write of scp_identity during a
// handshake.
const identityOpTimeout = 2 * time.Second

// Identity is the value of a serial's key in the scp_identity bucket: what
// the drivers remember of the controllers that used the serial.
type Identity struct {
	// FirstSeen is when a session of the serial was first recorded.
	FirstSeen time.Time `json:"first_seen"`
	// CertSeen is when a session of the serial first presented a client
	// certificate naming it; zero if none ever did. Once set, a session
	// without a certificate is refused for this serial (Options.RequireCertSerial
	// with tls.VerifyClientCertIfGiven).
	CertSeen time.Time `json:"cert_seen,omitzero"`
}

// identities caches the scp_identity records a driver read or wrote. A
// record only moves forward (unknown, seen, certificate seen), so a cached
// record is never wrong about what it says, only possibly behind.
type identities struct {
	kv      jetstream.KeyValue // set by Start
	limiter *rate.Limiter      // new serials recorded (and their presence)
	kick    chan struct{}      // cap 1: held has a session

	mu    sync.Mutex
	cache map[string]Identity
	held  []*session // quiet sessions of unknown serials, oldest first (see promote)
}

func newIdentities(perSecond float64) *identities {
	lim := rate.NewLimiter(rate.Inf, 0)
	if perSecond > 0 {
		lim = rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond)))
	}
	return &identities{limiter: lim, cache: make(map[string]Identity), kick: make(chan struct{}, 1)}
}

func (ids *identities) cached(serial string) (Identity, bool) {
	ids.mu.Lock()
	defer ids.mu.Unlock()
	rec, ok := ids.cache[serial]
	return rec, ok
}

func (ids *identities) remember(serial string, rec Identity) {
	ids.mu.Lock()
	ids.cache[serial] = rec
	ids.mu.Unlock()
}

// get reads the record of serial: from the cache unless fresh, else from
// the bucket. found is false for a serial never recorded.
func (ids *identities) get(ctx context.Context, serial string, fresh bool) (rec Identity, rev uint64, found bool, err error) {
	if !fresh {
		if rec, ok := ids.cached(serial); ok {
			return rec, 0, true, nil
		}
	}
	e, err := ids.kv.Get(ctx, serial)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Identity{}, 0, false, nil
	}
	if err != nil {
		return Identity{}, 0, false, fmt.Errorf("read scp_identity: %w", err)
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return Identity{}, 0, false, fmt.Errorf("decode scp_identity of %s: %w", serial, err)
	}
	ids.remember(serial, rec)
	return rec, e.Revision(), true, nil
}

// record writes serial's record: created if none, else updated with
// update (compare-and-set on the revision, read again on a conflict).
// update reports whether it changed the record; written is false when it
// did not (another driver wrote the same meanwhile).
func (ids *identities) record(ctx context.Context, serial string, update func(*Identity) bool) (written bool, err error) {
	for range 5 {
		rec, rev, found, err := ids.get(ctx, serial, true)
		if err != nil {
			return false, err
		}
		if !update(&rec) {
			return false, nil
		}
		b, _ := json.Marshal(rec)
		if found {
			_, err = ids.kv.Update(ctx, serial, b, rev)
		} else {
			_, err = ids.kv.Create(ctx, serial, b)
		}
		switch {
		case err == nil:
			ids.remember(serial, rec)
			return true, nil
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			continue // written meanwhile by another driver: read again
		default:
			return false, fmt.Errorf("write scp_identity: %w", err)
		}
	}
	return false, errors.New("write scp_identity: too many concurrent writes")
}

// certPresented reports whether the session presented a client
// certificate (its identity was checked by certAdmits).
func (s *session) certPresented() bool {
	tc, ok := s.conn.(*tls.Conn)
	return ok && len(tc.ConnectionState().PeerCertificates) > 0
}

// admitIdentity applies what scp_identity remembers of the serial, after
// the certificate and allow-list checks:
//   - with RequireCertSerial, a session without a certificate (allowed by
//     tls.VerifyClientCertIfGiven) is refused for a serial that presented
//     one before: it cannot take the serial over from its panel. A
//     session with one records that, before its welcome;
//   - without an allow list, a serial never seen before (no record, and
//     no presence event in SCP_EVENTS) is recorded, at most
//     Options.UnknownSerialRate of them a second; the presence of the
//     others waits for its turn (see promote).
//
// When the bucket cannot be read, a session that needs it for its
// certificate rule is refused (unavailable); otherwise it goes on
// unrecorded, and quiet.
func (s *session) admitIdentity() (scpbridge.RejectReason, string, bool) {
	d := s.d
	cert := d.opts.RequireCertSerial && s.certPresented()
	certless := d.opts.RequireCertSerial && !cert
	if !d.opts.RequireCertSerial && (d.opts.Admit != nil || s.vouched || d.opts.UnknownSerialRate < 0) {
		return 0, "", true // vouched for by the allow list or the secret, or no limit: nothing to look up
	}
	ctx, cancel := context.WithTimeout(s.ctx, identityOpTimeout)
	defer cancel()
	rec, _, found, err := d.ids.get(ctx, s.serial, certless)
	if err != nil {
		s.log.Warn().Err(err).Msg("identity check failed")
		if d.opts.RequireCertSerial {
			return scpbridge.RejectUnavailable, "identity store unavailable", false
		}
		d.ids.hold(s) // as if unknown
		return 0, "", true
	}
	if certless && !rec.CertSeen.IsZero() {
		d.stats.certlessRefused.Add(1)
		s.log.Warn().Time("cert_seen", rec.CertSeen).
			Msg("session without a client certificate refused: this serial presented one before")
		return scpbridge.RejectCertificateMismatch, "this serial needs its client certificate", false
	}
	now := time.Now().UTC()
	switch {
	case cert && rec.CertSeen.IsZero():
		written, err := d.ids.record(ctx, s.serial, func(r *Identity) bool {
			if !r.CertSeen.IsZero() {
				return false
			}
			r.CertSeen = now
			if r.FirstSeen.IsZero() {
				r.FirstSeen = now
			}
			return true
		})
		if err != nil {
			s.log.Warn().Err(err).Msg("recording the client certificate failed")
			return scpbridge.RejectUnavailable, "identity store unavailable", false
		}
		if written {
			s.log.Info().Msg("first session of this serial with a client certificate: sessions without one are refused from now on")
		}
	case !found && d.opts.Admit == nil:
		if !d.seenInEvents(ctx, s) && !d.ids.admitNow() {
			d.ids.hold(s)
			return 0, "", true
		}
		d.ids.recordNew(ctx, s)
	}
	return 0, "", true
}

// seenInEvents reports whether SCP_EVENTS holds a presence event of the
// session's serial: a controller known from before scp_identity existed
// (an upgrade), or whose record was lost, is not held as unknown.
func (d *Driver) seenInEvents(ctx context.Context, s *session) bool {
	_, err := d.handles.Events.GetLastMsgForSubject(ctx, s.subject(scpgate.KindPresence))
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		s.log.Debug().Err(err).Msg("look for earlier presence")
	}
	return err == nil
}

// recordNew records a serial seen for the first time.
func (ids *identities) recordNew(ctx context.Context, s *session) {
	now := time.Now().UTC()
	_, err := ids.record(ctx, s.serial, func(r *Identity) bool {
		if !r.FirstSeen.IsZero() {
			return false
		}
		r.FirstSeen = now
		return true
	})
	if err != nil {
		s.log.Warn().Err(err).Msg("recording a new serial failed")
	}
}

// full reports whether the driver holds Options.MaxSessions sessions and
// none of serial: a quick check before the handshake's NATS work
// (register decides under the lock).
func (d *Driver) full(serial string) bool {
	if d.opts.MaxSessions <= 0 {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sessions[serial] == nil && len(d.sessions) >= d.opts.MaxSessions
}

// Presence states of a session (session.presence). A session of an
// unknown serial over Options.UnknownSerialRate is held: it runs, but its
// presence events wait until promote records the serial. One that ends
// first never had presence and gets none.
const (
	presenceOn        int32 = iota // presence events as usual
	presenceHeld                   // waiting for promote: no events yet
	presencePromoting              // promote is publishing its online event
	presenceNever                  // ended while held: no events
)

// admitNow takes a token for a new serial now, unless others wait.
func (ids *identities) admitNow() bool {
	ids.mu.Lock()
	waiting := len(ids.held) > 0
	ids.mu.Unlock()
	return !waiting && ids.limiter.Allow()
}

// hold queues s for promote.
func (ids *identities) hold(s *session) {
	s.presence.Store(presenceHeld)
	s.promoted = make(chan struct{})
	s.d.stats.presenceHeld.Add(1)
	s.log.Info().Msg("unknown serial over the rate of new serials: presence waits for its turn")
	ids.mu.Lock()
	ids.held = append(ids.held, s)
	ids.mu.Unlock()
	select {
	case ids.kick <- struct{}{}:
	default:
	}
}

// next takes the oldest held session.
func (ids *identities) next() *session {
	ids.mu.Lock()
	defer ids.mu.Unlock()
	if len(ids.held) == 0 {
		return nil
	}
	s := ids.held[0]
	ids.held[0] = nil
	ids.held = ids.held[1:]
	if len(ids.held) == 0 {
		ids.held = nil
	}
	return s
}

// promote gives held sessions their presence at Options.UnknownSerialRate,
// oldest first, until the driver closes: a session still open when its
// turn comes is recorded in scp_identity and publishes its online event;
// one that ended (a churning peer) is skipped.
func (d *Driver) promote() {
	for {
		s := d.ids.next()
		if s == nil {
			select {
			case <-d.bgCtx.Done():
				return
			case <-d.ids.kick:
			}
			continue
		}
		if s.presence.Load() != presenceHeld {
			continue // ended while held
		}
		if err := d.ids.limiter.Wait(d.bgCtx); err != nil {
			return // closing: the sessions still held get no presence
		}
		<-s.startDone // its own online event was skipped
		if !s.presence.CompareAndSwap(presenceHeld, presencePromoting) {
			continue
		}
		ctx, cancel := context.WithTimeout(d.bgCtx, identityOpTimeout)
		d.ids.recordNew(ctx, s)
		cancel()
		ev := PresenceEvent(s.serial, s.epoch, s.presenceOf(""), PresenceOnline, time.Now(), d.opts.ID)
		d.publishPresence(s, &ev)
		s.presence.Store(presenceOn)
		close(s.promoted)
	}
}

// presenceAllowed reports whether a presence event of s with code may be
// published now (see the presence states). An offline event of a session
// being promoted waits for its online event.
func (s *session) presenceAllowed(code string) bool {
	switch code {
	case PresenceOnline:
		return s.presence.Load() != presenceHeld
	case PresenceOffline:
		if s.presence.CompareAndSwap(presenceHeld, presenceNever) {
			s.d.stats.presenceNever.Add(1)
			return false
		}
		if s.presence.Load() == presencePromoting {
			<-s.promoted
		}
	}
	return s.presence.Load() != presenceNever
}
