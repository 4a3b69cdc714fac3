package driver

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
)

// errClaimContended is returned when the cursor kept moving under a
// session that tried to claim it.
var errClaimContended = errors.New("cursor claim contended")

// delivery is the command state of a session with pending commands. It is
// owned by the worker stepping its cmdSession.
type delivery struct {
	cursor     uint64   // last completed stream sequence (scp_cursors)
	rev        uint64   // revision of the cursor key as this session wrote it
	next       uint64   // lowest sequence not yet read
	win        []*entry // read, not yet committed, in sequence order
	peek       *jetstream.RawStreamMsg
	recovering bool // until the queue is seen empty: commands may have been handled by an earlier session
	fenced     bool // a cursor compare-and-set failed: send nothing
	fencedAt   time.Time
	undeleted  []uint64 // completed commands whose delete failed
	// claim, when set, delivers the outcome of the cursor claim made
	// while the first command went out (see load); commit waits for it.
	claim chan claimResult
}

// claimResult is the outcome of a cursor claim: the new revision, or why
// it failed.
type claimResult struct {
	rev uint64
	err error
}

// entry is one command between read and commit.
type entry struct {
	seq       uint64
	tag       uint32
	cmd       scpgate.Command
	sent      time.Time              // zero until sent
	res       *scpgate.Result        // the final result once known
	recorded  bool                   // the final record of res is written
	stored    bool                   // and res is published
	recovered bool                   // res was read back from a record an earlier session wrote
	sentAck   jetstream.PubAckFuture // the "sent" record's write in this session, if any
	busy      int                    // NAK busy answers so far (commands_busy.go)
	retryAt   time.Time              // after a NAK busy: when to send it again
}

// outstanding counts the entries sent and not yet answered.
func (dl *delivery) outstanding() int {
	n := 0
	for _, e := range dl.win {
		if e.res == nil {
			n++
		}
	}
	return n
}

// tagOf is the wire tag of the command at seq: the same in every session,
// so a controller recognises a command sent again.
func tagOf(seq uint64) uint32 { return uint32(seq) }

// step does all the work of cs that can be done now. flushing means the
// driver closed: complete what was answered, read and send nothing.
func (h *commandHooks) step(ctx context.Context, cs *cmdSession, flushing bool) {
	h.applyReset(cs)
	cs.mu.Lock()
	dl, ended := cs.dl, cs.ended
	sts := cs.statuses
	cs.statuses = nil
	cs.mu.Unlock()
	live := !flushing && !ended && cs.s.ctx.Err() == nil
	if dl == nil {
		if !live {
			return
		}
		if dl = h.probe(ctx, cs); dl == nil {
			return
		}
		cs.succeeded()
	}
	for i := range sts {
		h.applyStatus(cs, dl, &sts[i])
	}
	err := h.progress(ctx, cs, dl, live)
	h.noteAwaiting(cs, dl)
	if err != nil {
		if !flushing {
			h.failed(cs, "command delivery", err)
		} else {
			cs.s.log.Warn().Err(err).Msg("complete commands at shutdown")
		}
		return
	}
	cs.succeeded()
}

// probe looks for a first pending command of cs; when there is one it
// loads the cursor and returns the new delivery state. The first probe of a
// session reads the stream; once that found the queue empty, later probes
// only look at the hints. Until a read found the queue empty, a command
// may have been sent by an earlier session: the new delivery state is
// recovering.
func (h *commandHooks) probe(ctx context.Context, cs *cmdSession) *delivery {
	msg, err := h.nextCommand(ctx, cs, 1)
	if err != nil {
		h.failed(cs, "read commands", err)
		return nil
	}
	if msg == nil {
		cs.succeeded()
		h.readCursor(ctx, cs)
		return nil
	}
	cs.mu.Lock()
	recovering := !cs.sawEmpty
	cs.mu.Unlock()
	dl := &delivery{recovering: recovering, peek: msg}
	if err := h.load(ctx, cs, dl); err != nil {
		h.failed(cs, "load command cursor", err)
		return nil
	}
	cs.mu.Lock()
	cs.dl = dl
	if !cs.ended { // else sessionEnd did not see dl and does not count it out
		h.stats.delivering.Add(1)
	}
	cs.mu.Unlock()
	return dl
}

// readCursor reads the cursor of a session whose queue was found empty,
// once, so that its first command does not wait for that read (see load).
// A failure only leaves it to load.
func (h *commandHooks) readCursor(ctx context.Context, cs *cmdSession) {
	cs.mu.Lock()
	skip := cs.curOK || !cs.sawEmpty
	cs.mu.Unlock()
	if skip {
		return
	}
	cur, rev, err := h.getCursor(ctx, cs)
	if err != nil {
		return
	}
	cs.mu.Lock()
	cs.cur, cs.curRev, cs.curOK = cur, rev, true
	cs.mu.Unlock()
}

