package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/streams"
)

// TestClusterRolesStartTogether starts three drivers, two ingest and two
// commander stream setups at the same instant on a fresh three-node
// cluster with R3 streams, as docker compose does: every one is ready
// within seconds, none fails.
func TestClusterRolesStartTogether(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster")
	}
	srvs, _ := startCluster(t)
	url := clusterURL(srvs)
	connect := func(name string) *nats.Conn { return clusterConnect(t, url, name) }
	cfg := streams.DefaultConfig()
	cfg.Replicas = 3
	cfg.EventsMaxAge = time.Hour
	cfg.DuplicateWindow = 10 * time.Minute

	const within = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	took := make([]time.Duration, 7)
	errs := make([]error, 7)
	for i := range 3 {
		id := fmt.Sprintf("driver-%d", i)
		d, err := driver.New(driver.Options{
			ID: id, Listen: "127.0.0.1:0", NATS: connect(id), Streams: cfg,
			Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel).With().Str("role", id).Logger(),
		})
		if err != nil {
			t.Fatalf("new %s: %v", id, err)
		}
		t.Cleanup(func() { _ = d.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.Start(ctx)
			took[i] = time.Since(start)
		}()
	}
	for i := 3; i < 7; i++ {
		role := "ingest"
		if i >= 5 {
			role = "commander"
		}
		js := natstest.JetStream(t, connect(fmt.Sprintf("%s-%d", role, i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = streams.EnsureRetry(ctx, js, cfg, func(err error, wait time.Duration) {
				t.Logf("%s-%d: ensure streams: %v (retry in %s)", role, i, err, wait)
			})
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for i := range took {
		if errs[i] != nil {
			t.Errorf("role %d: %v", i, errs[i])
		}
		t.Logf("role %d ready after %s", i, took[i].Round(time.Millisecond))
		if took[i] > within {
			t.Errorf("role %d ready after %s, want within %s", i, took[i].Round(time.Millisecond), within)
		}
	}

	// A service configured for one replica refuses to start against the
	// R3 streams instead of downgrading them.
	one := cfg
	one.Replicas = 1
	d, err := driver.New(driver.Options{ID: "r1", Listen: "127.0.0.1:0", NATS: connect("r1"), Streams: one, Log: testLogger(t)})
	if err != nil {
		t.Fatalf("new driver: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	err = d.Start(ctx)
	if !errors.Is(err, streams.ErrConfigMismatch) || !strings.Contains(err.Error(), "SCP_EVENTS replicas is 3, config wants 1") {
		t.Fatalf("driver with SCPGATE_REPLICAS=1 on R3 streams: got %v, want a replicas mismatch", err)
	}
	js := natstest.JetStream(t, connect("check"))
	info, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if r := info.CachedInfo().Config.Replicas; r != 3 {
		t.Fatalf("SCP_EVENTS has %d replicas after the refused start, want 3", r)
	}
}
