package driver

// Command delivery (guarantee 4 of the design): the owning session of a
// controller reads its pending commands from SCP_COMMANDS after its cursor
// (scp_cursors), sends them with a small window of outstanding tags,
// publishes each result to scp.res.<serial>, writes the scp_commands
// record, moves the cursor with compare-and-set and deletes the command.
//
// Scale: the driver runs one ordered consumer on SCP_COMMANDS whose
// messages, each a stored command, are handed to the local session of
// their serial (if any) as hints (commands_hints.go); the work (reads,
// publishes, key-value writes) runs on a small pool of workers per driver,
// never on a session's read loop. Every driver hears every command and
// drops those of controllers it does not hold: one message per command and
// driver, against a consumer or a subscription per session that every idle
// session would otherwise hold. A session without commands holds one small
// cmdSession; the delivery state is allocated when a command is pending.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/scpbridge"
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

// CommandStats counts command delivery since New.
type CommandStats struct {
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
	// within Options.CommandAnswerTimeout; they end failed, reason
	// "unanswered" (and are counted in Failed too).
	Unanswered uint64 `json:"unanswered"`
	// BusyRetries counts commands sent again after the controller
	// answered NAK busy (also counted in Sent).
	BusyRetries uint64 `json:"busy_retries"`
	// StaleReads counts queue reads a replica answered "not found" while
	// the stream leader held a command (see commands_read.go).
	StaleReads uint64 `json:"stale_reads"`
	// DrainUnanswered counts draining sessions released with commands
	// still unanswered after Options.DrainAnswerWait (the next driver
	// sends those again).
	DrainUnanswered uint64 `json:"drain_unanswered"`
	// StreamRecreated counts the times the driver found SCP_COMMANDS
	// re-created (see commands_epoch.go).
	StreamRecreated uint64 `json:"stream_recreated"`
	// Errors counts failed NATS operations of delivery (each is retried).
	Errors uint64 `json:"errors"`
	// Delivering is the number of sessions holding delivery state now.
	Delivering int64 `json:"delivering"`
}

