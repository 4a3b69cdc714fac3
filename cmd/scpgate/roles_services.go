//go:build !driveronly

package main

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/micro"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/ingest"
)

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