// getCursor reads the cursor of cs and its revision (0: no key).
func (h *commandHooks) getCursor(ctx context.Context, cs *cmdSession) (cur, rev uint64, err error) {
	octx, cancel := context.WithTimeout(ctx, h.opTimeout)
	e, err := h.d.handles.Cursors.Get(octx, cs.s.serial)
	cancel()
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return 0, 0, nil
	case err != nil:
		return 0, 0, fmt.Errorf("read cursor of %s: %w", cs.s.serial, err)
	}
	return h.cursorOf(cs, string(e.Value())), e.Revision(), nil
}

// load reads the cursor of cs and claims it: a write at the revision read
// makes the compare-and-set of an older owner fail from now on. Commands
// at or below the cursor are completed ones whose delete failed: they are
// deleted now.
//
// A session that found its queue empty and read the cursor then (not
// recovering: every command it finds now is new to every session) takes
// that cursor and claims it while its first command goes out, instead of
// reading and claiming first: commit waits for the claim. If another
// session moved the cursor meanwhile the claim fails and this one is
// fenced before it commits anything, as it would be at its first commit.
func (h *commandHooks) load(ctx context.Context, cs *cmdSession, dl *delivery) error {
	serial := cs.s.serial
	cs.mu.Lock()
	cur, rev, cached := cs.cur, cs.curRev, cs.curOK && !dl.recovering
	cs.curOK = false // used once; dl keeps the cursor from now on
	cs.mu.Unlock()
	if cached {
		claim := make(chan claimResult, 1)
		go func() {
			r, err := h.casCursor(ctx, serial, cur, rev)
			claim <- claimResult{r, err}
		}()
		dl.cursor, dl.rev, dl.next, dl.claim = cur, rev, cur+1, claim
		return h.skipDone(ctx, cs, dl)
	}
	for range 3 {
		cur, rev, err := h.getCursor(ctx, cs)
		if err != nil {
			return err
		}
		newRev, err := h.casCursor(ctx, serial, cur, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			continue // moved meanwhile: read again
		}
		if err != nil {
			return fmt.Errorf("claim cursor of %s: %w", serial, err)
		}
		dl.cursor, dl.rev, dl.next = cur, newRev, cur+1
		return h.skipDone(ctx, cs, dl)
	}
	return fmt.Errorf("claim cursor of %s: %w", serial, errClaimContended)
}

// skipDone deletes the commands at or below the cursor that dl.peek
// names: completed ones whose delete failed.
func (h *commandHooks) skipDone(ctx context.Context, cs *cmdSession, dl *delivery) error {
	var err error
	for dl.peek != nil && dl.peek.Sequence <= dl.cursor {
		seq := dl.peek.Sequence
		if done, err := h.completed(ctx, cs, dl.peek); err != nil || !done {
			return cmp.Or(err, errStaleCursor)
		}
		h.deleteCommand(ctx, cs, dl, seq)
		if dl.peek, err = h.fetch(ctx, cs.s.serial, seq+1); err != nil {
			return err
		}
	}
	return nil
}

// awaitClaim takes the outcome of a claim made while the first command
// went out. It reports false when the session must not commit: fenced
// (the cursor moved under it) or the claim failed (err).
func (h *commandHooks) awaitClaim(cs *cmdSession, dl *delivery) (bool, error) {
	if dl.claim == nil {
		return true, nil
	}
	r := <-dl.claim
	dl.claim = nil
	switch {
	case errors.Is(r.err, jetstream.ErrKeyRevisionMismatch) || errors.Is(r.err, jetstream.ErrKeyExists):
		h.fence(cs, dl, dl.cursor, r.err)
		return false, nil
	case r.err != nil:
		// It may have been applied: the next compare-and-set at the old
		// revision then fails and fences; if not, it succeeds.
		return false, fmt.Errorf("claim cursor of %s: %w", cs.s.serial, r.err)
	}
	dl.rev = r.rev
	return true, nil
}

// casCursor writes seq as the cursor of serial if its revision is still
// rev (0: the key must not exist) and returns the new revision.
func (h *commandHooks) casCursor(ctx context.Context, serial string, seq, rev uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opTimeout)
	defer cancel()
	val := formatCursor(seq, h.incarnation.Load())
	if rev == 0 {
		return h.d.handles.Cursors.Create(ctx, serial, val)
	}
	return h.d.handles.Cursors.Update(ctx, serial, val, rev)
}

