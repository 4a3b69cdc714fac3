package delivery

// SCP_COMMANDS re-created (deleted and created again, by an operator or a
// restore): its sequences start again from 1, so command ids, tags and
// cursors of the old stream name other commands in the new one. A cursor
// left at 500 would make a session delete the new commands 1..500 as
// completed, and the record of an old command would answer a new one with
// the old result.
//
// So the driver tells the stream's incarnations apart by its creation
// time: the cursor is stored as "<seq>:<created, unix ns>", and a cursor
// of another incarnation counts as 0 (the compare-and-set still goes over
// its revision). The driver checks the stream's creation time every
// rescanEvery; when it changed, it starts its hint consumer on the new
// stream and every session drops its delivery state and reads its queue
// from the start. A record is trusted only for the command it was written
// for (same creation time and type, see sameCommand).

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commands"
	"github.com/scpgate/scpgate/streams"
)

// formatCursor encodes a cursor of the stream incarnation inc.
func formatCursor(seq uint64, inc int64) []byte {
	b := strconv.AppendUint(nil, seq, 10)
	b = append(b, ':')
	return strconv.AppendInt(b, inc, 10)
}

// parseCursor decodes a cursor; inc is 0 for a cursor written before
// incarnations were stored.
func parseCursor(v string) (seq uint64, inc int64, err error) {
	num, incs, found := strings.Cut(v, ":")
	if seq, err = strconv.ParseUint(num, 10, 64); err != nil {
		return 0, 0, err
	}
	if found {
		if inc, err = strconv.ParseInt(incs, 10, 64); err != nil {
			return 0, 0, err
		}
	}
	return seq, inc, nil
}

// sameCommand reports whether rec was written for the command cmd, and
// not for a command of an earlier incarnation of SCP_COMMANDS that had the
// same id.
func sameCommand(rec *commands.Record, cmd *scpgate.Command) bool {
	return rec.Created.Equal(cmd.Created) && rec.Type == cmd.Type
}

// checkIncarnation reads the creation time of SCP_COMMANDS; when it
// changed since the driver last looked, it moves command delivery to the
// new stream. It also notes the stream's replica count (read.go).
func (h *Delivery) checkIncarnation(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, h.opTimeout)
	defer cancel()
	info, err := h.handles.Commands.Info(ctx)
	if err != nil {
		return // the stream may be gone for a moment; look again later
	}
	h.noteReplicas(info)
	inc := info.Created.UnixNano()
	old := h.incarnation.Load()
	if inc == old {
		return
	}
	h.log.Warn().Time("created", info.Created).Time("was", time.Unix(0, old)).
		Msg(streams.CommandsStream + " was re-created; command cursors and records of the old stream no longer count")
	h.stopHints()
	if err := h.startHints(ctx); err != nil {
		h.log.Warn().Err(err).Msg("restart command hints on the re-created stream; retried")
		return // the incarnation is unchanged: tried again on the next check
	}
	h.incarnation.Store(inc)
	h.stats.recreated.Add(1)
	h.resetAll()
}

// resetAll makes every session drop its delivery state and read its queue
// from the start.
func (h *Delivery) resetAll() {
	h.hintGen.Add(1)
	list := h.sessionList()
	for _, cs := range list {
		cs.mu.Lock()
		cs.reset = true
		cs.forgetLocked()
		cs.mu.Unlock()
		h.kick(cs)
	}
}

// applyReset drops the delivery state of cs after a re-creation of the
// stream; the worker stepping cs calls it.
func (h *Delivery) applyReset(cs *cmdSession) {
	cs.mu.Lock()
	if !cs.reset {
		cs.mu.Unlock()
		return
	}
	cs.reset = false
	had := cs.dl != nil && !cs.ended
	cs.dl, cs.statuses = nil, nil
	cs.sawEmpty, cs.curOK = false, false
	cs.mu.Unlock()
	if had {
		h.stats.delivering.Add(-1)
	}
}

// errStaleCursor is returned by a load whose cursor covers a stored
// command that has no final record of its own: the cursor belongs to an
// earlier SCP_COMMANDS the driver has not yet noticed was re-created.
var errStaleCursor = errors.New("command cursor of an earlier " + streams.CommandsStream)

// completed reports whether the command m, at or below the cursor, was
// completed: it has a final record written for it. A cursor moves only
// after that record, so a command without one means the cursor is of an
// earlier stream; it is then kept, not deleted.
func (h *Delivery) completed(ctx context.Context, cs *cmdSession, m *jetstream.RawStreamMsg) (bool, error) {
	rec, err := h.record(ctx, commands.ID(cs.serial, m.Sequence))
	if err != nil || rec == nil || !rec.Status.Final() {
		return false, err
	}
	var cmd scpgate.Command
	if json.Unmarshal(m.Data, &cmd) != nil {
		return true, nil // ended failed (invalid_command): its record is all there is
	}
	return sameCommand(rec, &cmd), nil
}

// cursorOf decodes the stored cursor value v: a cursor of another
// incarnation of the stream counts as 0.
func (h *Delivery) cursorOf(cs *cmdSession, v string) uint64 {
	seq, inc, err := parseCursor(v)
	if err != nil {
		cs.log().Error().Str("value", v).Msg("unreadable command cursor; delivering from the start")
		return 0
	}
	if cur := h.incarnation.Load(); inc != 0 && inc != cur {
		cs.log().Debug().Uint64("cursor", seq).Msg("command cursor of an earlier " + streams.CommandsStream + "; delivering from the start")
		return 0
	}
	return seq
}
