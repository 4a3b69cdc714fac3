// Package commander is the vendor application's way to send commands to
// controllers and to see where they stand.
//
// A [Service] validates a command (package commands), stores it durably in
// SCP_COMMANDS on scp.cmd.<serial> and answers with its id
// "<serial>.<stream sequence>"; the driver that owns the controller
// delivers it and reports the result. The same operations are served over
// HTTP ([Service.Handler]) and as a NATS micro service
// ([Service.Register]); both are thin adapters over Submit, Get,
// Controllers and Controller.
//
// Results reach a waiting submission through one shared core subscription
// on scp.res.* per Service and a map of waiters, rather than one
// subscription per request: at 1,000 commands a second a per-request
// subscription costs a SUB and an UNSUB each (interest that a cluster
// propagates to every node), while the shared one costs a map lookup per
// result; results for commands nobody waits for are dropped after reading
// one header.
package commander

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/commands"
	"github.com/scpgate/scpgate/streams"
)

// MinTTL is the shortest time a command may wait for its controller.
const MinTTL = time.Second

// DefaultMaxTTL is the default Options.MaxTTL: the default MaxAge of
// SCP_COMMANDS (7 days) less the day a command's message is kept after
// it expired, so that every command is ended before the stream drops it.
const DefaultMaxTTL = 6 * 24 * time.Hour

// Options configure a Service. Zero values take the defaults listed on
// each field (see withDefaults).
type Options struct {
	// JS stores and reads commands and reads the buckets. Required.
	JS jetstream.JetStream
	// NC carries the shared result subscription. Required.
	NC *nats.Conn
	// Log receives the service's logs. Command parameters are never
	// logged (a card_add carries a PIN).
	Log zerolog.Logger

	// DefaultTTL is the TTL of a command that names none (default 1 h).
	DefaultTTL time.Duration
	// MaxTTL is the longest TTL accepted (default DefaultMaxTTL, 6 days).
	// MaxTTL plus one day must stay within the MaxAge of SCP_COMMANDS
	// (CheckMaxAge; the sweeper checks it at start).
	MaxTTL time.Duration
	// MaxWait is the longest a submission may wait for its result
	// (default 60 s).
	MaxWait time.Duration
	// Timeout bounds each NATS request: a publish, a message or key
	// lookup (default 5 s). When it passes the caller gets "unavailable".
	Timeout time.Duration
	// MaxInFlight is how many micro requests are handled at once
	// (default 1024); further ones wait in the subscription.
	MaxInFlight int
	// StatusBucket is the bucket of command status records (default
	// commands.StatusBucket).
	StatusBucket string
	// SessionsBucket is the presence bucket (default
	// streams.SessionsBucket).
	SessionsBucket string
}

// withDefaults returns o with every zero value replaced by its default.
func (o Options) withDefaults() Options {
	if o.DefaultTTL == 0 {
		o.DefaultTTL = time.Hour
	}
	if o.MaxTTL == 0 {
		o.MaxTTL = DefaultMaxTTL
	}
	if o.MaxWait == 0 {
		o.MaxWait = 60 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 1024
	}
	if o.StatusBucket == "" {
		o.StatusBucket = commands.StatusBucket
	}
	if o.SessionsBucket == "" {
		o.SessionsBucket = streams.SessionsBucket
	}
	return o
}

// ErrInvalidOptions is returned (wrapped) by New for options it cannot
// work with.
var ErrInvalidOptions = errors.New("invalid commander options")

// Service is the command API. It is stateless apart from its waiters:
// run as many as the load needs.
type Service struct {
	opts Options
	js   jetstream.JetStream
	log  zerolog.Logger

	results *waiters
	sub     *nats.Subscription

	// ctx is cancelled by Close; micro handlers run under it.
	ctx      context.Context
	cancel   context.CancelFunc
	inflight chan struct{} // semaphore of micro handlers
	wg       sync.WaitGroup

	mu       sync.Mutex // guards the fields below
	stream   jetstream.Stream
	status   jetstream.KeyValue
	sessions jetstream.KeyValue
	services []micro.Service
	closed   bool
}

