package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/internal/natsconn"
	"github.com/scpgate/scpgate/streams"
)

// StreamsEnv is the part of every service's environment that sizes the
// streams and buckets (SCPGATE_REPLICAS, ...). Every service creates the
// ones that are missing at start and refuses to start when an existing one
// differs; only `scpgate streams apply` changes them. docker-compose sets
// them once for all.
type StreamsEnv struct {
	Replicas        int           `envconfig:"REPLICAS" default:"1" min:"1" max:"5" desc:"replicas of every stream and bucket (3 in a cluster)"`
	EventsMaxAge    time.Duration `envconfig:"EVENTS_MAX_AGE" default:"720h" min:"1m" desc:"how long SCP_EVENTS keeps events"`
	CommandsMaxAge  time.Duration `envconfig:"COMMANDS_MAX_AGE" default:"168h" min:"1m" desc:"how long a command may wait for an offline controller"`
	EventsMaxBytes  int64         `envconfig:"EVENTS_MAX_BYTES" default:"12884901888" min:"1048576" desc:"size cap of SCP_EVENTS in bytes (12 GiB): past it the oldest events are discarded; keep it well below the servers' max_file_store"`
	ResultsMaxAge   time.Duration `envconfig:"RESULTS_MAX_AGE" default:"720h" min:"1m" desc:"how long SCP_RESULTS keeps command results"`
	DuplicateWindow time.Duration `envconfig:"DUPLICATE_WINDOW" default:"2h" min:"1s" desc:"window in which a re-sent event or command is stored once (later re-sends are stored again: dedupe on id)"`
	CommandQueueCap int64         `envconfig:"COMMAND_QUEUE_CAP" default:"1000" min:"1" desc:"commands that may wait for one controller"`
	Memory          bool          `envconfig:"MEMORY_STORAGE" default:"false" desc:"keep streams in memory (tests and benchmarks only)"`
}

// ensureStreams opens the streams and buckets for a service (creating
// missing ones), retrying while NATS or JetStream is not ready.
func ensureStreams(ctx context.Context, js jetstream.JetStream, cfg streams.Config, log zerolog.Logger) (*streams.Handles, error) {
	h, err := streams.EnsureRetry(ctx, js, cfg, func(err error, wait time.Duration) {
		log.Warn().Err(err).Dur("retry_in", wait).Msg("ensure streams failed")
	})
	if err != nil {
		return nil, fmt.Errorf("ensure streams: %w", err)
	}
	return h, nil
}

func (c StreamsEnv) config() streams.Config {
	cfg := streams.DefaultConfig()
	cfg.Replicas = c.Replicas
	cfg.EventsMaxAge = c.EventsMaxAge
	cfg.EventsMaxBytes = c.EventsMaxBytes
	cfg.CommandsMaxAge = c.CommandsMaxAge
	cfg.ResultsMaxAge = c.ResultsMaxAge
	cfg.DuplicateWindow = c.DuplicateWindow
	cfg.CommandQueueCap = c.CommandQueueCap
	if c.Memory {
		cfg.Storage = jetstream.MemoryStorage
	}
	return cfg
}

// parseService parses a service's command line with fs, then reads its
// environment: cfg with prefix SCPGATE_ and the NATS variables into
// natsCfg. Flags that override the environment are applied by the caller
// afterwards.
func parseService(fs *flag.FlagSet, args []string, cfg any, natsCfg *natsconn.Config) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	if err := loadEnv("SCPGATE", cfg); err != nil {
		return err
	}
	return loadEnv("", natsCfg)
}

// serveHTTP serves h on addr until ctx ends, then shuts down gracefully.
// writeTimeout must exceed the longest response a handler may hold (a
// command submission that waits for its result).
func serveHTTP(ctx context.Context, addr string, h http.Handler, writeTimeout time.Duration, log zerolog.Logger) (net.Addr, <-chan error, error) {
	ln, err := listen("HTTP", addr)
	if err != nil {
		return nil, nil, err
	}
	done := serveOn(ctx, ln, h, writeTimeout, log)
	return ln.Addr(), done, nil
}

// listen opens the TCP address addr for what (HTTP, controllers); the
// error names the address and what uses it.
func listen(what, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listen on %s: %w", what, addr, err)
	}
	return ln, nil
}

// serveOn serves h on ln like serveHTTP.
func serveOn(ctx context.Context, ln net.Listener, h http.Handler, writeTimeout time.Duration, log zerolog.Logger) <-chan error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          nil,
	}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info().Str("addr", ln.Addr().String()).Msg("http listening")
	return done
}
