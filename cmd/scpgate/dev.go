//go:build !driveronly

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/console"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/auth"
	"github.com/scpgate/scpgate/internal/embedded"
	"github.com/scpgate/scpgate/internal/metrics"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/streams"
)

func init() {
	register(&command{
		name:    "dev",
		summary: "run everything in one process on an embedded NATS, optionally with a simulated fleet",
		usage: `scpgate dev [--data DIR] [--sim N] [flags]

Runs an embedded nats-server with JetStream (store under --data, listening
on 127.0.0.1:4222 so the nats CLI can look in), a driver on :3001, ingest
into SQLite (--data/scpgate.db), the command API, and with --sim N a fleet
of N simulated controllers connected to the driver. One HTTP server on
:8080 serves /healthz, /readyz, /stats, /metrics and the query and command
APIs (open, unless SCPGATE_API_TOKENS or SCPGATE_API_TOKENS_FILE is set),
and the web console at http://localhost:8080/console/.
Every few seconds one status line shows controllers online, events/s and
stream messages. Ctrl-C stops everything cleanly; data survives a restart.

With --tls the controller port speaks TLS with a certificate of a
throw-away CA created at start (--data/tls/ca.crt, with the server's
certificate): a controller may present a client certificate of that CA,
which must then name its serial; the simulated fleet presents one each.
Another fleet can join with 'scpgate sim --tls-ca DATA/tls/ca.crt'.`,
		run: runDev,
	})
}

// devEnv is the environment of `scpgate dev` (prefix SCPGATE_): the
// variables it shares with the roles. Flags override it.
type devEnv struct {
	Listen     string `envconfig:"LISTEN" default:":3001" desc:"controller (SCP/TCP) listen address"`
	HTTPListen string `envconfig:"HTTP_LISTEN" default:":8080" desc:"address of the HTTP server"`
	LogLevel   string `envconfig:"LOG_LEVEL" default:"info" oneof:"trace,debug,info,warn,error" desc:"log level: trace, debug, info, warn, error"`
	APIAuthEnv
}

type devFlags struct {
	data, listen, http, logLevel string
	natsPort, sim                int
	simRate                      float64
	tls                          bool
	every                        time.Duration
}

func runDev(ctx context.Context, args []string) error {
	return runDevWith(ctx, args, devHooks{})
}

// devHooks let a test run dev inside its own process: logTo (nil:
// stderr) receives the log, running (when set) the addresses dev listens
// on once it serves.
type devHooks struct {
	logTo   io.Writer
	running func(controllers, http string)
}

