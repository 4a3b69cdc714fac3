package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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

// handler writes one batch of messages and acknowledges them, or naks
// them and returns an error.
type handler func(ctx context.Context, msgs []jetstream.Msg) error

// loop fetches batches from cons and hands them to handle until ctx is
// done. Messages that arrived together are handled together, so a busy
// stream is written in full batches and a quiet one without delay.
func (s *Service) loop(ctx context.Context, stream string, cons jetstream.Consumer, handle handler) {
	log := s.log.With().Str("stream", stream).Logger()
	buf := make([]jetstream.Msg, 0, s.opts.Batch)
	for ctx.Err() == nil {
		mb, err := cons.Fetch(s.opts.Batch, jetstream.FetchMaxWait(s.opts.MaxWait))
		if err != nil {
			log.Warn().Err(err).Msg("fetch failed")
			_ = backoff.Sleep(ctx, s.opts.RetryDelay) // a done ctx ends the loop
			continue
		}
		msgs := mb.Messages()
		failed := false
		for m := range msgs {
			buf = append(buf[:0], m)
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
			if failed || ctx.Err() != nil {
				nakAll(buf, s.opts.RetryDelay) // another instance, or this one later, takes them
				continue
			}
			if err := handle(ctx, buf); err != nil {
				failed = true
				s.failures.Add(1)
				log.Error().Err(err).Int("messages", len(buf)).Dur("retry_in", s.opts.RetryDelay).Msg("batch not stored; delivered again later")
			}
		}
		if err := mb.Error(); err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("fetch ended with an error")
			failed = true
		}
		if failed {
			_ = backoff.Sleep(ctx, s.opts.RetryDelay) // a done ctx ends the loop
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

// handleEvents stores a batch of event messages, updates the state bucket
// and acknowledges them.
func (s *Service) handleEvents(ctx context.Context, msgs []jetstream.Msg) error {
	events := make([]scpgate.Event, 0, len(msgs))
	good := make([]jetstream.Msg, 0, len(msgs))
	for _, m := range msgs {
		ev, err := decodeEvent(m.Subject(), m.Data())
		if err != nil {
			s.invalid.Add(1)
			s.log.Error().Err(err).Str("subject", m.Subject()).Msg("event dropped: it can never be stored")
			_ = m.TermWithReason("invalid event")
			continue
		}
		events = append(events, ev)
		good = append(good, m)
	}
	if len(events) == 0 {
		return nil
	}
	wctx, cancel := s.writeContext(ctx)
	defer cancel()
	n, err := s.opts.Store.WriteBatch(wctx, events, nil)
	if err != nil {
		nakAll(good, s.opts.RetryDelay)
		return fmt.Errorf("write %d events: %w", len(events), err)
	}
	// The state bucket is updated from every event of the batch, not only
	// the new ones: after a crash between commit and this update, the
	// redelivered batch must still reach it. Updates are idempotent.
	if s.kv != nil {
		if err := s.kv.apply(wctx, events); err != nil {
			nakAll(good, s.opts.RetryDelay)
			return fmt.Errorf("update state bucket for %d events: %w", len(events), err)
		}
	}
	ackAll(good)
	s.events.Add(uint64(n))
	s.duplicates.Add(uint64(len(events) - n))
	s.log.Debug().Int("events", len(events)).Int("new", n).Msg("batch stored")
	return nil
}

// handleResults stores a batch of result messages and acknowledges them.
func (s *Service) handleResults(ctx context.Context, msgs []jetstream.Msg) error {
	results := make([]scpgate.Result, 0, len(msgs))
	good := make([]jetstream.Msg, 0, len(msgs))
	for _, m := range msgs {
		r, err := decodeResult(m.Subject(), m.Data())
		if err != nil {
			s.invalid.Add(1)
			s.log.Error().Err(err).Str("subject", m.Subject()).Msg("result dropped: it can never be stored")
			_ = m.TermWithReason("invalid result")
			continue
		}
		results = append(results, r)
		good = append(good, m)
	}
	if len(results) == 0 {
		return nil
	}
	wctx, cancel := s.writeContext(ctx)
	defer cancel()
	n, err := s.opts.Store.WriteBatch(wctx, nil, results)
	if err != nil {
		nakAll(good, s.opts.RetryDelay)
		return fmt.Errorf("write %d results: %w", len(results), err)
	}
	ackAll(good)
	s.results.Add(uint64(n))
	s.duplicates.Add(uint64(len(results) - n))
	return nil
}