// CommandStats returns a snapshot of the command delivery counters.
func (d *Driver) CommandStats() CommandStats {
	h, ok := d.hooks.(*commandHooks)
	if !ok {
		return CommandStats{}
	}
	c := &h.stats
	return CommandStats{
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

// commandHooks delivers commands; it is the driver's hooks.
type commandHooks struct {
	d         *Driver
	window    int                 // outstanding (sent, unanswered) commands per session
	opTimeout time.Duration       // bound of one NATS operation
	answerBy  time.Duration       // Options.CommandAnswerTimeout
	sentJS    jetstream.JetStream // publishes "sent" records without waiting
	stats     cmdCounters
	rq        runQueue
	firstRead msgReader // directGet; tests replace it before Start

	hintCC    jetstream.ConsumeContext // the hint consumer; set by start
	hintName  string                   // its first consumer name
	hintGen   atomic.Uint64            // bumped when every session's hints may be incomplete
	lostHints atomic.Bool              // the hint consumer reported an error: rescan
	// incarnation is the creation time (unix ns) of SCP_COMMANDS as the
	// driver last saw it (commands_epoch.go).
	incarnation atomic.Int64

	mu       sync.RWMutex
	sessions map[string]*cmdSession   // current session by serial; guarded by mu
	shadowed map[*session]*cmdSession // sessions replaced by a newer one of their serial, until they end; guarded by mu
}

var _ hooks = (*commandHooks)(nil)

func newCommandHooks(d *Driver) *commandHooks {
	h := &commandHooks{
		d:         d,
		window:    d.opts.CommandWindow,
		opTimeout: d.opts.CommandFetchTimeout,
		answerBy:  d.opts.CommandAnswerTimeout,
		sessions:  make(map[string]*cmdSession),
		shadowed:  make(map[*session]*cmdSession),
	}
	h.rq.cond = sync.NewCond(&h.rq.mu)
	h.firstRead = h.directGet
	// A context of its own: its error handler is for "sent" records only,
	// the driver's handlers are for events. (New fails only on a nil
	// connection, which New of the driver refused already.)
	h.sentJS, _ = jetstream.New(d.nc,
		jetstream.WithPublishAsyncErrHandler(h.onSentErr),
		jetstream.WithPublishAsyncTimeout(h.opTimeout))
	return h
}

// cmdSession is the command side of one established session.
type cmdSession struct {
	s *session

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
	dl       *delivery                 // nil until a command was pending; then owned by the running worker
	// the cursor as read when the session first found its queue empty
	// (curOK): the first command then skips that read (see load)
	cur, curRev uint64
	curOK       bool
	// hints (commands_hints.go): commands of the serial from the hint
	// consumer, not yet taken, ascending; tail, when not 0 and tailGen is
	// the current hintGen, is the sequence from which they are complete.
	hints   []*jetstream.RawStreamMsg
	tail    uint64
	tailGen uint64
}

func (h *commandHooks) start(ctx context.Context) error {
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
		h.d.log.Warn().Err(err).Dur("retry_in", wait).Msg("start command hints failed")
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
	context.AfterFunc(h.d.hardCtx, func() {
		if !h.d.nc.IsConnected() {
			cancel()
		}
	})
	h.rq.cancel = cancel
	h.d.bgWG.Go(func() { h.dispatch(ctx) })
	for range commandWorkers {
		h.d.bgWG.Go(func() { h.worker(work) })
	}
	return nil
}

func (h *commandHooks) sessionStart(s *session) {
	cs := &cmdSession{s: s}
	h.mu.Lock()
	if old := h.sessions[s.serial]; old != nil {
		h.shadowed[old.s] = old
	}
	h.sessions[s.serial] = cs
	h.mu.Unlock()
	h.kick(cs)
}

func (h *commandHooks) status(s *session, st *scpbridge.CommandStatus) {
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

func (h *commandHooks) sessionEnd(s *session, _ scpgate.CloseReason) {
	h.mu.Lock()
	cs := h.sessions[s.serial]
	if cs != nil && cs.s == s {
		delete(h.sessions, s.serial)
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
func (h *commandHooks) lookup(s *session) *cmdSession {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if cs := h.sessions[s.serial]; cs != nil && cs.s == s {
		return cs
	}
	return h.shadowed[s]
}

// kick schedules cs on a worker; kicks coalesce and never block.
func (h *commandHooks) kick(cs *cmdSession) {
	cs.mu.Lock()
	cs.dirty = true
	if cs.queued || cs.running {
		cs.mu.Unlock()
		return
	}
	cs.queued = true
	cs.mu.Unlock()
	h.rq.push(cs)
}

// after kicks cs again in d, unless an earlier kick is already timed. The
// timer is dropped when the session ends.
func (h *commandHooks) after(cs *cmdSession, d time.Duration) {
	at := time.Now().Add(d)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.ended {
		return
	}
	if cs.timer != nil {
		if !at.Before(cs.timerAt) {
			return
		}
		cs.timer.Stop()
	}
	cs.timerAt = at
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		cs.mu.Lock()
		if cs.timer == t {
			cs.timer = nil
		}
		cs.mu.Unlock()
		h.kick(cs)
	})
	cs.timer = t
}

// failed counts a failed operation of cs and retries it with backoff.
func (h *commandHooks) failed(cs *cmdSession, what string, err error) {
	h.stats.errors.Add(1)
	cs.mu.Lock()
	n := cs.fails
	if n < 16 {
		cs.fails++
	}
	ended := cs.ended
	cs.mu.Unlock()
	ev := cs.s.log.Debug()
	if n == 0 || ended {
		ev = cs.s.log.Warn()
	}
	ev.Err(err).Msg(what + " failed")
	h.after(cs, min(retryMin<<n, retryMax))
}

// succeeded resets the backoff of cs.
func (cs *cmdSession) succeeded() {
	cs.mu.Lock()
	cs.fails = 0
	cs.mu.Unlock()
}

// dispatch makes every session read its queue again after a NATS
// reconnect or an error of the hint consumer, and stops the consumer when
// the driver closes.
func (h *commandHooks) dispatch(ctx context.Context) {
	tick := time.NewTicker(rescanEvery)
	defer tick.Stop()
	reconnects := h.d.nc.Stats().Reconnects
	for {
		select {
		case <-ctx.Done():
			h.stopHints()
			h.rq.close()
			return
		case <-tick.C:
			h.checkIncarnation(ctx)
			r := h.d.nc.Stats().Reconnects
			if r != reconnects || h.lostHints.Swap(false) {
				reconnects = r
				h.rescan()
			}
		}
	}
}

// rescan makes every session read its queue once more, its hints no
// longer trusted.
func (h *commandHooks) rescan() {
	h.hintGen.Add(1)
	h.mu.RLock()
	list := make([]*cmdSession, 0, len(h.sessions))
	for _, cs := range h.sessions {
		list = append(list, cs)
	}
	h.mu.RUnlock()
	h.d.log.Info().Int("sessions", len(list)).Msg("rescanning command queues")
	for _, cs := range list {
		h.kick(cs)
	}
}

// worker steps scheduled sessions until the driver closes; then it
// completes what is queued and returns. ctx ends flushTimeout after the
// driver closed.
func (h *commandHooks) worker(ctx context.Context) {
	for {
		cs, flushing, ok := h.rq.pop()
		if !ok {
			return
		}
		cs.mu.Lock()
		cs.queued, cs.running, cs.dirty = false, true, false
		cs.mu.Unlock()
		h.step(ctx, cs, flushing)
		cs.mu.Lock()
		cs.running = false
		again := cs.dirty && !flushing
		if again {
			cs.queued = true
		}
		cs.mu.Unlock()
		if again {
			h.rq.push(cs)
		}
	}
}

// runQueue is the FIFO of sessions waiting for a worker. A session is in
// it at most once (cmdSession.queued), so it holds at most one entry per
// session.
type runQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []*cmdSession
	closed bool
	cancel context.CancelFunc // ends the workers' context
}

func (q *runQueue) push(cs *cmdSession) {
	q.mu.Lock()
	q.items = append(q.items, cs)
	q.mu.Unlock()
	q.cond.Signal()
}

// pop waits for a session. After close it returns what is left, with
// flushing set, then ok false.
func (q *runQueue) pop() (cs *cmdSession, flushing, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return nil, false, false
	}
	cs = q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	if len(q.items) == 0 {
		q.items = nil // let the backing array go
	}
	return cs, q.closed, true
}

// close makes pop hand out the remaining sessions for flushing, then stop;
// the workers' context ends flushTimeout later.
func (q *runQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
	time.AfterFunc(flushTimeout, q.cancel)
}
