package driver

// The final record of a command is written with compare-and-set on its
// key in scp_commands, so that exactly one final status is ever stored
// for it: a commander's sweeper ends the commands of controllers that do
// not come back (expired) the same way, and whichever writes first wins.
// The loser takes the winner's result as the command's result.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate/commands"
)

// errRecordContended is returned when the record of a command kept
// changing under the driver's compare-and-set.
var errRecordContended = errors.New("command record contended")

// finalRecord writes the final record of e.res unless the command already
// has one; then e.res becomes that one.
func (h *commandHooks) finalRecord(ctx context.Context, cs *cmdSession, e *entry) error {
	rec := commands.RecordOf(e.res)
	data, err := json.Marshal(&rec)
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
				cs.s.log.Info().Str("id", rec.ID).Str("status", string(res.Status)).Str("ours", string(e.res.Status)).
					Msg("command ended elsewhere first; keeping that result")
				e.res, e.recovered = &res, true
				return nil
			}
			rev, known = r, true
		}
		octx, cancel := context.WithTimeout(ctx, h.opTimeout)
		if rev == 0 {
			_, err = h.d.handles.CommandStatus.Create(octx, rec.ID, data)
		} else {
			_, err = h.d.handles.CommandStatus.Update(octx, rec.ID, data, rev)
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
func (h *commandHooks) sentRevision(ctx context.Context, f jetstream.PubAckFuture) (rev uint64, known bool) {
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

// recordRev reads the record of id and its revision; nil and 0 when there
// is none. An unreadable record is returned as nil with its revision, to
// be overwritten.
func (h *commandHooks) recordRev(ctx context.Context, id string) (*commands.Record, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opTimeout)
	defer cancel()
	e, err := h.d.handles.CommandStatus.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read record of %s: %w", id, err)
	}
	var rec commands.Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, e.Revision(), nil
	}
	return &rec, e.Revision(), nil
}
