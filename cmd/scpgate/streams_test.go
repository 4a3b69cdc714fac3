//go:build !driveronly

package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/streams"
)

// TestStreamsApply: a service refuses settings that differ from the
// existing streams; `scpgate streams apply` changes them, after which the
// service starts.
func TestStreamsApply(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	js := natstest.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := streams.Ensure(ctx, js, streams.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	env := StreamsEnv{Replicas: 1, EventsMaxAge: 48 * time.Hour, EventsMaxBytes: 1 << 30, CommandsMaxAge: 168 * time.Hour,
		ResultsMaxAge: 720 * time.Hour, DuplicateWindow: 2 * time.Hour, CommandQueueCap: 1000}
	if _, err := ensureStreams(ctx, js, env.config(), quietLog(t)); !errors.Is(err, streams.ErrConfigMismatch) ||
		!strings.Contains(err.Error(), "SCP_EVENTS max_age is 720h0m0s, config wants 48h0m0s") {
		t.Fatalf("service with other settings: got %v, want a max_age and max_bytes mismatch", err)
	}
	var out strings.Builder
	if err := applyStreams(ctx, nc, env.config(), &out); err != nil {
		t.Fatalf("streams apply: %v", err)
	}
	if !strings.Contains(out.String(), "SCP_EVENTS") || !strings.Contains(out.String(), "48h0m0s") || !strings.Contains(out.String(), "1.0 GiB") {
		t.Errorf("streams apply printed:\n%s", out.String())
	}
	if _, err := ensureStreams(ctx, js, env.config(), quietLog(t)); err != nil {
		t.Fatalf("service after streams apply: %v", err)
	}
}
