//go:build !driveronly

package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/console"
	"github.com/scpgate/scpgate/internal/auth"
	"github.com/scpgate/scpgate/internal/httpapi"
	"github.com/scpgate/scpgate/internal/metrics"
	"github.com/scpgate/scpgate/internal/natsconn"
)

// commanderConfig is the environment of `scpgate commander` (prefix SCPGATE_).
type commanderConfig struct {
	HTTPListen       string        `envconfig:"HTTP_LISTEN" default:":8080" desc:"address of the command HTTP API"`
	DefaultTTL       time.Duration `envconfig:"COMMAND_DEFAULT_TTL" default:"1h" min:"1s" desc:"TTL of a command that names none"`
	MaxTTL           time.Duration `envconfig:"COMMAND_MAX_TTL" default:"144h" min:"1s" desc:"longest TTL accepted; plus 24h it must fit in COMMANDS_MAX_AGE (checked at start)"`
	SweepEvery       time.Duration `envconfig:"COMMAND_SWEEP_INTERVAL" default:"30s" min:"100ms" desc:"how often expired commands of controllers that do not come back are ended (expired result)"`
	SweepGrace       time.Duration `envconfig:"COMMAND_SWEEP_GRACE" default:"2m" min:"0s" desc:"how long past its expiry a command is left to its driver before the sweeper ends it"`
	MaxWait          time.Duration `envconfig:"COMMAND_MAX_WAIT" default:"60s" min:"0s" max:"10m" desc:"longest ?wait= a submission may ask for"`
	LogLevel         string        `envconfig:"LOG_LEVEL" default:"info" oneof:"trace,debug,info,warn,error" desc:"log level: trace, debug, info, warn, error"`
	Console          bool          `envconfig:"CONSOLE" default:"true" desc:"serve the web console at /console/"`
	ConsoleIngestURL string        `envconfig:"CONSOLE_INGEST_URL" desc:"ingest HTTP API (http://ingest:8081) the console's controller page reads state and events from, through the commander"`
	StreamsEnv
	APIAuthEnv
}

func init() {
	register(&command{
		name:    "commander",
		summary: "run the command API (HTTP and NATS micro) against NATS",
		usage: `scpgate commander [flags]

Takes commands from the vendor application over HTTP (POST
/v1/controllers/{serial}/commands, GET /v1/commands/{id}, GET
/v1/controllers[/{serial}]) and as the NATS micro service
"scpgate-commander", stores them durably per controller and reports their
results. Stateless: run as many as the load needs. Configured from the
environment (below); flags override it.

With SCPGATE_API_TOKENS (or SCPGATE_API_TOKENS_FILE) every HTTP request
needs "Authorization: Bearer <token>": submitting takes scope
commands:write, reading commands and controllers commands:read (admin
grants all). /healthz, /readyz, /metrics (Prometheus) and /openapi.json
(the OpenAPI document of the API; docs/api.md) stay open.

The web console is served at /console/ (unless SCPGATE_CONSOLE=false),
with the same tokens; its controller page reads state and events from
ingest through SCPGATE_CONSOLE_INGEST_URL. Its fleet view asks NATS for
the drivers, the state bucket and the ingest consumer's lag (permissions
of the commander user in deploy/nats/auth.conf).`,
		run: runCommander,
	})
}

