package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/streams"
)

// rebuildBatch is the number of messages Rebuild writes per transaction.
const rebuildBatch = 500

// rebuildWait bounds how long Rebuild waits for the next messages of a
// stream that still has some pending.
const rebuildWait = 5 * time.Second

// Rebuild re-reads SCP_EVENTS and then SCP_RESULTS into store: every
// message of the last since (all of them when since <= 0), in stream order,
// through ordered consumers (the shared durable consumer is left alone).
// Messages live ingest would terminate are skipped, so a store rebuilt
// from the same messages holds the same rows as one filled by ingest.
// Messages published while it runs are read too, until it catches up.
//
// progress, when not nil, is called after every batch with the messages
// read so far and the total to read, which is known once each stream's
// first message is read. The state bucket is not touched.
func Rebuild(ctx context.Context, js jetstream.JetStream, store scpgate.Store, since time.Duration, progress func(done, total uint64)) error {
	var start time.Time
	if since > 0 {
		start = time.Now().Add(-since)
	}
	if progress == nil {
		progress = func(done, total uint64) {}
	}
	parts := []struct {
		stream, filter string
		write          func(context.Context, []jetstream.Msg) error
	}{
		{streams.EventsStream, streams.EventsAll, func(ctx context.Context, msgs []jetstream.Msg) error {
			events := make([]scpgate.Event, 0, len(msgs))
			for _, m := range msgs {
				if ev, err := decodeEvent(m.Subject(), m.Data()); err == nil {
					if md, err := m.Metadata(); err == nil {
						ev.StreamSeq = md.Sequence.Stream
					}
					ev.Doc = m.Data()
					events = append(events, ev)
				}
			}
			_, err := store.WriteBatch(ctx, events, nil)
			return err
		}},
		{streams.ResultsStream, streams.ResultsAll, func(ctx context.Context, msgs []jetstream.Msg) error {
			results := make([]scpgate.Result, 0, len(msgs))
			for _, m := range msgs {
				if r, err := decodeResult(m.Subject(), m.Data()); err == nil {
					results = append(results, r)
				}
			}
			_, err := store.WriteBatch(ctx, nil, results)
			return err
		}},
	}
	readers := make([]*reader, len(parts))
	var total uint64
	for i, p := range parts {
		r, err := openReader(ctx, js, p.stream, start)
		if err != nil {
			return err
		}
		readers[i] = r
		if r != nil {
			total += r.remaining + 1
		}
	}
	var done uint64
	progress(done, total)
	for i, p := range parts {
		r := readers[i]
		if r == nil {
			continue
		}
		for {
			msgs, last, err := r.next(ctx)
			if err != nil {
				return fmt.Errorf("rebuild from %s: %w", p.stream, err)
			}
			if len(msgs) > 0 {
				if err := p.write(ctx, msgs); err != nil {
					return fmt.Errorf("rebuild from %s: write %d messages: %w", p.stream, len(msgs), err)
				}
				done += uint64(len(msgs))
				total = max(total, done)
				progress(done, total)
			}
			if last {
				break
			}
		}
	}
	progress(done, done)
	return nil
}

// reader reads one stream with an ordered consumer.
type reader struct {
	stream    string
	cons      jetstream.Consumer
	first     jetstream.Msg // read by openReader, not yet returned
	remaining uint64        // messages after the last one read
}

// openReader opens an ordered consumer on stream from start (all when
// zero) and reads its first message; it returns nil when there is none.
func openReader(ctx context.Context, js jetstream.JetStream, stream string, start time.Time) (*reader, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("rebuild: stream %s: %w", stream, err)
	}
	state := st.CachedInfo().State
	if state.Msgs == 0 || (!start.IsZero() && state.LastTime.Before(start)) {
		return nil, nil
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if !start.IsZero() {
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &start
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("rebuild: ordered consumer on %s: %w", stream, err)
	}
	first, err := cons.Next(jetstream.FetchMaxWait(rebuildWait))
	if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
		return nil, nil // emptied (aged out) since the stream info
	}
	if err != nil {
		return nil, fmt.Errorf("rebuild: first message of %s: %w", stream, err)
	}
	md, err := first.Metadata()
	if err != nil {
		return nil, fmt.Errorf("rebuild: metadata of %s message: %w", stream, err)
	}
	return &reader{stream: stream, cons: cons, first: first, remaining: md.NumPending}, nil
}

// next returns the next batch of messages and whether the reader has
// caught up with the stream.
func (r *reader) next(ctx context.Context) ([]jetstream.Msg, bool, error) {
	msgs := make([]jetstream.Msg, 0, rebuildBatch)
	if r.first != nil {
		msgs = append(msgs, r.first)
		r.first = nil
	}
	for len(msgs) < rebuildBatch && r.remaining > 0 {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		mb, err := r.cons.Fetch(int(min(uint64(rebuildBatch-len(msgs)), r.remaining)), jetstream.FetchMaxWait(rebuildWait))
		if err != nil {
			return nil, false, fmt.Errorf("fetch: %w", err)
		}
		got := 0
		for m := range mb.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return nil, false, fmt.Errorf("metadata: %w", err)
			}
			msgs = append(msgs, m)
			r.remaining = md.NumPending
			got++
		}
		if err := mb.Error(); err != nil {
			return nil, false, fmt.Errorf("fetch: %w", err)
		}
		if got == 0 {
			// Pending messages may have aged out: ask the server.
			info, err := r.cons.Info(ctx)
			if err != nil {
				return nil, false, fmt.Errorf("consumer info: %w", err)
			}
			r.remaining = info.NumPending
		}
	}
	return msgs, r.remaining == 0, nil
}
