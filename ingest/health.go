package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate/internal/httpapi"
	"github.com/scpgate/scpgate/streams"
)

// consumerCheckTimeout bounds one check of a durable consumer.
const consumerCheckTimeout = 5 * time.Second

// Health says whether the service's durable consumers are as it made
// them. Problems is empty when they are; otherwise each entry names a
// stream and what is wrong, and /readyz answers 503 with them.
type Health struct {
	Problems []string `json:"problems,omitempty"`
	// Repairs counts consumers found missing (deleted) and re-created, or
	// found changed (another filter) and set back, since the start.
	Repairs uint64 `json:"repairs"`
}

// Ready reports whether there is no problem.
func (h Health) Ready() bool { return len(h.Problems) == 0 }

// Reason joins the problems for a log line or a /readyz body.
func (h Health) Reason() string { return strings.Join(h.Problems, "; ") }

// Health returns the result of the last check of the durable consumers
// (every LagInterval while Run runs).
func (s *Service) Health() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := Health{Repairs: s.repairs.Load()}
	for _, stream := range []string{streams.EventsStream, streams.ResultsStream} {
		if p := s.problems[stream]; p != "" {
			h.Problems = append(h.Problems, p)
		}
	}
	return h
}

// watchConsumers checks both durable consumers every LagInterval until
// ctx is done.
func (s *Service) watchConsumers(ctx context.Context) {
	t := time.NewTicker(s.opts.LagInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, c := range []struct{ stream, filter string }{
			{streams.EventsStream, streams.EventsAll}, {streams.ResultsStream, streams.ResultsAll},
		} {
			p := s.checkConsumer(ctx, c.stream, c.filter)
			s.mu.Lock()
			s.problems[c.stream] = p
			s.mu.Unlock()
		}
	}
}

// checkConsumer looks at the durable consumer of stream: a missing one is
// created again (the store skips what it already holds, so it restarts
// from the start of the stream), one whose filter was changed is set back.
// Either is logged, counted and returned as a problem, so that /readyz
// reports it until the next check finds the consumer right. A check that
// fails (NATS unreachable) returns no problem: the lag shows that.
func (s *Service) checkConsumer(ctx context.Context, stream, filter string) string {
	ctx, cancel := context.WithTimeout(ctx, consumerCheckTimeout)
	defer cancel()
	log := s.log.With().Str("stream", stream).Str("durable", s.opts.Durable).Logger()
	c, err := s.opts.JS.Consumer(ctx, stream, s.opts.Durable)
	var problem string
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		problem = fmt.Sprintf("consumer %s on %s is missing", s.opts.Durable, stream)
	case err != nil:
		if ctx.Err() == nil {
			log.Debug().Err(err).Msg("consumer check")
		}
		return ""
	default:
		cfg := c.CachedInfo().Config
		got := cfg.FilterSubjects
		if cfg.FilterSubject != "" {
			got = append(got, cfg.FilterSubject)
		}
		if !slices.Equal(got, []string{filter}) {
			problem = fmt.Sprintf("consumer %s on %s filters %v, want %s", s.opts.Durable, stream, got, filter)
		}
	}
	if problem == "" {
		return ""
	}
	s.repairs.Add(1)
	if _, err := s.consumer(ctx, stream, filter); err != nil {
		log.Error().Err(err).Str("problem", problem).Msg("ingest consumer wrong and not repaired")
		return problem + " (repair failed: " + err.Error() + ")"
	}
	log.Error().Str("problem", problem).Msg("ingest consumer was wrong; created again with its own config " +
		"(after a changed filter, events stored meanwhile outside it may be missing: run ingest --rebuild)")
	return problem + " (repaired)"
}

// Readiness returns the /readyz policy of ingest: ready while nc is
// connected, the durable consumers are as ingest made them (not deleted,
// not filtered otherwise) and less than maxLag behind; the body carries
// the lag, the NATS status and the consumers' health either way.
func (s *Service) Readiness(nc *nats.Conn, maxLag time.Duration) httpapi.ReadyFunc {
	return func() (string, map[string]any) {
		lag, health := s.Lag(), s.Health()
		body := map[string]any{"lag": lag, "nats": nc.Status().String(), "consumers": health}
		switch {
		case !nc.IsConnected():
			return httpapi.NATSNotConnected, body
		case !health.Ready():
			return health.Reason(), body
		case time.Duration(lag.SecondsBehind*float64(time.Second)) > maxLag:
			return "lagging", body
		}
		return "", body
	}
}
