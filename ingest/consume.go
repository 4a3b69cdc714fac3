package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/internal/backoff"
	"github.com/scpgate/scpgate/streams"
)

// ErrBadMessage is returned (wrapped) for a stream message that can never
// be stored: not JSON of its type, invalid, or on a subject that does not
// match its content. Ingest terminates such messages and Rebuild skips
// them, so both end with the same rows.
var ErrBadMessage = errors.New("bad message")

// decodeEvent decodes and checks the event in a message on subject.
func decodeEvent(subject string, data []byte) (scpgate.Event, error) {
	var ev scpgate.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return ev, fmt.Errorf("%w: decode event on %s: %w", ErrBadMessage, subject, err)
	}
	if err := scpgate.CheckEvent(&ev); err != nil {
		return ev, fmt.Errorf("%w: on %s: %w", ErrBadMessage, subject, err)
	}
	want, err := streams.EventSubject(ev.Controller, ev.Kind)
	if err != nil || want != subject {
		return ev, fmt.Errorf("%w: event %s of %s/%s on subject %s", ErrBadMessage, ev.ID, ev.Controller, ev.Kind, subject)
	}
	return ev, nil
}

// decodeResult decodes and checks the result in a message on subject.
func decodeResult(subject string, data []byte) (scpgate.Result, error) {
	var r scpgate.Result
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%w: decode result on %s: %w", ErrBadMessage, subject, err)
	}
	if err := scpgate.CheckResult(&r); err != nil {
		return r, fmt.Errorf("%w: on %s: %w", ErrBadMessage, subject, err)
	}
	want, err := streams.ResultSubject(r.Controller)
	if err != nil || want != subject {
		return r, fmt.Errorf("%w: result %s of %s on subject %s", ErrBadMessage, r.ID, r.Controller, subject)
	}
	return r, nil
}

// batch is a set of messages fetched together, decoded, to be written in
// one transaction. The messages that could not be decoded are already
// terminated and left out.
type batch struct {
	msgs        []jetstream.Msg
	events      []scpgate.Event
	results     []scpgate.Result
	redelivered []bool // per event: delivered before
}

// stage is how one stream's messages are handled: decode runs in the
// fetching goroutine, write (store, then acknowledge, or nak and return an
// error) in the writing one, so that the next batch is fetched and decoded
// while one is written.
type stage struct {
	decode func(msgs []jetstream.Msg) *batch
	write  func(ctx context.Context, b *batch) error
}

// split divides b among n writers by controller, keeping the order of
// each controller's messages; parts without a message are nil.
func (b *batch) split(n int) []*batch {
	parts := make([]*batch, n)
	if n == 1 {
		parts[0] = b
		return parts
	}
	for i, m := range b.msgs {
		var controller string
		if b.events != nil {
			controller = b.events[i].Controller
		} else {
			controller = b.results[i].Controller
		}
		w := writerOf(controller, n)
		p := parts[w]
		if p == nil {
			p = &batch{}
			parts[w] = p
		}
		p.msgs = append(p.msgs, m)
		if b.events != nil {
			p.events = append(p.events, b.events[i])
			p.redelivered = append(p.redelivered, b.redelivered[i])
		} else {
			p.results = append(p.results, b.results[i])
		}
	}
	return parts
}

// writerOf returns which of n writers handles controller (FNV-1a).
func writerOf(controller string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(controller); i++ {
		h = (h ^ uint32(controller[i])) * 16777619
	}
	return int(h % uint32(n))
}

