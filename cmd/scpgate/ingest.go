package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/auth"
	"github.com/scpgate/scpgate/internal/metrics"
	"github.com/scpgate/scpgate/internal/natsconn"
	"github.com/scpgate/scpgate/postgres"
	"github.com/scpgate/scpgate/sqlite"
	"github.com/scpgate/scpgate/streams"
)

// ingestConfig is the environment of `scpgate ingest` (prefix SCPGATE_).
type ingestConfig struct {
	HTTPListen string        `envconfig:"HTTP_LISTEN" default:":8080" desc:"address of the query API, /healthz and /readyz"`
	DB         string        `envconfig:"DB" default:"sqlite:scpgate-data/scpgate.db" desc:"store: sqlite:PATH or a postgres:// URL"`
	Durable    string        `envconfig:"INGEST_DURABLE" default:"scpgate-ingest" desc:"name of the consumer shared by all ingest instances"`
	Batch      int           `envconfig:"INGEST_BATCH" default:"2000" desc:"most events written in one transaction"`
	Writers    int           `envconfig:"INGEST_WRITERS" default:"2" desc:"batches of one stream written at the same time (PostgreSQL uses a connection each; SQLite has one writer)"`
	MaxLag     time.Duration `envconfig:"INGEST_MAX_LAG" default:"5m" desc:"/readyz fails when ingest is further behind than this"`
	State      bool          `envconfig:"INGEST_STATE_KV" default:"true" desc:"also keep current state in the scp_state bucket"`
	LogLevel   string        `envconfig:"LOG_LEVEL" default:"info" desc:"log level: debug, info, warn, error"`
	StreamsEnv
	APIAuthEnv
}

func init() {
	register(&command{
		name:    "ingest",
		summary: "store the event stream as SQL history and current state, and serve queries",
		usage: `scpgate ingest [flags]
scpgate ingest --rebuild [--since DURATION] [--db DSN]

Consumes SCP_EVENTS and SCP_RESULTS with a durable consumer shared by every
ingest instance, writes each batch to the store in one transaction and
acknowledges only after commit. Serves GET /v1/events,
/v1/controllers/{serial}/state, /v1/controllers/{serial}/events and
/v1/results/{id} (scope events:read when SCPGATE_API_TOKENS or
SCPGATE_API_TOKENS_FILE is set), and /healthz, /readyz and /metrics
(Prometheus) without a token. The store is SQLite by default (sqlite:PATH)
or PostgreSQL (postgres://...); migrations are applied at start.

--rebuild re-reads the streams into the store (for example a new database
after a loss), with a progress bar, and exits.`,
		run: runIngest,
	})
}

func runIngest(ctx context.Context, args []string) error {
	var cfg ingestConfig
	var natsCfg natsconn.Config
	fs := newFlagSet("ingest", envSpec{"SCPGATE", &cfg}, envSpec{"", &natsCfg})
	db := fs.String("db", "", "store DSN (overrides SCPGATE_DB)")
	httpListen := fs.String("http", "", "HTTP listen address (overrides SCPGATE_HTTP_LISTEN)")
	rebuild := fs.Bool("rebuild", false, "re-read the streams into the store, then exit")
	since := fs.Duration("since", 0, "with --rebuild: only events stored within this long ago (0: all)")
	if err := parseService(fs, args, &cfg, &natsCfg); err != nil {
		return err
	}
	if *since != 0 && !*rebuild {
		return usageErrorf("--since only goes with --rebuild")
	}
	if *since < 0 {
		return usageErrorf("--since must be positive")
	}
	if *db != "" {
		cfg.DB = *db
	}
	if *httpListen != "" {
		cfg.HTTPListen = *httpListen
	}
	log := newLogger(cfg.LogLevel, false).With().Str("role", "ingest").Logger()

	store, err := openStore(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer store.Close()
	nc, err := natsconn.Connect(natsCfg, "scpgate-ingest", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstreamOf(nc)
	if err != nil {
		return err
	}
	h, err := streams.Ensure(ctx, js, cfg.StreamsEnv.config())
	if err != nil {
		return fmt.Errorf("ensure streams: %w", err)
	}
	if *rebuild {
		bar := newProgress("rebuild")
		defer bar.Finish()
		start := time.Now()
		if err := ingest.Rebuild(ctx, js, store, *since, bar.Update); err != nil {
			return err
		}
		log.Info().Dur("took", time.Since(start)).Msg("rebuild finished")
		return nil
	}
	opts := ingest.Options{JS: js, Store: store, Durable: cfg.Durable, Batch: cfg.Batch, Writers: cfg.Writers, Log: log}
	if cfg.State {
		opts.StateKV = h.State
	}
	svc, err := ingest.New(opts)
	if err != nil {
		return err
	}
	authn, err := cfg.authenticator(ctx, log)
	if err != nil {
		return err
	}
	api, err := ingestHTTP(svc, nc, cfg.MaxLag, authn)
	if err != nil {
		return err
	}
	_, done, err := serveHTTP(ctx, cfg.HTTPListen, api, 30*time.Second, log)
	if err != nil {
		return err
	}
	runErr := svc.Run(ctx)
	<-done
	if ctx.Err() != nil {
		return nil
	}
	return runErr
}

// openStore opens the store named by dsn: "sqlite:PATH" (or a bare path)
// or a postgres:// / postgresql:// URL.
func openStore(ctx context.Context, dsn string) (scpgate.Store, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return postgres.Open(ctx, dsn)
	case dsn == "":
		return nil, usageErrorf("no store: set SCPGATE_DB or --db")
	}
	path := strings.TrimPrefix(dsn, "sqlite:")
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create store directory: %w", err)
		}
	}
	return sqlite.Open(path)
}

// ingestReady answers /readyz: 200 while NATS is connected and the consumer
// is less than maxLag behind, 503 otherwise; the body carries the lag.
func ingestReady(nc *nats.Conn, svc *ingest.Service, maxLag time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		lag := svc.Lag()
		body := map[string]any{"lag": lag, "nats": nc.Status().String()}
		code := http.StatusOK
		switch {
		case !nc.IsConnected():
			code, body["reason"] = http.StatusServiceUnavailable, "nats disconnected"
		case time.Duration(lag.SecondsBehind*float64(time.Second)) > maxLag:
			code, body["reason"] = http.StatusServiceUnavailable, "lagging"
		}
		writeJSON(w, code, body)
	})
}

// writeJSON writes v as a JSON response with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// ingestHTTP returns the HTTP handler of ingest: the query API behind
// authn, /healthz, /readyz and /metrics.
func ingestHTTP(svc *ingest.Service, nc *nats.Conn, maxLag time.Duration, authn *auth.Authenticator) (http.Handler, error) {
	reg := metrics.NewRegistry()
	for _, err := range []error{metrics.RegisterIngest(reg, svc), metrics.RegisterNATS(reg, nc)} {
		if err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	hm, err := metrics.NewHTTP(reg, "ingest")
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", svc.Handler())
	mux.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) }))
	mux.Handle("GET /readyz", ingestReady(nc, svc, maxLag))
	mux.Handle("GET /metrics", metrics.Handler(reg))
	return hm.Wrap(authn.Protect(mux, auth.IngestRules()...)), nil
}
