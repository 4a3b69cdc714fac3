//go:build !driveronly

package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"gopkg.in/yaml.v3"

	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/auth"
	"github.com/scpgate/scpgate/internal/metrics"
	"github.com/scpgate/scpgate/internal/natsconn"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/sqlite"
	"github.com/scpgate/scpgate/streams"
)

// seriesName matches the metric name of a line of the text exposition.
var seriesName = regexp.MustCompile(`(?m)^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]`)

// scrapeNames returns the names of every series h's /metrics exposes.
func scrapeNames(t *testing.T, h http.Handler, into map[string]bool) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", w.Code)
	}
	b, _ := io.ReadAll(w.Body)
	for _, m := range seriesName.FindAllStringSubmatch(string(b), -1) {
		into[m[1]] = true
	}
}

// exportedByRoles runs a driver (with a TLS certificate and a controller),
// ingest and the commander in-process, exercises them, and returns the
// names of every series their /metrics expose.
func exportedByRoles(t *testing.T) map[string]bool {
	log := quietLog(t)
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s, nats.MaxReconnects(-1))
	js := natstest.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := streams.Ensure(ctx, js, streams.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}

	// Driver, like runDriver: TLS certificate, allow list metrics aside.
	dir := t.TempDir()
	devFiles(t, dir)
	srvTLS, err := auth.LoadServerTLS(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"), "", tls.NoClientCert, log)
	if err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry()
	latency, err := metrics.NewPublishLatency(reg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := driver.New(driver.Options{ID: "obs", Listen: "127.0.0.1:0", NATS: nc, Log: log, PublishLatency: latency})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := registerDriverMetrics(reg, d, nc, nil); err != nil {
		t.Fatal(err)
	}
	if err := registerCertMetrics(reg, srvTLS, natsconn.Config{}); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	c := sim.NewController(sim.Config{Target: d.Addr().String(), Serial: "OBS1"})
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(runCtx) }()
	defer func() { stop(); <-done }()
	c.Generate(3)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if c.Stats().Acked != 3 {
			return io.ErrNoProgress
		}
		return nil
	})
	scrapeNames(t, metrics.Handler(reg), names)

	// Ingest.
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "obs.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ing, err := ingest.New(ingest.Options{JS: js, Store: store, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ih, err := ingestHandler(ing, nc, natsconn.Config{}, time.Minute, auth.NewAuthenticator(nil, log))
	if err != nil {
		t.Fatal(err)
	}
	ih.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/events?controller=OBS1", nil))
	scrapeNames(t, ih, names)

	// Commander, with its micro service and a submission.
	svc, err := commander.New(commander.Options{JS: js, NC: nc, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	msvc, err := svc.Register(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer msvc.Stop()
	ch, err := commanderHandler(svc, msvc, nc, natsconn.Config{}, auth.NewAuthenticator(nil, log), commanderConfig{}, log)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	ch.ServeHTTP(w, httptest.NewRequest("POST", "/v1/controllers/OBS1/commands", strings.NewReader(`{"type":"id_request"}`)))
	if w.Code != http.StatusAccepted {
		t.Fatalf("submission: %d %s", w.Code, w.Body)
	}
	scrapeNames(t, ch, names)
	return names
}

// TestDashboardAndAlertsNameExportedMetrics parses the Grafana dashboard
// and the operations alert rules and checks that every scpgate_ series
// they read is one the roles export, and that each rule is complete.
func TestDashboardAndAlertsNameExportedMetrics(t *testing.T) {
	exported := exportedByRoles(t)
	for _, want := range []string{"scpgate_build_info", "scpgate_tls_cert_expiry_timestamp_seconds", "scpgate_stream_leader",
		"scpgate_commander_submit_duration_seconds_bucket", "scpgate_commander_nats_requests_total", "scpgate_http_requests_total"} {
		if !exported[want] {
			t.Errorf("%s is not exported", want)
		}
	}
	series := regexp.MustCompile(`\bscpgate_[a-z0-9_]+`)
	check := func(where, expr string) {
		if strings.TrimSpace(expr) == "" {
			t.Errorf("%s: empty expression", where)
		}
		for _, m := range series.FindAllString(expr, -1) {
			if !exported[m] {
				t.Errorf("%s reads %s, which scpgate does not export", where, m)
			}
		}
	}

	// Dashboard: every panel's every target.
	b, err := os.ReadFile("../../deploy/grafana/scpgate.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Errorf("dashboard without uid or title")
	}
	exprs := 0
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			check("panel "+p.Title, tg.Expr)
			exprs++
		}
	}
	if exprs < 10 {
		t.Errorf("dashboard has %d queries, want the fleet, drivers, ingest, streams and commands", exprs)
	}

	// Alert rules.
	b, err = os.ReadFile("../../deploy/prometheus/alerts-operations.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("alerts-operations.yml: %v", err)
	}
	seen := map[string]bool{}
	var all strings.Builder
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || seen[r.Alert] {
				t.Errorf("group %s: rule without a name or named twice: %q", g.Name, r.Alert)
			}
			seen[r.Alert] = true
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, s)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("alert %s: no summary", r.Alert)
			}
			check("alert "+r.Alert, r.Expr)
			all.WriteString(r.Expr + "\n")
		}
	}
	// The four things the rules must watch.
	for _, want := range []string{"scpgate_ingest_lag_seconds", "scpgate_stream_leader", "scpgate_tls_cert_expiry_timestamp_seconds", `up{job="scpgate-driver"}`} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no alert rule reads %s", want)
		}
	}
}
