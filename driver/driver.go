package driver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver/internal/delivery"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/streams"
)

// Errors returned by the Driver.
var (
	// ErrClosed is returned by Start, Drain and Close on a driver that was
	// already drained or closed.
	ErrClosed = errors.New("driver: closed")
	// ErrStarted is returned by a second call to Start.
	ErrStarted = errors.New("driver: already started")
)

// Driver accepts controller connections, runs one session per controller,
// publishes every transaction to JetStream and acknowledges it to the
// controller only once stored. See the package documentation.
type Driver struct {
	opts  Options
	log   zerolog.Logger
	nc    *nats.Conn
	js    jetstream.JetStream
	stats *counters
	// budget holds the driver-wide in-flight tokens: one per unconfirmed
	// transaction.
	budget *budget
	// ids remembers scp_identity (see identity.go).
	ids *identities

	// cmds delivers commands (internal/delivery, wired in commands.go).
	cmds *delivery.Delivery

	// set by Start, then read-only
	handles *streams.Handles
	ln      net.Listener
	svc     micro.Service
	bgCtx   context.Context // canceled by Close: stops retries and background work
	bgStop  context.CancelFunc
	// hardCtx is canceled when the driver must stop now (Drain's deadline
	// passed, or Close without NATS): presence attempts in progress end.
	hardCtx  context.Context
	hardStop context.CancelFunc

	started  atomic.Bool
	ensured  atomic.Bool
	draining atomic.Bool
	closed   atomic.Bool

	mu       sync.Mutex
	sessions map[string]*session   // established sessions by serial; guarded by mu
	conns    map[*session]struct{} // every live connection; guarded by mu

	connWG sync.WaitGroup // one per connection goroutine
	bgWG   sync.WaitGroup // background loops and the goroutines of command delivery
	presWG sync.WaitGroup // presence work of started and ended sessions
	presq  presenceQueue  // runs that work on a few goroutines

	readers sync.Pool // *frameReader of Options.ReadBuffer bytes
	acks    ackQueue  // sessions whose ack waits (see ackDelay)

	pb     *publisher // sends events and matches their PubAcks
	outage outage     // SCP_EVENTS without a leader (outage.go)
	rt     retrier
}

// New returns a driver configured by opts; Start runs it.
func New(opts Options) (*Driver, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	d := &Driver{
		opts:     opts,
		log:      opts.Log.With().Str("driver", opts.ID).Logger(),
		nc:       opts.NATS,
		stats:    newCounters(),
		budget:   newBudget(opts.MaxInflightTotal),
		ids:      newIdentities(opts.UnknownSerialRate),
		sessions: make(map[string]*session),
		conns:    make(map[*session]struct{}),
		rt:       newRetrier(),
		acks:     ackQueue{kick: make(chan struct{}, 1)},
	}
	d.bgCtx, d.bgStop = context.WithCancel(context.Background())
	d.hardCtx, d.hardStop = context.WithCancel(context.Background())
	// Events go through d.pb, not this context's async publisher.
	js, err := jetstream.New(d.nc)
	if err != nil {
		return nil, fmt.Errorf("driver: jetstream context: %w", err)
	}
	d.js = js
	d.cmds = newDelivery(d)
	d.pb = newPublisher(d.nc, opts.MaxInflightTotal, opts.PublishTimeout, d.settled, &d.stats.staleAcks)
	return d, nil
}

// ID returns the driver's id.
func (d *Driver) ID() string { return d.opts.ID }

// Start ensures the streams and buckets (retrying until ctx ends while NATS
// is unavailable), listens for controllers, starts watching scp_sessions
// and registers the scpgate-driver micro service. It returns once the
// driver accepts connections.
func (d *Driver) Start(ctx context.Context) error {
	if d.closed.Load() {
		return ErrClosed
	}
	if !d.started.CompareAndSwap(false, true) {
		return ErrStarted
	}
	h, err := d.ensure(ctx)
	if err != nil {
		return err
	}
	d.handles = h
	d.ensured.Store(true)

	ln := d.opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", d.opts.Listen); err != nil {
			return fmt.Errorf("driver: listen on %s: %w", d.opts.Listen, err)
		}
	}
	if d.opts.TLS != nil {
		ln = tls.NewListener(ln, d.opts.TLS)
	}
	d.ln = ln

	if err := d.pb.start(); err != nil {
		ln.Close()
		return fmt.Errorf("driver: start publisher: %w", err)
	}
	if err := d.cmds.Start(d.bgCtx, d.handles); err != nil {
		ln.Close()
		d.pb.stop()
		return fmt.Errorf("driver: start command delivery: %w", err)
	}
	d.bgWG.Go(d.promote)
	d.bgWG.Go(func() { d.pb.loop(d.bgCtx) })
	d.bgWG.Go(d.flushBudget)
	d.bgWG.Go(d.watchSessions)
	d.bgWG.Go(d.retryLoop)
	d.bgWG.Go(d.heartbeats)
	d.bgWG.Go(d.ackFlusher)

	if err := d.startService(); err != nil {
		ln.Close()
		d.bgStop()
		d.pb.stop()
		return err
	}
	d.connWG.Go(func() { d.acceptLoop(ln) })
	d.log.Info().Str("listen", ln.Addr().String()).Bool("tls", d.opts.TLS != nil).Msg("driver started")
	return nil
}

