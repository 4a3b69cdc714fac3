package driver

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/scpbridge"
)

// closeReasons lists every reason a session can end with; counters exist
// for each from the start so Stats shows zeros too.
var closeReasons = []scpgate.CloseReason{
	scpgate.ReasonControllerClosed, scpgate.ReasonHeartbeatTimeout, scpgate.ReasonTakenOver,
	scpgate.ReasonDrained, scpgate.ReasonProtocolError, scpgate.ReasonRejected,
	scpgate.ReasonHandshakeTimeout, scpgate.ReasonSlowConsumer, scpgate.ReasonWriteError,
	scpgate.ReasonShutdown, scpgate.ReasonShed,
}

// maxReject is the largest RejectReason value counted separately.
const maxReject = 16

// counters are the driver's statistics; every field is updated atomically.
type counters struct {
	connects     atomic.Uint64
	established  atomic.Uint64
	closes       map[scpgate.CloseReason]*atomic.Uint64 // read-only map, atomic values
	rejects      [maxReject]atomic.Uint64
	received     atomic.Uint64
	published    atomic.Uint64
	duplicates   atomic.Uint64
	acked        atomic.Uint64
	ackFrames    atomic.Uint64
	pubErrors    atomic.Uint64
	republished  atomic.Uint64
	staleAcks    atomic.Uint64
	deferred     atomic.Uint64
	presenceErrs atomic.Uint64
	unknown      atomic.Uint64
	// security (see identity.go)
	takeovers       atomic.Uint64
	certlessRefused atomic.Uint64
	badSecrets      atomic.Uint64
	presenceHeld    atomic.Uint64
	presenceNever   atomic.Uint64
	// events (see publish.go)
	timesClamped  atomic.Uint64
	noLeader      atomic.Uint64
	noLeaderNanos atomic.Uint64
}

func newCounters() *counters {
	c := &counters{closes: make(map[scpgate.CloseReason]*atomic.Uint64, len(closeReasons))}
	for _, r := range closeReasons {
		c.closes[r] = new(atomic.Uint64)
	}
	return c
}

func (c *counters) closed(r scpgate.CloseReason) {
	if n, ok := c.closes[r]; ok {
		n.Add(1)
	}
}

func (c *counters) rejected(r scpbridge.RejectReason) {
	if int(r) < maxReject {
		c.rejects[r].Add(1)
	}
}

// Stats is a snapshot of a driver's counters. Counters are totals since
// New; Sessions and Inflight are current values.
type Stats struct {
	ID       string `json:"id"`
	Addr     string `json:"addr,omitempty"`
	Draining bool   `json:"draining"`
	// Sessions is the number of established sessions now.
	Sessions int `json:"sessions"`
	// Connects counts accepted connections; Established those that
	// completed the handshake.
	Connects    uint64 `json:"connects"`
	Established uint64 `json:"established"`
	// Closes counts ended connections by reason (rejections included
	// under "rejected").
	Closes map[scpgate.CloseReason]uint64 `json:"closes"`
	// Rejects counts refused handshakes by reject reason name.
	Rejects map[string]uint64 `json:"rejects"`
	// EventsReceived counts transactions read from controllers.
	EventsReceived uint64 `json:"events_received"`
	// EventsPublished counts transactions JetStream confirmed (stored or
	// recognised as duplicates); EventsDuplicate the latter.
	EventsPublished uint64 `json:"events_published"`
	EventsDuplicate uint64 `json:"events_duplicate"`
	// EventsAcked counts transactions acknowledged to controllers;
	// AckFrames the (coalesced) ack frames sent for them.
	EventsAcked uint64 `json:"events_acked"`
	AckFrames   uint64 `json:"ack_frames"`
	// PublishErrors counts failed publish attempts (each is retried);
	// Republished counts the retries.
	PublishErrors uint64 `json:"publish_errors"`
	Republished   uint64 `json:"republished"`
	// StalePubAcks counts replies that matched no publish in flight: the
	// PubAck of a publish already given up (timed out, or the connection
	// dropped) and sent again, or a reply that was not for the driver.
	StalePubAcks uint64 `json:"stale_pubacks"`
	// EventsDeferred counts transactions read while a session was being
	// drained: not published and not acknowledged, the controller sends
	// them again to its next driver.
	EventsDeferred uint64 `json:"events_deferred"`
	// Inflight is the number of unconfirmed transactions now, with the
	// in-flight tokens read loops took ahead for what they already read.
	Inflight int `json:"inflight"`
	// PresenceErrors counts failed scp_sessions writes and presence
	// publishes (each is retried while the driver runs).
	PresenceErrors uint64 `json:"presence_errors"`
	// UnknownFrames counts skipped frames of unknown types.
	UnknownFrames uint64 `json:"unknown_frames"`
	// Takeovers counts sessions of this driver closed because a newer
	// session of their serial began, here or on another driver (each is
	// logged at warn with both remote addresses).
	Takeovers uint64 `json:"takeovers"`
	// TakeoversRefused counts sessions without a client certificate
	// refused for a serial that presented one before (also counted in
	// Rejects as certificate_mismatch).
	TakeoversRefused uint64 `json:"takeovers_refused"`
	// BadSecrets counts hellos refused for a missing or wrong shared
	// secret (Options.CheckSecret; also counted in Rejects as
	// not_allowed).
	BadSecrets uint64 `json:"bad_secrets"`
	// PresenceHeld counts sessions of unknown serials whose presence
	// waited for its turn (past Options.UnknownSerialRate, or while
	// scp_identity could not be read); PresenceNever those of them that
	// ended first and so got no presence event at all.
	PresenceHeld  uint64 `json:"presence_held"`
	PresenceNever uint64 `json:"presence_never"`
	// TimesClamped counts transactions whose time lay outside years
	// 0..9999, stored with time_clamped set.
	TimesClamped uint64 `json:"times_clamped"`
	// NoLeaderOutages counts the periods in which no stream took the
	// driver's events (SCP_EVENTS without a leader); NoLeaderSeconds is
	// their total length, counted when each ends.
	NoLeaderOutages uint64  `json:"no_leader_outages"`
	NoLeaderSeconds float64 `json:"no_leader_seconds"`
}

