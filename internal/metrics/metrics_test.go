package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/metrics"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/sqlite"
	"github.com/scpgate/scpgate/streams"
)

// scrape returns the text exposition of h's /metrics.
func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", w.Code)
	}
	b, _ := io.ReadAll(w.Body)
	return string(b)
}

// value returns the value of the sample named series (name and labels as
// exposed, e.g. `scpgate_driver_rejects_total{reason="not_allowed"}`).
func value(text, series string) (float64, bool) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

// TestMetrics runs a driver with an allow-list-like Admit, a controller,
// a refused controller and ingest, and checks /metrics exposes the named
// series with the values of the services' Stats.
func TestMetrics(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s, nats.MaxReconnects(-1))
	js := natstest.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	reg := metrics.NewRegistry()
	latency, err := metrics.NewPublishLatency(reg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := driver.New(driver.Options{ID: "m", Listen: "127.0.0.1:0", NATS: nc, Log: log, PublishLatency: latency,
		Admit: func(serial string) bool { return serial != "REFUSED" }, ReconnectAfterMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	h, err := streams.Ensure(ctx, js, streams.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ing, err := ingest.New(ingest.Options{JS: js, Store: store, StateKV: h.State, Log: log, LagInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{metrics.RegisterDriver(reg, d), metrics.RegisterIngest(reg, ing), metrics.RegisterNATS(reg, nc)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	hm, err := metrics.NewHTTP(reg, "test")
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	runCtx, stop := context.WithCancel(ctx)
	defer func() { stop(); wg.Wait() }()
	wg.Go(func() { _ = ing.Run(runCtx) })
	ok := sim.NewController(sim.Config{Target: d.Addr().String(), Serial: "OK1", Backoff: sim.BackoffConfig{Min: 20 * time.Millisecond, Max: 100 * time.Millisecond}})
	refused := sim.NewController(sim.Config{Target: d.Addr().String(), Serial: "REFUSED", Backoff: sim.BackoffConfig{Min: 20 * time.Millisecond, Max: 100 * time.Millisecond}})
	wg.Go(func() { _ = ok.Run(runCtx) })
	wg.Go(func() { _ = refused.Run(runCtx) })
	ok.Generate(30)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(reg))
	mux.HandleFunc("GET /v1/things/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	handler := hm.Wrap(mux)
	for range 2 {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, httptest.NewRequest("GET", "/v1/things/7", nil))
	}

	var text string
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		text = scrape(t, handler)
		exact := map[string]float64{
			`scpgate_driver_sessions`:                         1,
			`scpgate_ingest_lag_pending{stream="SCP_EVENTS"}`: 0,
			`scpgate_nats_connected`:                          1,
		}
		for series, want := range exact {
			if v, found := value(text, series); !found || v != want {
				return fmt.Errorf("%s = %v (found %v), want %v", series, v, found, want)
			}
		}
		atLeast := map[string]float64{
			`scpgate_driver_events_received_total`:                                               30,
			`scpgate_driver_events_acked_total`:                                                  30,
			`scpgate_driver_publish_latency_seconds_count`:                                       30,
			`scpgate_driver_rejects_total{reason="not_allowed"}`:                                 1,
			`scpgate_driver_closes_total{reason="rejected"}`:                                     1,
			`scpgate_ingest_events_written_total`:                                                31, // and the presence event
			`scpgate_http_requests_total{code="418",route="GET /v1/things/{id}",service="test"}`: 2,
		}
		for series, min := range atLeast {
			if v, found := value(text, series); !found || v < min {
				return fmt.Errorf("%s = %v (found %v), want at least %v", series, v, found, min)
			}
		}
		return nil
	})
	for _, name := range []string{
		"scpgate_driver_connects_total", "scpgate_driver_events_published_total", "scpgate_driver_publish_errors_total",
		`scpgate_driver_commands_total{status="ok"}`, `scpgate_driver_rejects_total{reason="certificate_mismatch"}`,
		`scpgate_ingest_lag_seconds{stream="SCP_EVENTS"}`, "scpgate_ingest_results_written_total",
		"scpgate_http_request_duration_seconds_count", "go_goroutines", "process_open_fds",
	} {
		if !strings.Contains(text, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}
