// Package delivery delivers commands to the controllers of a driver's
// sessions (guarantee 4 of the design): the owning session of a
// controller reads its pending commands from SCP_COMMANDS after its cursor
// (scp_cursors), sends them with a small window of outstanding tags,
// publishes each result to scp.res.<serial>, writes the scp_commands
// record, moves the cursor with compare-and-set and deletes the command.
//
// Scale: the driver runs one ordered consumer on SCP_COMMANDS whose
// messages, each a stored command, are handed to the local session of
// their serial (if any) as hints (hints.go); the work (reads,
// publishes, key-value writes) runs on a small pool of workers per driver,
// never on a session's read loop. Every driver hears every command and
// drops those of controllers it does not hold: one message per command and
// driver, against a consumer or a subscription per session that every idle
// session would otherwise hold. A session without commands holds one small
// cmdSession; the delivery state is allocated when a command is pending.
//
// The driver wires it: New, then Start once the streams are ensured, and
// SessionStart, Status and SessionEnd for every established session,
// which it sees only through the Session interface.
package delivery

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/streams"
)

// Tuning of command delivery.
const (
	// commandWorkers is the number of goroutines per driver that fetch,
	// send and complete commands.
	commandWorkers = 32
	// fenceRecheck is how long a session waits after a cursor conflict
	// before it asks scp_sessions whether it still owns its controller.
	fenceRecheck = time.Second
	// retryMin and retryMax bound the backoff after a failed operation.
	retryMin = 50 * time.Millisecond
	retryMax = 2 * time.Second
	// flushTimeout bounds the completion of received statuses once the
	// driver closes.
	flushTimeout = 2 * time.Second
	// hintStartAttempts bounds the tries to create the hint consumer
	// when the driver starts (about 15 s with the backoff).
	hintStartAttempts = 10
	// rescanEvery is how often the dispatcher checks for a NATS reconnect
	// or a hint consumer error, after which every session reads its queue
	// again.
	rescanEvery = time.Second
)

// Stats counts command delivery since New.
type Stats struct {
	// Sent counts command frames sent to controllers; Resent those of them
	// that an earlier session had sent already (same tag).
	Sent   uint64 `json:"sent"`
	Resent uint64 `json:"resent"`
	// OK, NAK, Failed and Expired count the results this driver published.
	OK      uint64 `json:"ok"`
	NAK     uint64 `json:"nak"`
	Failed  uint64 `json:"failed"`
	Expired uint64 `json:"expired"`
	// CursorConflicts counts compare-and-set failures on scp_cursors:
	// another session moved the cursor, delivery on this one stopped.
	CursorConflicts uint64 `json:"cursor_conflicts"`
	// UnknownStatuses counts statuses whose tag named no outstanding
	// command of the session.
	UnknownStatuses uint64 `json:"unknown_statuses"`
	// Doorbells counts command notifications (hints) routed to a session.
	Doorbells uint64 `json:"doorbells"`
	// Hinted counts commands a session took from its hints without reading
	// the stream; Fetched those it read from the stream (a session start,
	// or after the hints were dropped).
	Hinted  uint64 `json:"hinted"`
	Fetched uint64 `json:"fetched"`
	// HintOverflows counts hint buffers of a session that filled: the
	// session reads the stream instead.
	HintOverflows uint64 `json:"hint_overflows"`
	// Unanswered counts commands sent in a live session that got no status
	// within the driver's Options.CommandAnswerTimeout; they end failed, reason
	// "unanswered" (and are counted in Failed too).
	Unanswered uint64 `json:"unanswered"`
	// BusyRetries counts commands sent again after the controller
	// answered NAK busy (also counted in Sent).
	BusyRetries uint64 `json:"busy_retries"`
	// StaleReads counts queue reads a replica answered "not found" while
	// the stream leader held a command (see read.go).
	StaleReads uint64 `json:"stale_reads"`
	// DrainUnanswered counts draining sessions released with commands
	// still unanswered after the driver's Options.DrainAnswerWait (the next driver
	// sends those again).
	DrainUnanswered uint64 `json:"drain_unanswered"`
	// StreamRecreated counts the times the driver found SCP_COMMANDS
	// re-created (see epoch.go).
	StreamRecreated uint64 `json:"stream_recreated"`
	// Errors counts failed NATS operations of delivery (each is retried).
	Errors uint64 `json:"errors"`
	// Delivering is the number of sessions holding delivery state now.
	Delivering int64 `json:"delivering"`
}

// Stats returns a snapshot of the counters.
func (h *Delivery) Stats() Stats {
	c := &h.stats
	return Stats{
		Sent: c.sent.Load(), Resent: c.resent.Load(),
		OK: c.ok.Load(), NAK: c.nak.Load(), Failed: c.failed.Load(), Expired: c.expired.Load(),
		CursorConflicts: c.conflicts.Load(), UnknownStatuses: c.unknown.Load(),
		Doorbells: c.doorbells.Load(), Hinted: c.hinted.Load(), Fetched: c.fetched.Load(),
		HintOverflows: c.hintOverflows.Load(), Unanswered: c.unanswered.Load(), BusyRetries: c.busyRetries.Load(),
		StaleReads: c.staleReads.Load(), DrainUnanswered: c.drainUnanswered.Load(),
		StreamRecreated: c.recreated.Load(),
		Errors:          c.errors.Load(), Delivering: c.delivering.Load(),
	}
}

