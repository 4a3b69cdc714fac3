package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/auth"
	"github.com/scpgate/scpgate/internal/gctune"
	"github.com/scpgate/scpgate/internal/metrics"
	"github.com/scpgate/scpgate/internal/natsconn"
	"github.com/scpgate/scpgate/scpbridge"
)

// driverConfig is the environment of `scpgate driver` (prefix SCPGATE_).
type driverConfig struct {
	ID                    string        `envconfig:"DRIVER_ID" desc:"driver id in events and presence (default: host name + random)"`
	Listen                string        `envconfig:"LISTEN" default:":3001" desc:"controller (SCP/TCP) listen address"`
	HTTPListen            string        `envconfig:"HTTP_LISTEN" default:":8080" desc:"address of /healthz, /readyz and /stats"`
	HandshakeTimeout      time.Duration `envconfig:"HANDSHAKE_TIMEOUT" default:"10s" min:"100ms" desc:"a controller must send hello within this"`
	Heartbeat             time.Duration `envconfig:"HEARTBEAT" default:"5s" min:"100ms" desc:"heartbeat interval sent in welcome"`
	OfflineTime           time.Duration `envconfig:"OFFLINE_TIME" default:"15s" min:"1s" desc:"a controller silent this long is offline"`
	MaxInflightPerSession int           `envconfig:"MAX_INFLIGHT_PER_SESSION" default:"256" min:"1" desc:"unconfirmed transactions per controller before the driver stops reading it"`
	MaxInflightTotal      int           `envconfig:"MAX_INFLIGHT_TOTAL" default:"32768" min:"1" desc:"unconfirmed transactions of the whole driver"`
	CommandWindow         int           `envconfig:"COMMAND_WINDOW" default:"4" min:"1" desc:"commands outstanding per controller"`
	CommandAnswerTimeout  time.Duration `envconfig:"COMMAND_ANSWER_TIMEOUT" default:"30s" min:"1s" desc:"a command sent to a connected controller without a status by then ends failed (unanswered)"`
	CommandBusyRetry      time.Duration `envconfig:"COMMAND_BUSY_RETRY" default:"1s" min:"10ms" desc:"a command answered NAK busy is sent again after this, doubling per busy answer until it expires"`
	CommandBusyRetryMax   time.Duration `envconfig:"COMMAND_BUSY_RETRY_MAX" default:"30s" min:"10ms" desc:"longest wait between busy retries of a command"`
	DrainAnswerWait       time.Duration `envconfig:"DRAIN_ANSWER_WAIT" default:"5s" min:"0s" desc:"a released session waits this long for the statuses of commands already sent before it says bye"`
	DrainRate             float64       `envconfig:"DRAIN_RATE" default:"500" min:"0.01" desc:"controllers per second sent away when draining (SIGTERM)"`
	DrainDeadline         time.Duration `envconfig:"DRAIN_DEADLINE" default:"30s" min:"1s" desc:"a drain ends by then; remaining sessions are closed"`
	LogLevel              string        `envconfig:"LOG_LEVEL" default:"info" oneof:"trace,debug,info,warn,error" desc:"log level: trace, debug, info, warn, error"`
	StreamsEnv
	ControllerSecurityEnv
}

func (c driverConfig) options(nc *nats.Conn) driver.Options {
	return driver.Options{
		ID:                    c.ID,
		Listen:                c.Listen,
		NATS:                  nc,
		Streams:               c.StreamsEnv.config(),
		Timing:                scpbridge.Timing{Handshake: c.HandshakeTimeout, Heartbeat: c.Heartbeat, OfflineTime: c.OfflineTime},
		MaxInflightPerSession: c.MaxInflightPerSession,
		MaxInflightTotal:      c.MaxInflightTotal,
		CommandWindow:         c.CommandWindow,
		CommandAnswerTimeout:  c.CommandAnswerTimeout,
		CommandBusyRetry:      c.CommandBusyRetry,
		CommandBusyRetryMax:   c.CommandBusyRetryMax,
		DrainAnswerWait:       c.DrainAnswerWait,
		DrainRate:             c.DrainRate,
		DrainDeadline:         c.DrainDeadline,
		MaxSessions:           c.MaxSessions,
		UnknownSerialRate:     c.UnknownSerialRate,
	}
}