// runDevWith is runDev with hooks.
func runDevWith(ctx context.Context, args []string, hooks devHooks) error {
	var f devFlags
	var env devEnv
	fs := newFlagSet("dev", envSpec{"SCPGATE", &env})
	fs.StringVar(&f.data, "data", "./scpgate-data", "data directory (JetStream store and SQLite database)")
	fs.IntVar(&f.sim, "sim", 0, "number of simulated controllers to connect (0: none)")
	fs.Float64Var(&f.simRate, "sim-rate", 0.2, "events per second per simulated controller")
	fs.StringVar(&f.listen, "listen", ":3001", "controller listen address (overrides SCPGATE_LISTEN)")
	fs.StringVar(&f.http, "http", ":8080", "HTTP listen address (overrides SCPGATE_HTTP_LISTEN)")
	fs.IntVar(&f.natsPort, "nats-port", 4222, "embedded NATS port on 127.0.0.1 (-1: any free port)")
	fs.DurationVar(&f.every, "status-every", 5*time.Second, "interval of the status line (0: none)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: trace, debug, info, warn, error (overrides SCPGATE_LOG_LEVEL)")
	fs.BoolVar(&f.tls, "tls", false, "controller port over TLS with a throw-away CA (written to --data/tls)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	if f.sim < 0 || f.sim > 19000 {
		return usageErrorf("--sim %d: want 0 to 19000 in one process (use 'scpgate sim' for more)", f.sim)
	}
	if f.simRate < 0 {
		return usageErrorf("--sim-rate must not be negative")
	}
	if err := loadEnv("SCPGATE", &env); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if !set["listen"] {
		f.listen = env.Listen
	}
	if !set["http"] {
		f.http = env.HTTPListen
	}
	if !set["log-level"] {
		f.logLevel = env.LogLevel
	}
	if err := validLevel(f.logLevel); err != nil {
		return usageErrorf("--log-level: %v", err)
	}
	apiEnv := env.APIAuthEnv
	var log zerolog.Logger
	if hooks.logTo != nil {
		log = buildLogger(hooks.logTo, f.logLevel, false, true)
	} else {
		log = buildLogger(os.Stderr, f.logLevel, isTerminal(os.Stderr), true)
	}
	warnUnknownEnv(log)
	if err := os.MkdirAll(f.data, 0o755); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	// Every address is opened (or, for NATS, tried) first, so that a
	// port in use is reported with the flag that changes it.
	ctrlLn, err := devListen(f.listen, "controller", "--listen or SCPGATE_LISTEN")
	if err != nil {
		return err
	}
	defer ctrlLn.Close()
	httpLn, err := devListen(f.http, "HTTP", "--http or SCPGATE_HTTP_LISTEN")
	if err != nil {
		return err
	}
	defer httpLn.Close()
	if f.natsPort > 0 {
		ln, err := devListen(net.JoinHostPort("127.0.0.1", strconv.Itoa(f.natsPort)), "embedded NATS", "--nats-port (-1: any free port)")
		if err != nil {
			return err
		}
		ln.Close()
	}
	ns, err := embedded.Start(embedded.Options{DataDir: f.data, Port: f.natsPort})
	if err != nil {
		return err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	log.Info().Str("url", ns.ClientURL()).Str("store", filepath.Join(f.data, "nats")).Msg("embedded NATS with JetStream")

	nc, err := nats.Connect(ns.ClientURL(), nats.Name("scpgate-dev"), nats.InProcessServer(ns), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect to embedded NATS: %w", err)
	}
	defer nc.Close()
	js, err := jetstreamOf(nc)
	if err != nil {
		return err
	}
	h, err := streams.Apply(ctx, js, streams.DefaultConfig()) // dev owns its streams
	if err != nil {
		return fmt.Errorf("ensure streams: %w", err)
	}

	// The same three roles as in production, opened on the embedded
	// server with their defaults.
	roleOn := func(role string) roleEnv {
		return roleEnv{nc: nc, js: js, streams: h, log: log.With().Str("role", role).Logger()}
	}
	reg := metrics.NewRegistry()
	var devTLS *devCA
	if f.tls {
		if devTLS, err = newDevCA(filepath.Join(f.data, "tls")); err != nil {
			return err
		}
		log.Info().Str("ca", devTLS.caFile).Msg("controller port speaks TLS")
	}
	tune := func(o *driver.Options) {
		o.Streams = streams.DefaultConfig() // as applied above
		if devTLS != nil {
			o.TLS, o.RequireCertSerial = devTLS.server, true
		}
	}
	drv, err := openDriver(ctx, driverConfig{ID: "dev", Listen: f.listen}, roleOn("driver"), ctrlLn, reg, tune)
	if err != nil {
		return err
	}
	defer drv.Close()
	if err := drv.Start(ctx); err != nil {
		return err
	}
	d := drv.d
	cmdr, err := openCommander(ctx, commanderConfig{}, roleOn("commander"))
	if err != nil {
		return err
	}
	defer cmdr.Close()
	store, err := openStore(ctx, "sqlite:"+filepath.Join(f.data, "scpgate.db"), log)
	if err != nil {
		return err
	}
	defer store.Close()
	ing, err := openIngest(ctx, ingestConfig{State: true}, roleOn("ingest"), store)
	if err != nil {
		return err
	}
	defer ing.Close()

	var wg sync.WaitGroup
	defer wg.Wait()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ing.Done():
			if err := ing.Err(); err != nil {
				log.Error().Err(err).Msg("ingest stopped")
			}
		case <-runCtx.Done():
		}
	}()
	authn, err := apiEnv.authenticator(runCtx, log)
	if err != nil {
		return err
	}
	handler, err := devHTTP(reg, drv, cmdr, ing, nc, authn, log)
	if err != nil {
		return err
	}
	httpDone := serveOn(runCtx, httpLn, handler, time.Minute+10*time.Second, log)
	if f.sim > 0 {
		fc := sim.FleetConfig{
			Count:      f.sim,
			Controller: sim.Config{Target: d.Addr().String(), Rate: f.simRate, LogCommEvents: true, Log: log.With().Str("role", "sim").Logger().Level(zerolog.WarnLevel)},
		}
		if devTLS != nil {
			fc.TLSFor = devTLS.clientFor
		}
		fleet := sim.NewFleet(fc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fleet.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error().Err(err).Msg("simulated fleet stopped")
			}
		}()
		log.Info().Int("controllers", f.sim).Float64("rate", f.simRate).Msg("simulated fleet connecting")
	}
	log.Info().Str("controllers", d.Addr().String()).Str("http", httpLn.Addr().String()).Msg("scpgate dev running; Ctrl-C stops it")
	if hooks.running != nil {
		hooks.running(d.Addr().String(), httpLn.Addr().String())
	}
	if f.every > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); statusLines(runCtx, f.every, d, h.Events, ing.svc, log) }()
	}
	select {
	case <-ctx.Done():
		log.Info().Msg("shutting down")
	case err := <-httpDone:
		stop()
		return err
	}
	stop()
	<-httpDone
	return nil
}