// loop fetches batches from cons and hands them to st until ctx is done.
// Messages that arrived together are handled together, so a busy stream
// is written in full batches and a quiet one without delay. Options.Writers
// writers write while the next batch is fetched and decoded, each the
// messages of its own share of the controllers, in stream order: the
// first copy of an event re-sent past the duplicate window is always
// stored before the copy, so state, which follows stream sequences, is
// not set from the copy's later sequence. After a failed write the
// batches in flight are delivered again later rather than written.
func (s *Service) loop(ctx context.Context, stream string, cons jetstream.Consumer, st stage) {
	log := s.log.With().Str("stream", stream).Logger()
	var failed atomic.Bool // a write failed: nak until the pause is over
	queues := make([]chan *batch, s.opts.Writers)
	var writers sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan *batch, 1)
		writers.Go(func() { s.writeLoop(ctx, log, queues[i], &failed, st) })
	}
	defer func() {
		for _, q := range queues {
			close(q)
		}
		writers.Wait()
	}()
	for ctx.Err() == nil {
		mb, err := cons.Fetch(s.opts.Batch, jetstream.FetchMaxWait(s.opts.MaxWait))
		if err != nil {
			log.Warn().Err(err).Msg("fetch failed")
			_ = backoff.Sleep(ctx, s.opts.RetryDelay) // a done ctx ends the loop
			continue
		}
		msgs := mb.Messages()
		for m := range msgs {
			buf := make([]jetstream.Msg, 1, s.opts.Batch)
			buf[0] = m
		drain:
			for len(buf) < s.opts.Batch {
				select {
				case m, ok := <-msgs:
					if !ok {
						break drain
					}
					buf = append(buf, m)
				default:
					break drain
				}
			}
			if failed.Load() || ctx.Err() != nil {
				nakAll(buf, s.opts.RetryDelay)
				continue
			}
			if b := st.decode(buf); len(b.msgs) > 0 {
				for i, part := range b.split(len(queues)) {
					if part != nil {
						queues[i] <- part
					}
				}
			}
		}
		if err := mb.Error(); err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("fetch ended with an error")
			_ = backoff.Sleep(ctx, s.opts.RetryDelay) // a done ctx ends the loop
		}
		if failed.Load() {
			_ = backoff.Sleep(ctx, s.opts.RetryDelay) // a done ctx ends the loop
			failed.Store(false)
		}
	}
}

// writeLoop writes the batches of queue until it is closed; after a
// failed write (failed set) it naks them instead, until the loop's pause
// is over.
func (s *Service) writeLoop(ctx context.Context, log zerolog.Logger, queue <-chan *batch, failed *atomic.Bool, st stage) {
	for b := range queue {
		if failed.Load() || ctx.Err() != nil {
			nakAll(b.msgs, s.opts.RetryDelay) // another instance, or this one later, takes them
			continue
		}
		if err := st.write(ctx, b); err != nil {
			failed.Store(true)
			s.failures.Add(1)
			log.Error().Err(err).Int("messages", len(b.msgs)).Dur("retry_in", s.opts.RetryDelay).Msg("batch not stored; delivered again later")
		}
	}
}

func nakAll(msgs []jetstream.Msg, delay time.Duration) {
	for _, m := range msgs {
		_ = m.NakWithDelay(delay) // if the nak is lost, AckWait redelivers
	}
}

func ackAll(msgs []jetstream.Msg) {
	for _, m := range msgs {
		_ = m.Ack() // if the ack is lost, the message comes again and is skipped
	}
}

// writeContext returns the context a batch is written in: not cancelled
// with ctx, so that a batch being written when the service stops is
// finished and acknowledged, but bounded by the ack wait.
func (s *Service) writeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.opts.AckWait)
}

// eventStage decodes event messages, stores them, updates the state
// bucket and acknowledges them.
func (s *Service) eventStage() stage {
	return stage{decode: s.decodeEvents, write: s.writeEvents}
}