// CountDrainUnanswered counts a draining session released with commands
// still unanswered (Stats.DrainUnanswered).
func (h *Delivery) CountDrainUnanswered() { h.stats.drainUnanswered.Add(1) }

type cmdCounters struct {
	sent, resent, ok, nak, failed, expired atomic.Uint64
	conflicts, unknown, doorbells, errors  atomic.Uint64
	hinted, fetched, hintOverflows         atomic.Uint64
	unanswered, busyRetries, staleReads    atomic.Uint64
	drainUnanswered, recreated             atomic.Uint64
	delivering                             atomic.Int64
}

// countResult counts a result this driver published.
func (c *cmdCounters) countResult(st scpgate.CommandStatus) {
	switch st {
	case scpgate.StatusOK:
		c.ok.Add(1)
	case scpgate.StatusNAK:
		c.nak.Add(1)
	case scpgate.StatusFailed:
		c.failed.Add(1)
	case scpgate.StatusExpired:
		c.expired.Add(1)
	}
}

// Config is what delivery needs of the driver.
type Config struct {
	NATS     *nats.Conn
	JS       jetstream.JetStream
	Log      zerolog.Logger
	DriverID string // written into results and records
	// Window is the number of outstanding (sent, unanswered) commands
	// per session; FetchTimeout bounds one NATS operation; AnswerTimeout
	// is how long a sent command waits for its status.
	Window        int
	FetchTimeout  time.Duration
	AnswerTimeout time.Duration
	// BusyRetry and BusyRetryMax bound the wait before a command answered
	// NAK busy is sent again (see busy.go).
	BusyRetry, BusyRetryMax time.Duration
	// Draining reports whether the driver drains: no new command is sent.
	Draining func() bool
	// HardStop ends when the driver must stop now; without NATS, the
	// completion of received statuses then stops too.
	HardStop context.Context
	// WG counts every goroutine delivery starts; the driver waits for it.
	WG *sync.WaitGroup
}

// Delivery delivers commands to the sessions of one driver.
type Delivery struct {
	nc           *nats.Conn
	js           jetstream.JetStream
	handles      *streams.Handles // set by Start
	log          zerolog.Logger
	driverID     string
	window       int                 // outstanding (sent, unanswered) commands per session
	opTimeout    time.Duration       // bound of one NATS operation
	answerBy     time.Duration       // Config.AnswerTimeout
	busyRetry    time.Duration       // Config.BusyRetry
	busyRetryMax time.Duration       // Config.BusyRetryMax
	draining     func() bool         // Config.Draining
	hardCtx      context.Context     // Config.HardStop
	wg           *sync.WaitGroup     // Config.WG
	sentJS       jetstream.JetStream // publishes "sent" records without waiting
	stats        cmdCounters
	rq           runQueue
	firstRead    msgReader // directGet; SimulateStaleReads replaces it before Start
	simulated    bool      // SimulateStaleReads was called: never read through the leader alone
	// replicas is the replica count of SCP_COMMANDS as last seen (0
	// before Start); with 1, queue reads go to the leader alone (read.go).
	replicas atomic.Int32

	hintCC    jetstream.ConsumeContext // the hint consumer; set by Start
	hintName  string                   // its first consumer name
	hintGen   atomic.Uint64            // bumped when every session's hints may be incomplete
	lostHints atomic.Bool              // the hint consumer reported an error: rescan
	// incarnation is the creation time (unix ns) of SCP_COMMANDS as the
	// driver last saw it (epoch.go).
	incarnation atomic.Int64

	mu       sync.RWMutex
	sessions map[string]*cmdSession  // current session by serial; guarded by mu
	shadowed map[Session]*cmdSession // sessions replaced by a newer one of their serial, until they end; guarded by mu
}

// New returns the command delivery of a driver; Start runs it.
func New(cfg Config) *Delivery {
	h := &Delivery{
		nc:           cfg.NATS,
		js:           cfg.JS,
		log:          cfg.Log,
		driverID:     cfg.DriverID,
		window:       cfg.Window,
		opTimeout:    cfg.FetchTimeout,
		answerBy:     cfg.AnswerTimeout,
		busyRetry:    cfg.BusyRetry,
		busyRetryMax: cfg.BusyRetryMax,
		draining:     cfg.Draining,
		hardCtx:      cfg.HardStop,
		wg:           cfg.WG,
		sessions:     make(map[string]*cmdSession),
		shadowed:     make(map[Session]*cmdSession),
	}
	h.rq.cond = sync.NewCond(&h.rq.mu)
	h.firstRead = h.directGet
	// A context of its own: its error handler is for "sent" records only,
	// the driver's handlers are for events. (New fails only on a nil
	// connection, which New of the driver refused already.)
	h.sentJS, _ = jetstream.New(cfg.NATS,
		jetstream.WithPublishAsyncErrHandler(h.onSentErr),
		jetstream.WithPublishAsyncTimeout(h.opTimeout))
	return h
}

