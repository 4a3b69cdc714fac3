package commander

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commands"
)

// end writes the final record of an expired command with compare-and-set
// and returns its result: the sweeper's, or the one a driver or another
// sweeper wrote first.
func (w *Sweeper) end(ctx context.Context, serial string, seq uint64, cmd *scpgate.Command, now time.Time) (*scpgate.Result, error) {
	id := commands.ID(serial, seq)
	ictx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	kv, err := w.js.KeyValue(ictx, w.opts.StatusBucket)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("look up bucket %s: %w", w.opts.StatusBucket, err)
	}
	for range 5 {
		prior, rev, err := w.record(ctx, kv, id)
		if err != nil {
			return nil, err
		}
		if prior != nil && (!prior.Created.Equal(cmd.Created) || prior.Type != cmd.Type) {
			prior = nil // written for a command of an earlier SCP_COMMANDS with the same id
		}
		if prior != nil && prior.Status.Final() {
			res, _ := prior.Result()
			w.republished.Add(1)
			return &res, nil
		}
		res := &scpgate.Result{
			V: scpgate.SchemaVersion, ID: id, Controller: serial, Type: cmd.Type,
			Status: scpgate.StatusExpired, Detail: "expired before its controller took it",
			Seq: seq, Created: cmd.Created, Finished: now.UTC(),
		}
		if prior != nil && prior.Status == scpgate.StatusSent {
			res.Status, res.Reason, res.Sent = scpgate.StatusFailed, "unanswered", prior.Sent
			res.Detail = "sent, never answered, and its controller did not come back before it expired"
			res.Driver = prior.Driver
		}
		rec := commands.RecordOf(res)
		data, err := rec.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("encode record %s: %w", id, err)
		}
		wctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
		if rev == 0 {
			_, err = kv.Create(wctx, id, data)
		} else {
			_, err = kv.Update(wctx, id, data, rev)
		}
		cancel()
		switch {
		case err == nil:
			if res.Status == scpgate.StatusExpired {
				w.expired.Add(1)
			} else {
				w.unanswered.Add(1)
			}
			return res, nil
		case errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			w.lost.Add(1) // read again: whoever wrote decides
		default:
			return nil, fmt.Errorf("write %s record of %s: %w", res.Status, id, err)
		}
	}
	return nil, fmt.Errorf("write final record of %s: contended", id)
}

// record reads the record of id and its revision (commands.ReadRecord).
func (w *Sweeper) record(ctx context.Context, kv jetstream.KeyValue, id string) (*commands.Record, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	return commands.ReadRecord(ctx, kv, id)
}

// publish stores r in SCP_RESULTS (commands.PublishResult).
func (w *Sweeper) publish(ctx context.Context, r *scpgate.Result) error {
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	return commands.PublishResult(ctx, w.js, r)
}
