// Package ingest is the vendor application's event history: it consumes
// SCP_EVENTS and SCP_RESULTS into a scpgate.Store, keeps the current state
// of every controller, door, input and output (in the store and in the KV
// bucket scp_state), and serves queries over HTTP.
//
// Each stream is read by a durable pull consumer, in batches; a batch is
// written in one store transaction and its messages are acknowledged only
// after the commit. The store skips events it already holds, so a message
// delivered twice (after a crash between commit and ack, or to two ingest
// instances sharing the consumer) is stored once, and state only moves
// forward. Rebuild re-reads the streams into an empty store.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/streams"
)

// DefaultDurable is the name of the durable consumer ingest instances
// share on each stream.
const DefaultDurable = "scpgate-ingest"

// DefaultBatch is the largest number of messages written in one
// transaction unless Options.Batch says otherwise.
const DefaultBatch = 10000

// DefaultWriters is the number of batches of one stream written at the
// same time unless Options.Writers says otherwise.
const DefaultWriters = 2

// Options configure a Service. Zero values take the defaults of
// Options.withDefaults.
type Options struct {
	// JS is the JetStream context; the streams must exist (streams.Ensure).
	JS jetstream.JetStream
	// Store receives events and results.
	Store scpgate.Store
	// Durable names the shared consumer on SCP_EVENTS and SCP_RESULTS.
	Durable string
	// Batch is the largest number of messages written in one transaction.
	Batch int
	// Writers is the number of batches of one stream written at the same
	// time, each writer taking its own share of the controllers, in stream
	// order, so a store that writes in parallel (PostgreSQL) can use
	// several connections. A scpgate.SerialWriter store (SQLite) gets one.
	Writers int
	// MaxWait is how long one fetch waits for messages.
	MaxWait time.Duration
	// AckWait is how long the server waits for an ack before redelivering.
	AckWait time.Duration
	// RetryDelay is how long a batch that failed to be written waits
	// before it is delivered again, and the pause after a fetch error.
	RetryDelay time.Duration
	// LagInterval is how often Lag is refreshed from the server.
	LagInterval time.Duration
	// Log receives the service's logs.
	Log zerolog.Logger
	// StateKV is the scp_state bucket; nil leaves it alone.
	StateKV jetstream.KeyValue
	// StateWorkers bounds the concurrent updates of StateKV.
	StateWorkers int
}

// withDefaults returns o with its defaults filled in: durable
// "scpgate-ingest", batches of 10,000, 2 writers, 1 s fetch wait, 30 s ack wait, 1 s
// retry delay, lag refreshed every 5 s, 8 state workers.
func (o Options) withDefaults() Options {
	if o.Durable == "" {
		o.Durable = DefaultDurable
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.Writers <= 0 {
		o.Writers = DefaultWriters
	}
	if o.MaxWait <= 0 {
		o.MaxWait = time.Second
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = time.Second
	}
	if o.LagInterval <= 0 {
		o.LagInterval = 5 * time.Second
	}
	if o.StateWorkers <= 0 {
		o.StateWorkers = 8
	}
	return o
}

// ErrMissingOption is returned (wrapped) by New when JS or Store is nil.
var ErrMissingOption = errors.New("ingest: missing option")

// Service consumes events and results into a store. Create it with New,
// run it with Run; Lag, Stats and Handler may be used from any goroutine.
type Service struct {
	opts Options
	log  zerolog.Logger
	kv   *kvState // nil without StateKV

	mu       sync.Mutex // guards lag and problems
	lag      Lag
	problems map[string]string // stream -> problem of its durable consumer (see health.go)
	repairs  atomic.Uint64

	events, results, duplicates, invalid, failures atomic.Uint64
}

// New returns a Service for opts.
func New(opts Options) (*Service, error) {
	if opts.JS == nil || opts.Store == nil {
		return nil, fmt.Errorf("%w: JS and Store are required", ErrMissingOption)
	}
	opts = opts.withDefaults()
	if _, ok := opts.Store.(scpgate.SerialWriter); ok {
		opts.Writers = 1
	}
	s := &Service{opts: opts, log: opts.Log.With().Str("component", "ingest").Logger(), problems: map[string]string{}}
	if opts.StateKV != nil {
		s.kv = newKVState(opts.StateKV, opts.StateWorkers)
	}
	return s, nil
}

// Stats are the service's counters since it started.
type Stats struct {
	Events     uint64 `json:"events"`     // events newly stored
	Results    uint64 `json:"results"`    // results newly stored
	Duplicates uint64 `json:"duplicates"` // events and results delivered again and skipped
	Invalid    uint64 `json:"invalid"`    // messages that could not be decoded, terminated
	Failures   uint64 `json:"failures"`   // batches that failed and were delivered again
}

// Stats returns the service's counters.
func (s *Service) Stats() Stats {
	return Stats{
		Events: s.events.Load(), Results: s.results.Load(), Duplicates: s.duplicates.Load(),
		Invalid: s.invalid.Load(), Failures: s.failures.Load(),
	}
}

// Run consumes both streams until ctx is done, then returns nil after the
// batches in flight are written. It returns an error only when the
// consumers cannot be created (a stream is missing, NATS is unreachable);
// write failures are logged and retried.
func (s *Service) Run(ctx context.Context) error {
	evCons, err := s.consumer(ctx, streams.EventsStream, streams.EventsAll)
	if err != nil {
		return err
	}
	resCons, err := s.consumer(ctx, streams.ResultsStream, streams.ResultsAll)
	if err != nil {
		return err
	}
	s.log.Info().Str("durable", s.opts.Durable).Int("batch", s.opts.Batch).Int("writers", s.opts.Writers).Bool("state_kv", s.kv != nil).Msg("ingest running")
	var wg sync.WaitGroup
	wg.Go(func() { s.loop(ctx, streams.EventsStream, evCons, s.eventStage()) })
	wg.Go(func() { s.loop(ctx, streams.ResultsStream, resCons, s.resultStage()) })
	wg.Go(func() { s.watchLag(ctx, evCons, resCons) })
	wg.Go(func() { s.watchConsumers(ctx) })
	wg.Wait()
	s.log.Info().Msg("ingest stopped")
	return nil
}

// consumer creates or updates the shared durable consumer on a stream.
func (s *Service) consumer(ctx context.Context, stream, filter string) (jetstream.Consumer, error) {
	c, err := s.opts.JS.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:       s.opts.Durable,
		Description:   "scpgate ingest: " + stream + " into the event store",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.opts.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: max(10*s.opts.Batch, 10000),
		MaxWaiting:    512,
		FilterSubject: filter,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", s.opts.Durable, stream, err)
	}
	return c, nil
}