func runCommander(ctx context.Context, args []string) error {
	var cfg commanderConfig
	var natsCfg natsconn.Config
	fs := newFlagSet("commander", envSpec{"SCPGATE", &cfg}, envSpec{"", &natsCfg})
	httpListen := fs.String("http", "", "HTTP listen address (overrides SCPGATE_HTTP_LISTEN)")
	if err := parseService(fs, args, &cfg, &natsCfg); err != nil {
		return err
	}
	if *httpListen != "" {
		cfg.HTTPListen = *httpListen
	}
	log := newLogger(cfg.LogLevel, false).With().Str("role", "commander").Logger()
	warnUnknownEnv(log)

	// The HTTP address is opened first: a port in use fails at once, and
	// /readyz says "NATS not connected" while NATS cannot be reached.
	ln, err := listen("HTTP", cfg.HTTPListen)
	if err != nil {
		return err
	}
	var front httpapi.Starting
	done := serveOn(ctx, ln, &front, cfg.MaxWait+10*time.Second, log)
	nc, err := natsconn.Connect(natsCfg, "scpgate-commander", log, nats.RetryOnFailedConnect(true))
	if err != nil {
		return err
	}
	defer nc.Close()
	front.SetConn(nc)
	js, err := jetstreamOf(nc)
	if err != nil {
		return err
	}
	if _, err := ensureStreams(ctx, js, cfg.StreamsEnv.config(), log); err != nil {
		if ctx.Err() != nil {
			<-done
			return nil
		}
		return err
	}
	role, err := openCommander(ctx, cfg, roleEnv{nc: nc, js: js, log: log})
	if err != nil {
		return err
	}
	defer role.Close()
	authn, err := cfg.authenticator(ctx, log)
	if err != nil {
		return err
	}
	h, err := commanderHandler(role.svc, role.micro, nc, natsCfg, authn, cfg, log, role.sweeper)
	if err != nil {
		return err
	}
	front.Set(h)
	select {
	case <-ctx.Done():
		<-done
		return nil
	case err := <-done:
		return err
	}
}

// commanderHTTP returns the HTTP handler of the commander: the command API
// behind authn, /healthz, /readyz (NATS connected), /metrics (with the
// sweeper's, when given) and, unless cfg.Console is off, the web console
// (with the ingest API passed on to cfg.ConsoleIngestURL when set).
func commanderHTTP(svc *commander.Service, nc *nats.Conn, authn *auth.Authenticator, cfg commanderConfig, log zerolog.Logger, sweepers ...*commander.Sweeper) (http.Handler, error) {
	return commanderHandler(svc, nil, nc, natsconn.Config{}, authn, cfg, log, sweepers...)
}

// commanderHandler is commanderHTTP with the metrics of the micro service
// msvc (nil: none) and of the NATS client certificate of natsCfg.
func commanderHandler(svc *commander.Service, msvc micro.Service, nc *nats.Conn, natsCfg natsconn.Config, authn *auth.Authenticator,
	cfg commanderConfig, log zerolog.Logger, sweepers ...*commander.Sweeper) (http.Handler, error) {
	reg := metrics.NewRegistry()
	if err := metrics.RegisterNATS(reg, nc); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if err := registerCertMetrics(reg, nil, natsCfg); err != nil {
		return nil, err
	}
	cm, err := registerCommanderMetrics(reg, msvc, sweepers...)
	if err != nil {
		return nil, err
	}
	hm, err := metrics.NewHTTP(reg, "commander")
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", svc.Handler())
	mux.Handle("GET /openapi.json", svc.Handler())
	httpapi.HandleHealth(mux, httpapi.NATSReady(nc))
	mux.Handle("GET /metrics", metrics.Handler(reg))
	rules := auth.CommanderRules()
	if cfg.Console {
		clog := log.With().Str("component", "console").Logger()
		console.New(console.Options{NC: nc, Log: clog}).Register(mux)
		rules = append(rules, console.Rules()...)
		if cfg.ConsoleIngestURL != "" {
			if err := console.RegisterIngestProxy(mux, cfg.ConsoleIngestURL, clog); err != nil {
				return nil, err
			}
			rules = append(rules, auth.IngestRules()...)
		}
	}
	return hm.Wrap(cm.Wrap(authn.Protect(mux, rules...))), nil
}

// registerCommanderMetrics adds the collectors of the sweepers to reg and
// returns the commander's HTTP and micro service (msvc, nil: none)
// metrics.
func registerCommanderMetrics(reg *prometheus.Registry, msvc micro.Service, sweepers ...*commander.Sweeper) (*metrics.Commander, error) {
	for _, sw := range sweepers {
		if err := metrics.RegisterSweeper(reg, sw); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	cm, err := metrics.NewCommander(reg, msvc)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return cm, nil
}