func init() {
	register(&command{
		name:    "driver",
		summary: "accept controller connections and publish their events to NATS",
		usage: `scpgate driver [flags]

Accepts SCP/TCP controller connections, publishes every transaction durably
to SCP_EVENTS and acknowledges it only once stored, delivers queued
commands, and reports presence. Run several behind a TCP load balancer.
On SIGTERM it drains: /readyz turns 503, no new sessions, in-flight events
are stored and acknowledged, then controllers are sent away in waves to
reconnect elsewhere. Configured from the environment (below); flags
override it.

With SCPGATE_TLS_CERT and SCPGATE_TLS_KEY the controller port speaks TLS;
with SCPGATE_TLS_CLIENT_CA controllers also present a client certificate
whose identity (common name, or a DNS or URI SAN) must be the serial of
their hello, else they are refused with certificate_mismatch. With
SCPGATE_ALLOW_LIST only the serials in that file are admitted (not_allowed
otherwise); the file is read again on SIGHUP and whenever it changes. So
are the TLS certificate, key and client CA bundle: rotate them in place,
new handshakes take them (a pair that does not load is logged and the
previous one kept). Production needs client certificates (or shared
secrets, below): without them any peer can say hello with any serial and
take its session over. With
SCPGATE_TLS_CLIENT_AUTH=verify-if-given, a serial that presented its
certificate once is refused without it from then on (kept in the
scp_identity bucket).

SCPGATE_MAX_SESSIONS caps a driver's sessions (busy past it), and
SCPGATE_UNKNOWN_SERIAL_RATE bounds how fast serials never seen before get
presence events; the allow list is the strong fix against made-up
serials. SCPGATE_CONTROLLER_SECRETS gives controllers without certificates
a shared secret each, sent in their hello (protocol 1.1; use it over TLS).

Prometheus metrics are served on /metrics of the HTTP address.

The Go garbage collector runs at GOGC=50 in a driver unless GOGC is set:
it halves the heap headroom that idle sessions would otherwise keep
resident (docs/benchmarks.md gives the memory and CPU of both).`,
		run: runDriver,
	})
}

func runDriver(ctx context.Context, args []string) error {
	var cfg driverConfig
	var natsCfg natsconn.Config
	fs := newFlagSet("driver", envSpec{"SCPGATE", &cfg}, envSpec{"", &natsCfg})
	listenFlag := fs.String("listen", "", "controller listen address (overrides SCPGATE_LISTEN)")
	httpListen := fs.String("http", "", "HTTP listen address (overrides SCPGATE_HTTP_LISTEN)")
	if err := parseService(fs, args, &cfg, &natsCfg); err != nil {
		return err
	}
	if *listenFlag != "" {
		cfg.Listen = *listenFlag
	}
	if *httpListen != "" {
		cfg.HTTPListen = *httpListen
	}
	log := newLogger(cfg.LogLevel, false).With().Str("role", "driver").Logger()
	warnUnknownEnv(log)
	gogc, fromEnv := gctune.Apply(gctune.DriverPercent)

	// Both addresses are opened before NATS is reached: a port in use
	// fails at once. A driver starts even while NATS is down: it ensures
	// the streams as soon as it can and, until then, is not ready
	// (/readyz: "NATS not connected").
	ctrlLn, err := listen("controller", cfg.Listen)
	if err != nil {
		return err
	}
	defer ctrlLn.Close()
	httpLn, err := listen("HTTP", cfg.HTTPListen)
	if err != nil {
		return err
	}
	defer httpLn.Close()
	nc, err := natsconn.Connect(natsCfg, "scpgate-driver", log, nats.RetryOnFailedConnect(true))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstreamOf(nc)
	if err != nil {
		return err
	}
	reg := metrics.NewRegistry()
	role, err := openDriver(ctx, cfg, roleEnv{nc: nc, js: js, log: log}, ctrlLn, reg, nil)
	if err != nil {
		return err
	}
	defer role.Close()
	d := role.d
	if err := registerDriverMetrics(reg, d, nc, role.allow); err != nil {
		return err
	}
	if err := registerCertMetrics(reg, role.srvTLS, natsCfg); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", d.Handler())
	mux.Handle("GET /metrics", metrics.Handler(reg))
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	defer stopHTTP()
	httpDone := serveOn(httpCtx, httpLn, mux, 30*time.Second, log)
	if err := role.Start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	log.Info().Str("id", d.ID()).Str("listen", d.Addr().String()).Int("gogc", gogc).Bool("gogc_from_env", fromEnv).Msg("driver started")
	select {
	case <-ctx.Done():
	case err := <-httpDone:
		return err
	}
	log.Info().Msg("draining")
	dctx, cancel := context.WithTimeout(context.Background(), cfg.DrainDeadline+5*time.Second)
	defer cancel()
	if err := role.Drain(dctx); err != nil {
		log.Warn().Err(err).Msg("drain")
	}
	err = role.Close()
	stopHTTP()
	<-httpDone
	return err
}

// registerDriverMetrics adds the collectors of a driver, its NATS
// connection and its allow-list (nil: none) to reg.
func registerDriverMetrics(reg *prometheus.Registry, d *driver.Driver, nc *nats.Conn, allow *auth.AllowList) error {
	if err := metrics.RegisterDriver(reg, d); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := metrics.RegisterNATS(reg, nc); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if allow != nil {
		if err := metrics.RegisterAllowList(reg, allow); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	return nil
}
