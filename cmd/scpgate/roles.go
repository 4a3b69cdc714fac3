package main

import (
	"context"
	"fmt"
	"net"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/driver"
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
