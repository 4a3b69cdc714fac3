package main

import (
	"context"
	"fmt"
	"net"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/auth"
	"github.com/scpgate/scpgate/internal/metrics"
	"github.com/scpgate/scpgate/streams"
)

// roleEnv is what every role is opened on: its NATS connection, JetStream,
// the streams and buckets already ensured, and its logger. The role
// commands build it from their own connection; `scpgate dev` from the
// embedded server.
type roleEnv struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	streams *streams.Handles
	log     zerolog.Logger
}

// commanderRole is an open commander: the command service, its NATS micro
// service and the sweeper of expired commands, running until Close.
type commanderRole struct {
	svc     *commander.Service
	micro   micro.Service
	sweeper *commander.Sweeper
	stop    context.CancelFunc
	swept   chan struct{}
}

// openCommander opens the commander of cfg on env: it checks the sweeper
// against the streams, starts it and registers the micro service.
func openCommander(ctx context.Context, cfg commanderConfig, env roleEnv) (*commanderRole, error) {
	svc, err := commander.New(commander.Options{JS: env.js, NC: env.nc, Log: env.log, DefaultTTL: cfg.DefaultTTL, MaxTTL: cfg.MaxTTL, MaxWait: cfg.MaxWait})
	if err != nil {
		return nil, err
	}
	sweeper, err := commander.NewSweeper(commander.SweeperOptions{JS: env.js, Log: env.log, Interval: cfg.SweepEvery, Grace: cfg.SweepGrace, MaxTTL: cfg.MaxTTL})
	if err == nil {
		err = sweeper.Check(ctx)
	}
	if err != nil {
		_ = svc.Close()
		return nil, err
	}
	r := &commanderRole{svc: svc, sweeper: sweeper, swept: make(chan struct{})}
	var sweepCtx context.Context
	sweepCtx, r.stop = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(r.swept)
		_ = sweeper.Run(sweepCtx) // checked above; sweep errors are logged
	}()
	if r.micro, err = svc.Register(env.nc); err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("register micro service: %w", err)
	}
	return r, nil
}

// Close stops the sweeper and the command service.
func (r *commanderRole) Close() error {
	r.stop()
	<-r.swept
	return r.svc.Close()
}

// ingestRole is an open ingest: the service consuming the streams into
// its store, running until Close or until it fails (Done).
type ingestRole struct {
	svc      *ingest.Service
	stop     context.CancelFunc
	finished chan struct{}
	err      error // set before finished is closed
}

// openIngest opens ingest of cfg on env over store (which stays the
// caller's to close) and starts consuming.
func openIngest(ctx context.Context, cfg ingestConfig, env roleEnv, store scpgate.Store) (*ingestRole, error) {
	opts := ingest.Options{JS: env.js, Store: store, Durable: cfg.Durable, Batch: cfg.Batch, Writers: cfg.Writers, Log: env.log}
	if cfg.State {
		opts.StateKV = env.streams.State
	}
	svc, err := ingest.New(opts)
	if err != nil {
		return nil, err
	}
	r := &ingestRole{svc: svc, finished: make(chan struct{})}
	var runCtx context.Context
	runCtx, r.stop = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(r.finished)
		if err := svc.Run(runCtx); runCtx.Err() == nil {
			r.err = err
		}
	}()
	return r, nil
}

// Done is closed when consuming stops: on Close, or on its own with Err.
func (r *ingestRole) Done() <-chan struct{} { return r.finished }

// Err is the error consuming stopped with on its own (nil before Done).
func (r *ingestRole) Err() error {
	select {
	case <-r.finished:
		return r.err
	default:
		return nil
	}
}

// Close stops consuming and returns the error it had stopped with on its
// own, if any.
func (r *ingestRole) Close() error {
	r.stop()
	<-r.finished
	return r.err
}

// driverRole is an open driver: listening for controllers, publishing to
// NATS, until Drain and Close.
type driverRole struct {
	d      *driver.Driver
	allow  *auth.AllowList
	srvTLS *auth.ServerTLS
	// stopWatch ends the reloads of the TLS files, allow list and secrets.
	stopWatch context.CancelFunc
}

// openDriver opens the driver of cfg on env, accepting controllers on ln:
// its TLS, allow list and secrets from cfg (reloaded until Close),
// publish latency counted in reg (its other collectors:
// registerDriverMetrics). tune, when given, changes the options
// last (dev sets its throw-away TLS). Start starts it.
func openDriver(ctx context.Context, cfg driverConfig, env roleEnv, ln net.Listener, reg *prometheus.Registry, tune func(*driver.Options)) (*driverRole, error) {
	opts := cfg.options(env.nc)
	opts.Log, opts.Listener = env.log, ln
	r := &driverRole{}
	var watchCtx context.Context
	watchCtx, r.stopWatch = context.WithCancel(context.WithoutCancel(ctx))
	d, err := r.build(watchCtx, cfg, opts, reg, tune)
	if err != nil {
		r.stopWatch()
		return nil, err
	}
	r.d = d
	return r, nil
}

// Start ensures what the driver needs on NATS and accepts controllers
// (see driver.Driver.Start); its HTTP handler answers before.
func (r *driverRole) Start(ctx context.Context) error { return r.d.Start(ctx) }

// build makes the driver of opts with the controller security of cfg.
func (r *driverRole) build(watchCtx context.Context, cfg driverConfig, opts driver.Options, reg *prometheus.Registry, tune func(*driver.Options)) (*driver.Driver, error) {
	srvTLS, requireSerial, err := cfg.serverTLS(opts.Log)
	if err != nil {
		return nil, err
	}
	if opts.PublishLatency, err = metrics.NewPublishLatency(reg); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if srvTLS != nil {
		r.srvTLS = srvTLS
		opts.TLS, opts.RequireCertSerial = srvTLS.Config(), requireSerial
		go srvTLS.Watch(watchCtx, 0)
	}
	if r.allow, err = cfg.allowList(watchCtx, opts.Log); err != nil {
		return nil, err
	}
	if r.allow != nil {
		opts.Admit = r.allow.Allowed
	}
	secrets, err := cfg.secrets(watchCtx, opts.Log)
	if err != nil {
		return nil, err
	}
	if secrets != nil {
		opts.CheckSecret = secrets.Check
	}
	if tune != nil {
		tune(&opts)
	}
	return driver.New(opts)
}

// Drain sends the controllers away gracefully (see driver.Driver.Drain).
func (r *driverRole) Drain(ctx context.Context) error { return r.d.Drain(ctx) }

// Close closes the driver and stops watching its files.
func (r *driverRole) Close() error {
	defer r.stopWatch()
	if r.d == nil {
		return nil
	}
	return r.d.Close()
}