// decodeEvents decodes a batch of event messages with their stream
// sequences, terminating those that can never be stored.
func (s *Service) decodeEvents(msgs []jetstream.Msg) *batch {
	b := &batch{
		msgs:        make([]jetstream.Msg, 0, len(msgs)),
		events:      make([]scpgate.Event, 0, len(msgs)),
		redelivered: make([]bool, 0, len(msgs)),
	}
	for _, m := range msgs {
		ev, err := decodeEvent(m.Subject(), m.Data())
		if err != nil {
			s.invalid.Add(1)
			s.log.Error().Err(err).Str("subject", m.Subject()).Msg("event dropped: it can never be stored")
			_ = m.TermWithReason("invalid event")
			continue
		}
		again := false
		if md, err := m.Metadata(); err == nil {
			ev.StreamSeq = md.Sequence.Stream
			again = md.NumDelivered > 1
		} else {
			s.log.Warn().Err(err).Str("subject", m.Subject()).Msg("event without stream metadata: ordered by boot epoch")
		}
		ev.Doc = m.Data()
		b.msgs = append(b.msgs, m)
		b.events = append(b.events, ev)
		b.redelivered = append(b.redelivered, again)
	}
	return b
}

// writeEvents stores a decoded batch of events, updates the state bucket
// and acknowledges the messages, or naks them and returns an error.
func (s *Service) writeEvents(ctx context.Context, b *batch) error {
	events := b.events
	wctx, cancel := s.writeContext(ctx)
	defer cancel()
	n, err := s.opts.Store.WriteBatch(wctx, events, nil)
	if err != nil {
		nakAll(b.msgs, s.opts.RetryDelay)
		return fmt.Errorf("write %d events: %w", len(events), err)
	}
	// The state bucket is updated from the events newly stored and from
	// every event delivered again: after a crash between commit and this
	// update, the redelivered batch must still reach it (updates are
	// idempotent). An event stored again in the stream (a re-send past
	// the duplicate window) and delivered for the first time is left out,
	// as the store left it out: its stream sequence is newer than the
	// transactions that followed it.
	if s.kv != nil {
		apply := events[:0:0]
		for i := range events {
			if events[i].Inserted || b.redelivered[i] {
				apply = append(apply, events[i])
			}
		}
		if err := s.kv.apply(wctx, apply); err != nil {
			nakAll(b.msgs, s.opts.RetryDelay)
			return fmt.Errorf("update state bucket for %d events: %w", len(events), err)
		}
	}
	ackAll(b.msgs)
	s.events.Add(uint64(n))
	s.duplicates.Add(uint64(len(events) - n))
	s.log.Debug().Int("events", len(events)).Int("new", n).Msg("batch stored")
	return nil
}

// resultStage decodes result messages, stores them and acknowledges
// them.
func (s *Service) resultStage() stage {
	return stage{decode: s.decodeResults, write: s.writeResults}
}

// decodeResults decodes a batch of result messages, terminating those
// that can never be stored.
func (s *Service) decodeResults(msgs []jetstream.Msg) *batch {
	b := &batch{msgs: make([]jetstream.Msg, 0, len(msgs)), results: make([]scpgate.Result, 0, len(msgs))}
	for _, m := range msgs {
		r, err := decodeResult(m.Subject(), m.Data())
		if err != nil {
			s.invalid.Add(1)
			s.log.Error().Err(err).Str("subject", m.Subject()).Msg("result dropped: it can never be stored")
			_ = m.TermWithReason("invalid result")
			continue
		}
		b.msgs = append(b.msgs, m)
		b.results = append(b.results, r)
	}
	return b
}

// writeResults stores a decoded batch of results and acknowledges them,
// or naks them and returns an error.
func (s *Service) writeResults(ctx context.Context, b *batch) error {
	wctx, cancel := s.writeContext(ctx)
	defer cancel()
	n, err := s.opts.Store.WriteBatch(wctx, nil, b.results)
	if err != nil {
		nakAll(b.msgs, s.opts.RetryDelay)
		return fmt.Errorf("write %d results: %w", len(b.results), err)
	}
	ackAll(b.msgs)
	s.results.Add(uint64(n))
	s.duplicates.Add(uint64(len(b.results) - n))
	return nil
}