// progress stores results, commits and sends until nothing more can be
// done now.
func (h *commandHooks) progress(ctx context.Context, cs *cmdSession, dl *delivery, live bool) error {
	if dl.fenced && live && !h.unfence(ctx, cs, dl) {
		live = false
	}
	for {
		if live {
			h.expireUnanswered(cs, dl)
			if !h.d.draining.Load() {
				h.retryBusy(cs, dl)
			}
		}
		if err := h.storeResults(ctx, cs, dl); err != nil {
			return err
		}
		if err := h.commit(ctx, cs, dl); err != nil {
			return err
		}
		if !live || dl.fenced || h.d.draining.Load() || cs.s.ctx.Err() != nil {
			return nil
		}
		more, err := h.fill(ctx, cs, dl)
		if err != nil || !more {
			return err
		}
	}
}

// commit moves the cursor over the completed commands at the head of the
// window, one compare-and-set each, and deletes them from the stream. A
// command answered out of order waits for those before it.
func (h *commandHooks) commit(ctx context.Context, cs *cmdSession, dl *delivery) error {
	retry := dl.undeleted
	dl.undeleted = nil
	for _, seq := range retry {
		h.deleteCommand(ctx, cs, dl, seq)
	}
	if len(dl.win) > 0 && dl.win[0].stored && !dl.fenced {
		if ok, err := h.awaitClaim(cs, dl); !ok {
			return err
		}
	}
	for len(dl.win) > 0 && dl.win[0].stored && !dl.fenced {
		e := dl.win[0]
		rev, err := h.casCursor(ctx, cs.s.serial, e.seq, dl.rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			h.fence(cs, dl, e.seq, err)
			return nil
		}
		if err != nil {
			return fmt.Errorf("move cursor of %s to %d: %w", cs.s.serial, e.seq, err)
		}
		dl.cursor, dl.rev = e.seq, rev
		dl.win[0] = nil
		dl.win = dl.win[1:]
		h.deleteCommand(ctx, cs, dl, e.seq)
	}
	if len(dl.win) == 0 {
		dl.win = nil
	}
	return nil
}

// deleteCommand removes a completed command from SCP_COMMANDS, so that the
// subject's message count is the pending queue. A failed delete is retried
// on the next step (dl non-nil) or when a later session loads the cursor.
func (h *commandHooks) deleteCommand(ctx context.Context, cs *cmdSession, dl *delivery, seq uint64) {
	octx, cancel := context.WithTimeout(ctx, h.opTimeout)
	err := h.d.handles.Commands.DeleteMsg(octx, seq)
	cancel()
	if err == nil || errors.Is(err, jetstream.ErrMsgNotFound) {
		return
	}
	h.stats.errors.Add(1)
	cs.s.log.Warn().Err(err).Uint64("seq", seq).Msg("delete completed command")
	if dl != nil {
		dl.undeleted = append(dl.undeleted, seq)
	}
}

// fence stops delivery on cs: another session moved the cursor.
func (h *commandHooks) fence(cs *cmdSession, dl *delivery, seq uint64, err error) {
	h.stats.conflicts.Add(1)
	dl.fenced, dl.fencedAt = true, time.Now()
	cs.s.log.Warn().Err(err).Uint64("seq", seq).Uint64("cursor", dl.cursor).
		Msg("command cursor moved by another session; delivery stopped on this one")
	h.after(cs, fenceRecheck)
}

// unfence decides whether a fenced session may deliver again: only once
// fenceRecheck has passed, the session is still open (a session taken over
// is closed by then) and scp_sessions names it as the owner. It then
// reloads the cursor. It reports whether delivery may go on.
func (h *commandHooks) unfence(ctx context.Context, cs *cmdSession, dl *delivery) bool {
	if wait := fenceRecheck - time.Since(dl.fencedAt); wait > 0 {
		h.after(cs, wait)
		return false
	}
	octx, cancel := context.WithTimeout(ctx, h.opTimeout)
	e, err := h.d.handles.Sessions.Get(octx, cs.s.serial)
	cancel()
	var rec SessionRecord
	if err == nil {
		err = json.Unmarshal(e.Value(), &rec)
	}
	if err != nil || rec.Session != cs.s.id {
		dl.fencedAt = time.Now()
		h.after(cs, fenceRecheck)
		return false
	}
	cs.forget() // the hints were not taken while fenced
	fresh := &delivery{recovering: true}
	if err := h.load(ctx, cs, fresh); err != nil {
		h.failed(cs, "reload command cursor", err)
		return false
	}
	cs.s.log.Info().Uint64("cursor", fresh.cursor).Msg("still the owner after a cursor conflict; delivering again")
	keep := dl.win[:0]
	for _, e := range dl.win {
		if e.seq > fresh.cursor {
			keep = append(keep, e)
		}
	}
	dl.win = keep
	dl.cursor, dl.rev, dl.fenced, dl.recovering = fresh.cursor, fresh.rev, false, true
	dl.next = max(dl.next, fresh.next)
	return true
}