// New returns a Service and subscribes it to every result subject.
func New(opts Options) (*Service, error) {
	opts = opts.withDefaults()
	switch {
	case opts.JS == nil || opts.NC == nil:
		return nil, fmt.Errorf("%w: JS and NC are required", ErrInvalidOptions)
	case opts.DefaultTTL < MinTTL || opts.DefaultTTL > opts.MaxTTL:
		return nil, fmt.Errorf("%w: default TTL %s not within %s..%s", ErrInvalidOptions, opts.DefaultTTL, MinTTL, opts.MaxTTL)
	case opts.MaxWait < 0 || opts.Timeout < 0 || opts.MaxInFlight < 0:
		return nil, fmt.Errorf("%w: negative MaxWait, Timeout or MaxInFlight", ErrInvalidOptions)
	}
	s := &Service{
		opts:     opts,
		js:       opts.JS,
		log:      opts.Log.With().Str("component", "commander").Logger(),
		results:  newWaiters(),
		inflight: make(chan struct{}, opts.MaxInFlight),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	sub, err := opts.NC.Subscribe(streams.ResultsAll, s.results.dispatch)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("subscribe to results %s: %w", streams.ResultsAll, err)
	}
	// Results for commands nobody waits for are read and dropped; allow a
	// deep backlog before the client calls this a slow consumer.
	if err := sub.SetPendingLimits(1<<16, 64<<20); err != nil {
		_ = sub.Unsubscribe()
		s.cancel()
		return nil, fmt.Errorf("set result subscription limits: %w", err)
	}
	s.sub = sub
	return s, nil
}

// Close stops the micro services registered by Register, waits for their
// in-flight requests and drops the result subscription. Waiting
// submissions end early with what is known.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	svcs := s.services
	s.services = nil
	s.mu.Unlock()

	var errs []error
	for _, svc := range svcs {
		if err := svc.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop micro service: %w", err))
		}
	}
	s.cancel()
	s.wg.Wait()
	if err := s.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		errs = append(errs, fmt.Errorf("unsubscribe results: %w", err))
	}
	return errors.Join(errs...)
}

// commandsStream returns the SCP_COMMANDS handle, looking it up until a
// lookup succeeds. Lookups run outside the lock, so that while NATS is down
// each caller waits for its own timeout only.
func (s *Service) commandsStream(ctx context.Context) (jetstream.Stream, error) {
	s.mu.Lock()
	st := s.stream
	s.mu.Unlock()
	if st != nil {
		return st, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	st, err := s.js.Stream(ctx, streams.CommandsStream)
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", streams.CommandsStream, err)
	}
	s.mu.Lock()
	s.stream = st
	s.mu.Unlock()
	return st, nil
}

// bucket returns the bucket named name, looking it up into *dst (guarded
// by mu) until a lookup succeeds.
func (s *Service) bucket(ctx context.Context, name string, dst *jetstream.KeyValue) (jetstream.KeyValue, error) {
	s.mu.Lock()
	kv := *dst
	s.mu.Unlock()
	if kv != nil {
		return kv, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	kv, err := s.js.KeyValue(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("look up bucket %s: %w", name, err)
	}
	s.mu.Lock()
	*dst = kv
	s.mu.Unlock()
	return kv, nil
}

func (s *Service) statusBucket(ctx context.Context) (jetstream.KeyValue, error) {
	return s.bucket(ctx, s.opts.StatusBucket, &s.status)
}

func (s *Service) sessionsBucket(ctx context.Context) (jetstream.KeyValue, error) {
	return s.bucket(ctx, s.opts.SessionsBucket, &s.sessions)
}

// queueCap returns the per-controller queue cap of SCP_COMMANDS as last
// seen, or 0 when unknown.
func (s *Service) queueCap() int64 {
	s.mu.Lock()
	st := s.stream
	s.mu.Unlock()
	if st == nil {
		return 0
	}
	if info := st.CachedInfo(); info != nil {
		return info.Config.MaxMsgsPerSubject
	}
	return 0
}
