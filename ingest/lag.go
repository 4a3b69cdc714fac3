package ingest

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate/streams"
)

// StreamLag is how far the shared consumer of one stream is behind.
type StreamLag struct {
	// Pending counts the messages not yet acknowledged: not yet delivered
	// to any ingest instance, or delivered and in flight.
	Pending uint64 `json:"pending"`
	// SecondsBehind is the age of the oldest unacknowledged message; 0
	// when nothing is pending.
	SecondsBehind float64 `json:"seconds_behind"`
	// Updated is when the server was last asked; zero before the first
	// answer.
	Updated time.Time `json:"updated,omitzero"`
	// Error is the last refresh error, empty when it succeeded.
	Error string `json:"error,omitempty"`
}

// Lag is the consumer lag of both streams, for metrics and /readyz.
type Lag struct {
	Pending       uint64    `json:"pending"`        // events and results pending
	SecondsBehind float64   `json:"seconds_behind"` // the larger of the two
	Events        StreamLag `json:"events"`
	Results       StreamLag `json:"results"`
}

// Lag returns the last measured lag. It is refreshed every LagInterval
// while Run runs.
func (s *Service) Lag() Lag {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lag
}

// watchLag refreshes the lag until ctx is done.
func (s *Service) watchLag(ctx context.Context, evCons, resCons jetstream.Consumer) {
	t := time.NewTicker(s.opts.LagInterval)
	defer t.Stop()
	for {
		ev := s.measure(ctx, streams.EventsStream, streams.EventsAll, evCons)
		res := s.measure(ctx, streams.ResultsStream, streams.ResultsAll, resCons)
		s.mu.Lock()
		s.lag = Lag{
			Pending:       ev.Pending + res.Pending,
			SecondsBehind: max(ev.SecondsBehind, res.SecondsBehind),
			Events:        ev,
			Results:       res,
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// measure asks the server for the consumer's pending count and, when
// something is pending, for the time of the first unacknowledged message.
func (s *Service) measure(ctx context.Context, stream, filter string, cons jetstream.Consumer) StreamLag {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	now := time.Now()
	info, err := cons.Info(ctx)
	if err != nil {
		s.log.Debug().Err(err).Str("stream", stream).Msg("consumer info for lag")
		prev := s.Lag()
		l := prev.Events
		if stream == streams.ResultsStream {
			l = prev.Results
		}
		l.Error = err.Error()
		return l
	}
	l := StreamLag{Pending: info.NumPending + uint64(info.NumAckPending), Updated: now}
	if l.Pending == 0 {
		return l
	}
	st, err := s.opts.JS.Stream(ctx, stream)
	if err == nil {
		var m *jetstream.RawStreamMsg
		m, err = st.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(filter))
		if err == nil {
			l.SecondsBehind = max(0, now.Sub(m.Time).Seconds())
		}
	}
	if err != nil {
		l.Error = "oldest pending message: " + err.Error()
	}
	return l
}