// devHTTP returns the handler of the one HTTP server of dev: devMux,
// /metrics and the web console (at /console/) behind authn (the driver's
// /stats needs an admin token when tokens are configured), counted in reg.
func devHTTP(reg *prometheus.Registry, drv *driverRole, c *commanderRole, ing *ingestRole, nc *nats.Conn, authn *auth.Authenticator, log zerolog.Logger) (http.Handler, error) {
	if err := registerDriverMetrics(reg, drv.d, nc, nil); err != nil {
		return nil, err
	}
	if err := registerIngestMetrics(reg, ing.svc, nc); err != nil {
		return nil, err
	}
	cm, err := registerCommanderMetrics(reg, c.micro, c.sweeper)
	if err != nil {
		return nil, err
	}
	hm, err := metrics.NewHTTP(reg, "dev")
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := devMux(drv.d, c.svc, ing.svc)
	mux.Handle("GET /metrics", metrics.Handler(reg))
	console.New(console.Options{NC: nc, Log: log.With().Str("role", "console").Logger()}).Register(mux)
	rules := append(append(auth.CommanderRules(), auth.IngestRules()...), console.Rules()...)
	return hm.Wrap(cm.Wrap(authn.Protect(mux, rules...))), nil
}

// devMux routes one HTTP server to the driver (/healthz, /readyz, /stats),
// the query API of ingest and the command API.
func devMux(d *driver.Driver, c *commander.Service, ing *ingest.Service) *http.ServeMux {
	mux := http.NewServeMux()
	dh, ch, ih := d.Handler(), c.Handler(), ing.Handler()
	mux.Handle("GET /healthz", dh)
	mux.Handle("GET /readyz", dh)
	mux.Handle("GET /stats", dh)
	mux.Handle("/v1/commands/", ch)
	mux.Handle("/v1/controllers", ch)
	mux.Handle("/v1/controllers/", ch)
	mux.Handle("GET /v1/controllers/{serial}/state", ih)
	mux.Handle("GET /v1/controllers/{serial}/events", ih)
	mux.Handle("GET /v1/events", ih)
	mux.Handle("GET /v1/results/{id}", ih)
	mux.Handle("GET /openapi.json", ch)
	return mux
}

// statusLines logs one line every interval: controllers online, sessions
// started and ended since the last line (their own lines are at debug
// level in dev), events/s stored, messages in SCP_EVENTS and ingest lag.
func statusLines(ctx context.Context, every time.Duration, d *driver.Driver, events jetstream.Stream, ing *ingest.Service, log zerolog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	st0 := d.Stats()
	last, lastAt := st0.EventsPublished, time.Now()
	lastStarted, lastEnded := st0.Established, sumCloses(st0)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			st := d.Stats()
			rate := float64(st.EventsPublished-last) / now.Sub(lastAt).Seconds()
			last, lastAt = st.EventsPublished, now
			started, ended := st.Established-lastStarted, sumCloses(st)-lastEnded
			lastStarted, lastEnded = st.Established, sumCloses(st)
			var msgs uint64
			ictx, cancel := context.WithTimeout(ctx, time.Second)
			if info, err := events.Info(ictx); err == nil {
				msgs = info.State.Msgs
			}
			cancel()
			log.Info().Int("online", st.Sessions).Uint64("sessions_started", started).Uint64("sessions_ended", ended).
				Float64("events_per_s", math.Round(rate*10)/10).
				Uint64("stream_msgs", msgs).Uint64("ingest_pending", ing.Lag().Pending).Msg("status")
		}
	}
}

// sumCloses is the number of connections st counts as ended.
func sumCloses(st driver.Stats) uint64 {
	var n uint64
	for _, c := range st.Closes {
		n += c
	}
	return n
}

// devListen opens addr for what; when the port is taken, the error names
// the port and the flag (or variable) that changes it.
func devListen(addr, what, flagHint string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		_, port, _ := net.SplitHostPort(addr)
		return nil, fmt.Errorf("%s port %s is already in use (%s): stop what holds it or choose another with %s", what, port, addr, flagHint)
	}
	return nil, fmt.Errorf("%s listen on %s: %w (change it with %s)", what, addr, err, flagHint)
}
