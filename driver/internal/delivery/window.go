package delivery

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
)

// cmdState is the command state of a session with pending commands. It is
// owned by the worker stepping its cmdSession.
type cmdState struct {
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
	busy      int                    // NAK busy answers so far (busy.go)
	retryAt   time.Time              // after a NAK busy: when to send it again
}

// outstanding counts the entries sent and not yet answered.
func (dl *cmdState) outstanding() int {
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
func (h *Delivery) step(ctx context.Context, cs *cmdSession, flushing bool) {
	h.applyReset(cs)
	cs.mu.Lock()
	dl, ended := cs.dl, cs.ended
	sts := cs.statuses
	cs.statuses = nil
	cs.mu.Unlock()
	live := !flushing && !ended && !cs.sessionDone()
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
			cs.log().Warn().Err(err).Msg("complete commands at shutdown")
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
func (h *Delivery) probe(ctx context.Context, cs *cmdSession) *cmdState {
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
	dl := &cmdState{recovering: recovering, peek: msg}
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

// progress stores results, commits and sends until nothing more can be
// done now.
func (h *Delivery) progress(ctx context.Context, cs *cmdSession, dl *cmdState, live bool) error {
	if dl.fenced && live && !h.unfence(ctx, cs, dl) {
		live = false
	}
	for {
		if live {
			h.expireUnanswered(cs, dl)
			if !h.draining() {
				h.retryBusy(cs, dl)
			}
		}
		if err := h.storeResults(ctx, cs, dl); err != nil {
			return err
		}
		if err := h.commit(ctx, cs, dl); err != nil {
			return err
		}
		if !live || dl.fenced || h.draining() || cs.sessionDone() {
			return nil
		}
		more, err := h.fill(ctx, cs, dl)
		if err != nil || !more {
			return err
		}
	}
}
