package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/streams"
)

// startingHandler is the HTTP handler of a service that listens before it
// has reached NATS: /healthz answers 200, /readyz 503 with the reason
// ("NATS not connected", or "starting" once connected), anything else 503.
// Set installs the service's real handler.
type startingHandler struct {
	nc   atomic.Pointer[nats.Conn]
	real atomic.Pointer[http.Handler]
}

// SetConn gives the handler the connection whose state /readyz reports.
func (s *startingHandler) SetConn(nc *nats.Conn) { s.nc.Store(nc) }

// Set makes h answer every request from now on.
func (s *startingHandler) Set(h http.Handler) { s.real.Store(&h) }

// ServeHTTP implements http.Handler.
func (s *startingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := s.real.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	reason := "starting"
	if nc := s.nc.Load(); nc == nil || !nc.IsConnected() {
		reason = natsNotConnected
	}
	if r.URL.Path == "/healthz" {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": reason})
}

// natsNotConnected is the /readyz reason of every role while its NATS
// connection is down.
const natsNotConnected = "NATS not connected"

// ensureStreams creates or checks the streams and buckets, retrying while
// NATS or JetStream cannot be reached, until ctx ends. A configuration
// that cannot work fails at once.
func ensureStreams(ctx context.Context, js jetstream.JetStream, cfg streams.Config, log zerolog.Logger) (*streams.Handles, error) {
	wait := 250 * time.Millisecond
	for {
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		h, err := streams.Ensure(ectx, js, cfg)
		cancel()
		if err == nil {
			return h, nil
		}
		if errors.Is(err, streams.ErrInvalidConfig) || ctx.Err() != nil {
			return nil, fmt.Errorf("ensure streams: %w", err)
		}
		log.Warn().Err(err).Dur("retry_in", wait).Msg("ensure streams failed; retrying")
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ensure streams: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}