// ensure opens the streams and buckets (creating missing ones), retrying
// with backoff while NATS or JetStream is unavailable; a config that
// differs from the existing streams is an error (streams.EnsureRetry).
func (d *Driver) ensure(ctx context.Context) (*streams.Handles, error) {
	h, err := streams.EnsureRetry(ctx, d.js, d.opts.Streams, func(err error, wait time.Duration) {
		d.log.Warn().Err(err).Dur("retry_in", wait).Msg("ensure streams failed")
	})
	if err != nil {
		return nil, fmt.Errorf("driver: ensure streams: %w", err)
	}
	// scp_identity is the drivers' own bucket (identity.go): created or
	// bound here, with the same backoff.
	wait := 100 * time.Millisecond
	for {
		ectx, cancel := context.WithTimeout(ctx, 2*time.Second)
		d.ids.kv, err = streams.EnsureIdentity(ectx, d.js, d.opts.Streams)
		cancel()
		if err == nil {
			return h, nil
		}
		d.log.Warn().Err(err).Dur("retry_in", wait).Msg("ensure identity bucket failed")
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("driver: ensure identity bucket: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// Addr returns the controller listen address, or nil before Start.
func (d *Driver) Addr() net.Addr {
	if d.ln == nil {
		return nil
	}
	return d.ln.Addr()
}

// acceptLoop accepts controller connections until the listener closes.
func (d *Driver) acceptLoop(ln net.Listener) {
	backoff := 5 * time.Millisecond
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, do not spin.
			d.log.Warn().Err(err).Dur("retry_in", backoff).Msg("accept failed")
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		d.stats.connects.Add(1)
		s := newSession(d, conn)
		d.mu.Lock()
		if d.closed.Load() {
			d.mu.Unlock()
			conn.Close()
			d.stats.closed(scpgate.ReasonShutdown)
			continue
		}
		d.conns[s] = struct{}{}
		d.connWG.Go(s.serve) // counted before Close can wait
		d.mu.Unlock()
	}
}

// register makes s the owner of its serial on this driver, closing an
// older local session of the same serial (taken over). It refuses while
// draining, and a new serial past Options.MaxSessions (busy).
func (d *Driver) register(s *session) (scpbridge.RejectReason, bool) {
	d.mu.Lock()
	if d.draining.Load() || d.closed.Load() {
		d.mu.Unlock()
		return scpbridge.RejectDraining, false
	}
	old := d.sessions[s.serial]
	if old == nil && d.opts.MaxSessions > 0 && len(d.sessions) >= d.opts.MaxSessions {
		d.mu.Unlock()
		return scpbridge.RejectBusy, false
	}
	d.sessions[s.serial] = s
	d.mu.Unlock()
	if old != nil {
		d.stats.takeovers.Add(1)
		old.log.Warn().Str("by_session", s.id).Str("by_remote", s.remote).Msg("session taken over on this driver")
		old.close(scpgate.ReasonTakenOver, &scpbridge.Bye{Reason: scpbridge.ByeTakenOver, Text: "new session " + s.id})
	}
	return 0, true
}

// unregister forgets s; a newer session of the same serial stays.
func (d *Driver) unregister(s *session) {
	d.mu.Lock()
	if s.serial != "" && d.sessions[s.serial] == s {
		delete(d.sessions, s.serial)
	}
	delete(d.conns, s)
	d.mu.Unlock()
}

// lookup returns the established session of serial, if any.
func (d *Driver) lookup(serial string) *session {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sessions[serial]
}

// Close stops the driver at once: it stops accepting, closes every session
// with ReasonShutdown (without waiting for in-flight publishes; their
// controllers re-send them elsewhere), stops the micro service, and waits for its goroutines. It does not close the NATS
// connection. Prefer Drain for a planned stop.
func (d *Driver) Close() error {
	if !d.closed.CompareAndSwap(false, true) {
		return nil
	}
	d.draining.Store(true)
	if d.ln != nil {
		d.ln.Close()
	}
	d.mu.Lock()
	all := make([]*session, 0, len(d.conns))
	for s := range d.conns {
		all = append(all, s)
	}
	d.mu.Unlock()
	for _, s := range all {
		s.close(scpgate.ReasonShutdown, d.byeDraining("driver shutting down"))
	}
	d.connWG.Wait()
	if !d.nc.IsConnected() {
		d.hardStop() // no presence attempt can succeed: do not wait for them
	}
	d.bgStop() // presence work makes its current attempt, then gives up
	d.presWG.Wait()
	d.bgWG.Wait()
	d.pb.stop()
	var errs []error
	if d.svc != nil {
		if err := d.svc.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop micro service: %w", err))
		}
	}
	d.hardStop()
	d.log.Info().Msg("driver closed")
	return errors.Join(errs...)
}