// cmdSession is the command side of one established session.
type cmdSession struct {
	s      Session
	serial string // s.Serial()

	mu       sync.Mutex // guards the fields below
	queued   bool       // in the run queue
	running  bool       // a worker is stepping it
	dirty    bool       // kicked since the worker started
	ended    bool       // the session ended: complete what was answered, send nothing
	sawEmpty bool       // a read found the queue empty: later commands are new to every session
	fails    uint8      // consecutive failed operations, for backoff
	lost     uint32     // bumped whenever hints were dropped
	timer    *time.Timer
	timerAt  time.Time
	statuses []scpbridge.CommandStatus // received, not yet applied
	awaiting atomic.Int32              // commands sent, waiting for their status (set by the worker)
	reset    bool                      // SCP_COMMANDS was re-created: drop dl before the next step
	dl       *cmdState                 // nil until a command was pending; then owned by the running worker
	// the cursor as read when the session first found its queue empty
	// (curOK): the first command then skips that read (see load)
	cur, curRev uint64
	curOK       bool
	// hints (hints.go): commands of the serial from the hint
	// consumer, not yet taken, ascending; tail, when not 0 and tailGen is
	// the current hintGen, is the sequence from which they are complete.
	hints   []*jetstream.RawStreamMsg
	tail    uint64
	tailGen uint64
}

// Start starts delivery on the driver's streams and buckets: it creates
// the hint consumer (retrying a while) and the workers. It runs once,
// before the driver accepts a session; ctx ends when the driver closes.
func (h *Delivery) Start(ctx context.Context, handles *streams.Handles) error {
	h.handles = handles
	// Start has just ensured the streams, so NATS was there: a failure
	// here is a blip, retried for a while rather than failing Start.
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := h.startHints(ctx)
		if err == nil {
			break
		}
		if attempt == hintStartAttempts {
			return err
		}
		h.log.Warn().Err(err).Dur("retry_in", wait).Msg("start command hints failed")
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
	// Work outlives ctx by flushTimeout, so that what controllers
	// answered before the driver closed is still completed.
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// Without NATS nothing can be completed: a hard stop (drain deadline)
	// ends the work at once.
	context.AfterFunc(h.hardCtx, func() {
		if !h.nc.IsConnected() {
			cancel()
		}
	})
	h.rq.cancel = cancel
	h.wg.Go(func() { h.dispatch(ctx) })
	for range commandWorkers {
		h.wg.Go(func() { h.worker(work) })
	}
	return nil
}

// SessionStart runs when s owns its serial on this driver, after its
// welcome was queued and before its first transaction is read.
func (h *Delivery) SessionStart(s Session) {
	cs := &cmdSession{s: s, serial: s.Serial()}
	h.mu.Lock()
	if old := h.sessions[cs.serial]; old != nil {
		h.shadowed[old.s] = old
	}
	h.sessions[cs.serial] = cs
	h.mu.Unlock()
	h.kick(cs)
}

// Status takes a FrameCommandStatus of s, on its read loop; st is reused
// by the next frame, so it is copied.
func (h *Delivery) Status(s Session, st *scpbridge.CommandStatus) {
	cs := h.lookup(s)
	if cs == nil {
		h.stats.unknown.Add(1)
		return
	}
	cs.mu.Lock()
	if cs.dl == nil {
		cs.mu.Unlock()
		h.stats.unknown.Add(1)
		return
	}
	cs.statuses = append(cs.statuses, *st) // Detail is a copy already
	cs.mu.Unlock()
	h.kick(cs)
}

// SessionEnd runs once after an established session's connection closed.
func (h *Delivery) SessionEnd(s Session) {
	serial := s.Serial()
	h.mu.Lock()
	cs := h.sessions[serial]
	if cs != nil && cs.s == s {
		delete(h.sessions, serial)
	} else {
		cs = h.shadowed[s]
		delete(h.shadowed, s)
	}
	h.mu.Unlock()
	if cs == nil {
		return
	}
	cs.mu.Lock()
	cs.ended = true
	clear(cs.hints)
	cs.hints = nil
	if cs.timer != nil {
		cs.timer.Stop()
		cs.timer = nil
	}
	flush := cs.dl != nil
	cs.mu.Unlock()
	if flush {
		h.stats.delivering.Add(-1)
		h.kick(cs) // complete the commands the controller answered
	}
}

// lookup returns the command side of s, current or shadowed.
func (h *Delivery) lookup(s Session) *cmdSession {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if cs := h.sessions[s.Serial()]; cs != nil && cs.s == s {
		return cs
	}
	return h.shadowed[s]
}
