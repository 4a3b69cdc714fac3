//go:build !driveronly

package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/auth"
	"github.com/scpgate/scpgate/internal/envcheck"
	"github.com/scpgate/scpgate/internal/httpapi"
	"github.com/scpgate/scpgate/internal/metrics"
	"github.com/scpgate/scpgate/internal/natsconn"
	"github.com/scpgate/scpgate/postgres"
	"github.com/scpgate/scpgate/sqlite"
)

// ingestConfig is the environment of `scpgate ingest` (prefix SCPGATE_).
type ingestConfig struct {
	HTTPListen string        `envconfig:"HTTP_LISTEN" default:":8080" desc:"address of the query API, /healthz and /readyz"`
	DB         string        `envconfig:"DB" default:"sqlite:scpgate-data/scpgate.db" desc:"store: sqlite:PATH, a file path ending in .db, a postgres:// URL or a libpq keyword string"`
	Durable    string        `envconfig:"INGEST_DURABLE" default:"scpgate-ingest" desc:"name of the consumer shared by all ingest instances"`
	Batch      int           `envconfig:"INGEST_BATCH" default:"10000" min:"1" max:"50000" desc:"most events written in one transaction"`
	Writers    int           `envconfig:"INGEST_WRITERS" default:"2" min:"1" max:"16" desc:"batches of one stream written at the same time, each for its own share of the controllers (PostgreSQL: a connection each; SQLite always writes one)"`
	MaxLag     time.Duration `envconfig:"INGEST_MAX_LAG" default:"5m" min:"1s" desc:"/readyz fails when ingest is further behind than this"`
	State      bool          `envconfig:"INGEST_STATE_KV" default:"true" desc:"also keep current state in the scp_state bucket"`
	LogLevel   string        `envconfig:"LOG_LEVEL" default:"info" oneof:"trace,debug,info,warn,error" desc:"log level: trace, debug, info, warn, error"`
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
SCPGATE_API_TOKENS_FILE is set), and /healthz, /readyz, /metrics
(Prometheus) and /openapi.json (the OpenAPI document; docs/api.md) without
a token. The store is SQLite by default (sqlite:PATH)
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
	// A store scpgate cannot open is refused before anything connects.
	if _, _, err := envcheck.ParseStore(cfg.DB); err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel, false).With().Str("role", "ingest").Logger()
	warnUnknownEnv(log)

	store, err := openStore(ctx, cfg.DB, log)
	if err != nil {
		return err
	}
	defer store.Close()
	var front httpapi.Starting
	done := make(<-chan error)
	if !*rebuild {
		// The HTTP address is opened before NATS is reached: a port in
		// use fails at once, and /readyz says "NATS not connected"
		// meanwhile.
		ln, err := listen("HTTP", cfg.HTTPListen)
		if err != nil {
			return err
		}
		done = serveOn(ctx, ln, &front, 30*time.Second, log)
	}
	nc, err := natsconn.Connect(natsCfg, "scpgate-ingest", log, nats.RetryOnFailedConnect(true))
	if err != nil {
		return err
	}
	defer nc.Close()
	front.SetConn(nc)
	js, err := jetstreamOf(nc)
	if err != nil {
		return err
	}
	h, err := ensureStreams(ctx, js, cfg.StreamsEnv.config(), log)
	if err != nil {
		if ctx.Err() != nil && !*rebuild {
			<-done
			return nil
		}
		return err
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
	authn, err := cfg.authenticator(ctx, log)
	if err != nil {
		return err
	}
	role, err := openIngest(ctx, cfg, roleEnv{nc: nc, js: js, streams: h, log: log}, store)
	if err != nil {
		return err
	}
	defer role.Close()
	api, err := ingestHandler(role.svc, nc, natsCfg, cfg.MaxLag, authn)
	if err != nil {
		return err
	}
	front.Set(api)
	select {
	case <-ctx.Done():
	case <-role.Done():
	}
	<-done
	return role.Err()
}

// openStore opens the store named by dsn (see envcheck.ParseStore:
// "sqlite:PATH", a plain path ending in .db, a postgres:// URL or a libpq
// keyword string) and logs which one it opened, without the password.
func openStore(ctx context.Context, dsn string, log zerolog.Logger) (scpgate.Store, error) {
	kind, target, err := envcheck.ParseStore(dsn)
	if err != nil {
		return nil, err
	}
	if kind == envcheck.StorePostgres {
		st, err := postgres.Open(ctx, target)
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", envcheck.RedactDSN(target), err)
		}
		log.Info().Str("store", kind).Str("dsn", envcheck.RedactDSN(target)).Msg("store opened")
		return st, nil
	}
	if dir := filepath.Dir(target); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create store directory: %w", err)
		}
	}
	st, err := sqlite.Open(target)
	if err != nil {
		return nil, err
	}
	abs, _ := filepath.Abs(target)
	log.Info().Str("store", kind).Str("path", abs).Msg("store opened")
	return st, nil
}

// ingestHTTP returns the HTTP handler of ingest: the query API behind
// authn, /healthz, /readyz and /metrics.
func ingestHTTP(svc *ingest.Service, nc *nats.Conn, maxLag time.Duration, authn *auth.Authenticator) (http.Handler, error) {
	return ingestHandler(svc, nc, natsconn.Config{}, maxLag, authn)
}

// ingestHandler is ingestHTTP with the expiry of the NATS client
// certificate of natsCfg among the metrics.
func ingestHandler(svc *ingest.Service, nc *nats.Conn, natsCfg natsconn.Config, maxLag time.Duration, authn *auth.Authenticator) (http.Handler, error) {
	reg := metrics.NewRegistry()
	if err := registerIngestMetrics(reg, svc, nc); err != nil {
		return nil, err
	}
	if err := metrics.RegisterNATS(reg, nc); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if err := registerCertMetrics(reg, nil, natsCfg); err != nil {
		return nil, err
	}
	hm, err := metrics.NewHTTP(reg, "ingest")
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", svc.Handler())
	mux.Handle("GET /openapi.json", svc.Handler())
	httpapi.HandleHealth(mux, svc.Readiness(nc, maxLag))
	mux.Handle("GET /metrics", metrics.Handler(reg))
	return hm.Wrap(authn.Protect(mux, auth.IngestRules()...)), nil
}

// registerIngestMetrics adds the collectors of ingest and of the streams
// it reads to reg.
func registerIngestMetrics(reg *prometheus.Registry, svc *ingest.Service, nc *nats.Conn) error {
	for _, err := range []error{metrics.RegisterIngest(reg, svc), metrics.RegisterIngestHealth(reg, svc),
		metrics.RegisterStreams(reg, nc)} {
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	return nil
}