// Closed returns the number of connections closed with reason r.
func (s Stats) Closed(r scpgate.CloseReason) uint64 { return s.Closes[r] }

// Rejected returns the number of handshakes refused with reason r.
func (s Stats) Rejected(r scpbridge.RejectReason) uint64 { return s.Rejects[r.String()] }

// Stats returns a snapshot of the driver's counters.
func (d *Driver) Stats() Stats {
	c := d.stats
	st := Stats{
		ID:              d.opts.ID,
		Draining:        d.draining.Load(),
		Connects:        c.connects.Load(),
		Established:     c.established.Load(),
		Closes:          make(map[scpgate.CloseReason]uint64, len(c.closes)),
		Rejects:         make(map[string]uint64),
		EventsReceived:  c.received.Load(),
		EventsPublished: c.published.Load(),
		EventsDuplicate: c.duplicates.Load(),
		EventsAcked:     c.acked.Load(),
		AckFrames:       c.ackFrames.Load(),
		PublishErrors:   c.pubErrors.Load(),
		Republished:     c.republished.Load(),
		StalePubAcks:    c.staleAcks.Load(),
		EventsDeferred:  c.deferred.Load(),
		Inflight:        d.budget.inUse(),
		PresenceErrors:  c.presenceErrs.Load(),
		UnknownFrames:   c.unknown.Load(),

		Takeovers:        c.takeovers.Load(),
		TakeoversRefused: c.certlessRefused.Load(),
		BadSecrets:       c.badSecrets.Load(),
		PresenceHeld:     c.presenceHeld.Load(),
		PresenceNever:    c.presenceNever.Load(),
		TimesClamped:     c.timesClamped.Load(),
		NoLeaderOutages:  c.noLeader.Load(),
		NoLeaderSeconds:  time.Duration(c.noLeaderNanos.Load()).Seconds(),
	}
	if a := d.Addr(); a != nil {
		st.Addr = a.String()
	}
	for r, n := range c.closes {
		st.Closes[r] = n.Load()
	}
	for i := 1; i < maxReject; i++ {
		if n := c.rejects[i].Load(); n > 0 {
			st.Rejects[scpbridge.RejectReason(i).String()] = n
		}
	}
	d.mu.Lock()
	st.Sessions = len(d.sessions)
	d.mu.Unlock()
	return st
}

// SessionInfo describes one established session.
type SessionInfo struct {
	Serial    string    `json:"serial"`
	Session   string    `json:"session"`
	Remote    string    `json:"remote"`
	Since     time.Time `json:"since"`
	Model     string    `json:"model,omitempty"`
	Firmware  string    `json:"firmware,omitempty"`
	BootEpoch uint32    `json:"boot_epoch"`
	// LastAcked is the newest transaction serial acknowledged to the
	// controller in this session; Pending those read but not yet
	// acknowledged.
	LastAcked uint32 `json:"last_acked"`
	Pending   int    `json:"pending"`
}

// Sessions returns the established sessions, sorted by serial.
func (d *Driver) Sessions() []SessionInfo {
	d.mu.Lock()
	list := make([]*session, 0, len(d.sessions))
	for _, s := range d.sessions {
		list = append(list, s)
	}
	d.mu.Unlock()
	out := make([]SessionInfo, 0, len(list))
	for _, s := range list {
		out = append(out, s.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Serial < out[j].Serial })
	return out
}

// serials returns the serials of the established sessions, sorted.
func (d *Driver) serials() []string {
	d.mu.Lock()
	out := make([]string, 0, len(d.sessions))
	for serial := range d.sessions {
		out = append(out, serial)
	}
	d.mu.Unlock()
	sort.Strings(out)
	return out
}
