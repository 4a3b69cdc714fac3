package delivery

// The final record of a command is written with compare-and-set on its
// key in scp_commands, so that exactly one final status is ever stored
// for it: a commander's sweeper ends the commands of controllers that do
// not come back (expired) the same way, and whichever writes first wins.
// The loser takes the winner's result as the command's result.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commands"
	"github.com/scpgate/scpgate/scpbridge"
)

// errRecordContended is returned when the record of a command kept
// changing under the driver's compare-and-set.
var errRecordContended = errors.New("command record contended")

// finalRecord writes the final record of e.res unless the command already
// has one; then e.res becomes that one.
func (h *Delivery) finalRecord(ctx context.Context, cs *cmdSession, e *entry) error {
	rec := commands.RecordOf(e.res)
	data, err := rec.MarshalJSON() // not json.Marshal, which would check and compact it again
	if err != nil {
		return fmt.Errorf("encode record %s: %w", rec.ID, err)
	}
	// The revision to expect: that of the "sent" record this session
	// wrote (usually acknowledged by now), else none; a wrong guess costs
	// a read.
	rev, known := uint64(0), true
	if e.sentAck != nil {
		rev, known = h.sentRevision(ctx, e.sentAck)
	}
	for range 5 {
		if !known {
			prior, r, err := h.recordRev(ctx, rec.ID)
			if err != nil {
				return err
			}
			if prior != nil && prior.Status.Final() && sameCommand(prior, &e.cmd) {
				res, _ := prior.Result()
				cs.log().Info().Str("id", rec.ID).Str("status", string(res.Status)).Str("ours", string(e.res.Status)).
					Msg("command ended elsewhere first; keeping that result")
				e.res, e.recovered = &res, true
				return nil
			}
			rev, known = r, true
		}
		octx, cancel := context.WithTimeout(ctx, h.opTimeout)
		if rev == 0 {
			_, err = h.handles.CommandStatus.Create(octx, rec.ID, data)
		} else {
			_, err = h.handles.CommandStatus.Update(octx, rec.ID, data, rev)
		}
		cancel()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists):
			known = false
		default:
			return fmt.Errorf("write %s record of %s: %w", rec.Status, rec.ID, err)
		}
	}
	return fmt.Errorf("write %s record of %s: %w", rec.Status, rec.ID, errRecordContended)
}

// sentRevision waits (briefly) for the acknowledgement of a "sent" record
// and returns its revision; known is false when it did not come.
func (h *Delivery) sentRevision(ctx context.Context, f jetstream.PubAckFuture) (rev uint64, known bool) {
	t := time.NewTimer(h.opTimeout)
	defer t.Stop()
	select {
	case ack := <-f.Ok():
		return ack.Sequence, true
	case <-f.Err():
	case <-t.C:
	case <-ctx.Done():
	}
	return 0, false
}

// recordRev reads the record of id and its revision
// (commands.ReadRecord).
func (h *Delivery) recordRev(ctx context.Context, id string) (*commands.Record, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opTimeout)
	defer cancel()
	return commands.ReadRecord(ctx, h.handles.CommandStatus, id)
}

// applyStatus records the controller's answer to one outstanding command.
func (h *Delivery) applyStatus(cs *cmdSession, dl *cmdState, st *scpbridge.CommandStatus) {
	for _, e := range dl.win {
		if e.tag != st.Tag || e.sent.IsZero() || e.res != nil || !e.retryAt.IsZero() {
			continue
		}
		switch {
		case st.Status == scpbridge.StatusNAK && st.NakReason == scpbridge.NakBusy:
			h.busyAnswer(cs, e, st.Detail)
		case st.Status == scpbridge.StatusOK:
			e.res = h.result(cs.serial, e, scpgate.StatusOK, "", st.Detail)
		case st.Status == scpbridge.StatusNAK:
			e.res = h.result(cs.serial, e, scpgate.StatusNAK, st.NakReason.String(), st.Detail)
		default:
			e.res = h.result(cs.serial, e, scpgate.StatusFailed, "controller", st.Detail)
		}
		return
	}
	h.stats.unknown.Add(1)
	cs.log().Debug().Uint32("tag", st.Tag).Msg("status for no outstanding command")
}

// result returns the final result of e.
func (h *Delivery) result(serial string, e *entry, st scpgate.CommandStatus, reason, detail string) *scpgate.Result {
	r := &scpgate.Result{
		V: scpgate.SchemaVersion, ID: commands.ID(serial, e.seq), Controller: serial,
		Type: e.cmd.Type, Status: st, Reason: reason, Detail: detail, Seq: e.seq,
		Created: e.cmd.Created, Expires: e.cmd.Expires, Finished: time.Now().UTC(), Driver: h.driverID,
	}
	if !e.sent.IsZero() {
		t := e.sent.UTC()
		r.Sent = &t
	}
	return r
}

// storeResults writes the final record of every known result not yet
// stored, then publishes the result. The record goes first, acknowledged,
// so that a caller told the result (the commander hears the publish as a
// core message, before SCP_RESULTS stored it) finds the same in
// scp_commands: issued together, the record could still be queued in the
// server behind the result when the caller reads it, and a result cannot
// be looked up by id in SCP_RESULTS to make up for that. A result whose
// record is final but whose publish may be missing is published again on
// recovery (the message id makes that harmless).
func (h *Delivery) storeResults(ctx context.Context, cs *cmdSession, dl *cmdState) error {
	for _, e := range dl.win {
		if e.res == nil || e.stored {
			continue
		}
		if !e.recorded {
			if err := h.finalRecord(ctx, cs, e); err != nil {
				return err
			}
			e.recorded = true
		}
		if err := h.publishResult(ctx, e.res); err != nil {
			return err
		}
		e.stored = true
		if !e.recovered {
			h.stats.countResult(e.res.Status)
		}
		cs.log().Debug().Str("id", e.res.ID).Str("status", string(e.res.Status)).Str("reason", e.res.Reason).Msg("command result")
	}
	return nil
}

// publishResult publishes r to scp.res.<serial> (commands.PublishResult).
func (h *Delivery) publishResult(ctx context.Context, r *scpgate.Result) error {
	ctx, cancel := context.WithTimeout(ctx, h.opTimeout)
	defer cancel()
	return commands.PublishResult(ctx, h.js, r)
}

// record reads the scp_commands record of id; nil when there is none or
// it is unreadable (then it is rewritten).
func (h *Delivery) record(ctx context.Context, id string) (*commands.Record, error) {
	rec, _, err := h.recordRev(ctx, id)
	return rec, err
}
