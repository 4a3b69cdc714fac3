//go:build !driveronly

package main

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/metrics"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/streams"
)

// TestEventsStreamFull fills a server whose store is 1 MiB with more
// events than it holds, SCP_EVENTS capped at 256 KiB: every event is
// acknowledged (the oldest are discarded, not the new ones refused), the
// stream stays within its cap, /metrics reports its fullness and
// `scpgate status` warns.
func TestEventsStreamFull(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes a few thousand events")
	}
	opts := natstest.Options(t)
	opts.JetStreamMaxStore = 1 << 20
	s := natstest.RunServerWith(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	cfg := streams.DefaultConfig()
	cfg.EventsMaxAge = time.Hour
	cfg.DuplicateWindow = time.Minute
	cfg.EventsMaxBytes = 256 << 10
	d, err := driver.New(driver.Options{ID: "full", Listen: "127.0.0.1:0", NATS: natstest.Connect(t, s, nats.MaxReconnects(-1)),
		Streams: cfg, Log: quietLog(t), PublishTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	c := sim.NewController(sim.Config{Target: d.Addr().String(), Serial: "FULL1", LogCapacity: 10000})
	wg.Go(func() { _ = c.Run(runCtx) })
	const events = 4000 // about 1.5 MiB stored: more than the server's store
	c.Generate(events)
	natstest.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		if st := c.Stats(); st.Acked != events {
			return fmt.Errorf("acked %d of %d (driver %+v)", st.Acked, events, d.Stats())
		}
		return nil
	})

	nc := natstest.Connect(t, s)
	js := natstest.JetStream(t, nc)
	st, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info := st.CachedInfo()
	if info.State.Bytes > uint64(cfg.EventsMaxBytes) || info.State.FirstSeq <= 1 || info.State.LastSeq < events {
		t.Errorf("SCP_EVENTS state %+v: want at most %d bytes, the oldest discarded, %d stored in all", info.State, cfg.EventsMaxBytes, events)
	}

	reg := metrics.NewRegistry()
	if err := metrics.RegisterStreams(reg, nc); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	metrics.Handler(reg).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(w.Body)
	if !strings.Contains(string(body), `scpgate_stream_max_bytes{stream="SCP_EVENTS"} 262144`) ||
		!strings.Contains(string(body), `scpgate_stream_fullness_ratio{stream="SCP_EVENTS"} 0.9`) {
		t.Errorf("metrics lack SCP_EVENTS fullness:\n%s", grepLines(string(body), "scpgate_stream_"))
	}

	// A consumer that read nothing: its backlog is about to be discarded.
	if _, err := js.CreateConsumer(ctx, streams.EventsStream, jetstream.ConsumerConfig{Durable: "slow", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	status, err := collectStatus(ctx, nc, statusOptions{wait: 200 * time.Millisecond, durable: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	_ = printStatus(&b, status, false)
	if !strings.Contains(b.String(), "warning: SCP_EVENTS is ") || !strings.Contains(b.String(), "warning: ingest consumer slow has ") {
		t.Errorf("status does not warn of a full SCP_EVENTS:\n%s", b.String())
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
