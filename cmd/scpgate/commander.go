package main

import (
	"context"
	"fmt"
	"time"

	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/internal/natsconn"
	"github.com/scpgate/scpgate/streams"
)

// commanderConfig is the environment of `scpgate commander` (prefix SCPGATE_).
type commanderConfig struct {
	HTTPListen string        `envconfig:"HTTP_LISTEN" default:":8080" desc:"address of the command HTTP API"`
	DefaultTTL time.Duration `envconfig:"COMMAND_DEFAULT_TTL" default:"1h" desc:"TTL of a command that names none"`
	MaxTTL     time.Duration `envconfig:"COMMAND_MAX_TTL" default:"168h" desc:"longest TTL accepted (keep within COMMANDS_MAX_AGE)"`
	MaxWait    time.Duration `envconfig:"COMMAND_MAX_WAIT" default:"60s" desc:"longest ?wait= a submission may ask for"`
	LogLevel   string        `envconfig:"LOG_LEVEL" default:"info" desc:"log level: debug, info, warn, error"`
	StreamsEnv
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
environment (below); flags override it.`,
		run: runCommander,
	})
}

func runCommander(ctx context.Context, args []string) error {
	var cfg commanderConfig
	var natsCfg natsconn.Config
	fs := newFlagSet("commander", envSpec{"SCPGATE", &cfg}, envSpec{"", &natsCfg})
	httpListen := fs.String("http", "", "HTTP listen address (overrides SCPGATE_HTTP_LISTEN)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	if err := loadEnv("SCPGATE", &cfg); err != nil {
		return err
	}
	if err := loadEnv("", &natsCfg); err != nil {
		return err
	}
	if *httpListen != "" {
		cfg.HTTPListen = *httpListen
	}
	log := newLogger(cfg.LogLevel, false).With().Str("role", "commander").Logger()

	nc, err := natsconn.Connect(natsCfg, "scpgate-commander", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstreamOf(nc)
	if err != nil {
		return err
	}
	if _, err := streams.Ensure(ctx, js, cfg.StreamsEnv.config()); err != nil {
		return fmt.Errorf("ensure streams: %w", err)
	}
	svc, err := commander.New(commander.Options{JS: js, NC: nc, Log: log, DefaultTTL: cfg.DefaultTTL, MaxTTL: cfg.MaxTTL, MaxWait: cfg.MaxWait})
	if err != nil {
		return err
	}
	defer svc.Close()
	if _, err := svc.Register(nc); err != nil {
		return fmt.Errorf("register micro service: %w", err)
	}
	_, done, err := serveHTTP(ctx, cfg.HTTPListen, svc.Handler(), cfg.MaxWait+10*time.Second, log)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		<-done
		return nil
	case err := <-done:
		return err
	}
}
