package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/streams"
)

// ReadRecord reads the record of command id from the scp_commands bucket
// and its revision: nil and 0 when there is none. An unreadable record is
// returned as nil with its revision, so that a compare-and-set overwrites
// it. Drivers and the commander's sweeper both end commands this way.
func ReadRecord(ctx context.Context, kv jetstream.KeyValue, id string) (*Record, uint64, error) {
	e, err := kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read record of %s: %w", id, err)
	}
	var rec Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, e.Revision(), nil
	}
	return &rec, e.Revision(), nil
}

// PublishResult stores r in SCP_RESULTS on scp.res.<controller> with the
// command id as message id, so that a result published again (by a
// driver and a sweeper, or after a retry) is stored once.
func PublishResult(ctx context.Context, js jetstream.JetStream, r *scpgate.Result) error {
	subject, err := streams.ResultSubject(r.Controller)
	if err != nil {
		return err
	}
	data, err := r.MarshalJSON() // not json.Marshal, which would check and compact it again
	if err != nil {
		return fmt.Errorf("encode result %s: %w", r.ID, err)
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{r.ID}}}
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithExpectStream(streams.ResultsStream)); err != nil {
		return fmt.Errorf("publish result %s: %w", r.ID, err)
	}
	return nil
}
