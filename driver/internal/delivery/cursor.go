package delivery

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// errClaimContended is returned when the cursor kept moving under a
// session that tried to claim it.
var errClaimContended = errors.New("cursor claim contended")

// readCursor reads the cursor of a session whose queue was found empty,
// once, so that its first command does not wait for that read (see load).
// A failure only leaves it to load.
func (h *Delivery) readCursor(ctx context.Context, cs *cmdSession) {
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
func (h *Delivery) getCursor(ctx context.Context, cs *cmdSession) (cur, rev uint64, err error) {
	octx, cancel := context.WithTimeout(ctx, h.opTimeout)
	e, err := h.handles.Cursors.Get(octx, cs.serial)
	cancel()
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return 0, 0, nil
	case err != nil:
		return 0, 0, fmt.Errorf("read cursor of %s: %w", cs.serial, err)
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
func (h *Delivery) load(ctx context.Context, cs *cmdSession, dl *cmdState) error {
	serial := cs.serial
	cs.mu.Lock()
	cur, rev, cached := cs.cur, cs.curRev, cs.curOK && !dl.recovering
	cs.curOK = false // used once; dl keeps the cursor from now on
	cs.mu.Unlock()
	if cached {
		claim := make(chan claimResult, 1)
		h.wg.Go(func() {
			r, err := h.casCursor(ctx, serial, cur, rev)
			claim <- claimResult{r, err}
		})
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
func (h *Delivery) skipDone(ctx context.Context, cs *cmdSession, dl *cmdState) error {
	var err error
	for dl.peek != nil && dl.peek.Sequence <= dl.cursor {
		seq := dl.peek.Sequence
		if done, err := h.completed(ctx, cs, dl.peek); err != nil || !done {
			return cmp.Or(err, errStaleCursor)
		}
		h.deleteCommand(ctx, cs, dl, seq)
		if dl.peek, err = h.fetch(ctx, cs.serial, seq+1); err != nil {
			return err
		}
	}
	return nil
}

// awaitClaim takes the outcome of a claim made while the first command
// went out. It reports false when the session must not commit: fenced
// (the cursor moved under it) or the claim failed (err).
func (h *Delivery) awaitClaim(cs *cmdSession, dl *cmdState) (bool, error) {
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
		return false, fmt.Errorf("claim cursor of %s: %w", cs.serial, r.err)
	}
	dl.rev = r.rev
	return true, nil
}

// casCursor writes seq as the cursor of serial if its revision is still
// rev (0: the key must not exist) and returns the new revision.
func (h *Delivery) casCursor(ctx context.Context, serial string, seq, rev uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opTimeout)
	defer cancel()
	val := formatCursor(seq, h.incarnation.Load())
	if rev == 0 {
		return h.handles.Cursors.Create(ctx, serial, val)
	}
	return h.handles.Cursors.Update(ctx, serial, val, rev)
}

// commit moves the cursor over the completed commands at the head of the
// window, one compare-and-set each, and deletes them from the stream. A
// command answered out of order waits for those before it.
func (h *Delivery) commit(ctx context.Context, cs *cmdSession, dl *cmdState) error {
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
		rev, err := h.casCursor(ctx, cs.serial, e.seq, dl.rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			h.fence(cs, dl, e.seq, err)
			return nil
		}
		if err != nil {
			return fmt.Errorf("move cursor of %s to %d: %w", cs.serial, e.seq, err)
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
func (h *Delivery) deleteCommand(ctx context.Context, cs *cmdSession, dl *cmdState, seq uint64) {
	octx, cancel := context.WithTimeout(ctx, h.opTimeout)
	err := h.handles.Commands.DeleteMsg(octx, seq)
	cancel()
	if err == nil || errors.Is(err, jetstream.ErrMsgNotFound) {
		return
	}
	h.stats.errors.Add(1)
	cs.log().Warn().Err(err).Uint64("seq", seq).Msg("delete completed command")
	if dl != nil {
		dl.undeleted = append(dl.undeleted, seq)
	}
}

// fence stops delivery on cs: another session moved the cursor.
func (h *Delivery) fence(cs *cmdSession, dl *cmdState, seq uint64, err error) {
	h.stats.conflicts.Add(1)
	dl.fenced, dl.fencedAt = true, time.Now()
	cs.log().Warn().Err(err).Uint64("seq", seq).Uint64("cursor", dl.cursor).
		Msg("command cursor moved by another session; delivery stopped on this one")
	h.after(cs, fenceRecheck)
}

// unfence decides whether a fenced session may deliver again: only once
// fenceRecheck has passed, the session is still open (a session taken over
// is closed by then) and scp_sessions names it as the owner. It then
// reloads the cursor. It reports whether delivery may go on.
func (h *Delivery) unfence(ctx context.Context, cs *cmdSession, dl *cmdState) bool {
	if wait := fenceRecheck - time.Since(dl.fencedAt); wait > 0 {
		h.after(cs, wait)
		return false
	}
	octx, cancel := context.WithTimeout(ctx, h.opTimeout)
	e, err := h.handles.Sessions.Get(octx, cs.serial)
	cancel()
	var rec struct {
		Session string `json:"session"` // of the driver's SessionRecord
	}
	if err == nil {
		err = json.Unmarshal(e.Value(), &rec)
	}
	if err != nil || rec.Session != cs.s.ID() {
		dl.fencedAt = time.Now()
		h.after(cs, fenceRecheck)
		return false
	}
	cs.forget() // the hints were not taken while fenced
	fresh := &cmdState{recovering: true}
	if err := h.load(ctx, cs, fresh); err != nil {
		h.failed(cs, "reload command cursor", err)
		return false
	}
	cs.log().Info().Uint64("cursor", fresh.cursor).Msg("still the owner after a cursor conflict; delivering again")
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
