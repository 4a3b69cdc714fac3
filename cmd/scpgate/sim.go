//go:build !driveronly

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"time"

	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/sim"
)

// Fleet splitting: one process holds at most maxPerProc controllers (one
// source IP has about 28,000 ephemeral ports per destination, and open
// files are capped); above it the fleet is split into children of
// perChild controllers.
const (
	maxPerProc = 19_000
	perChild   = 18_000
)

// Hidden flags of a child process of a split fleet.
const (
	flagChildIndex = "--child-index"
	flagChildOf    = "--child-of"
)

func init() {
	register(&command{
		name:    "sim",
		summary: "simulate a fleet of controllers against a driver",
		usage: `scpgate sim --target HOST:PORT [--controllers N] [--rate R] [--duration D] [flags]

Runs N simulated controllers against the driver (or load balancer) at
--target. Each one keeps a transaction log (sent again after reconnects until
acknowledged), logs a realistic event mix at R transactions per second,
answers commands, heartbeats and reconnects with jittered backoff. After
--duration (or on interrupt) the event mix stops; with --drain-timeout the
run then waits for every transaction to be acknowledged and fails if some
are not. It ends with a JSON report on stdout (and in --report FILE):
controllers, connected, sessions, generated, acked, unacked,
dropped_overflow, reconnects, commands_ok, commands_nak, duplicate_commands,
rejected. It exits with status 1 when no controller ever connected.

A status line is refreshed on stderr when it is a terminal; otherwise a log
line is written every few seconds. Above 19,000 controllers the fleet is
split over child processes (--procs, default ceil(N/18000)), each from its
own loopback source address when the target is on loopback.

With --tls-ca the controllers connect over TLS. For a driver that checks
client certificates, give each controller its own with --tls-cert-dir (a
directory of <serial>.crt and <serial>.key, serials being
<prefix><index, 6 digits>), or one certificate for all with --tls-cert and
--tls-key (only useful when the driver does not match the certificate to
the serial).`,
		run: runSim,
	})
}

// simOptions are the command line of `scpgate sim`.
type simOptions struct {
	target       string
	controllers  int
	rate         float64
	duration     time.Duration
	serialPrefix string
	report       string
	procs        int
	drainTimeout time.Duration
	nakRate      float64
	cmdLatency   time.Duration
	ramp         float64
	logCapacity  int
	seed         int64
	commEvents   bool
	logLevel     string
	tls          simTLS

	childIndex, childOf int // hidden: this process is child childIndex of childOf
}

var serialPrefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]{0,24}$`)

func runSim(ctx context.Context, args []string) error {
	args, childIndex, childOf, err := childFlags(args)
	if err != nil {
		return err
	}
	o := simOptions{childIndex: childIndex, childOf: childOf}
	fs := newFlagSet("sim")
	fs.StringVar(&o.target, "target", "", "host:port of the driver or load balancer (required)")
	fs.IntVar(&o.controllers, "controllers", 1, "number of simulated controllers")
	fs.Float64Var(&o.rate, "rate", 0.2, "transactions per second per controller (0: none)")
	fs.DurationVar(&o.duration, "duration", 0, "how long the event mix runs (0: until interrupted)")
	fs.StringVar(&o.serialPrefix, "serial-prefix", sim.DefaultSerialPrefix, "serials are <prefix><index, 6 digits>")
	fs.StringVar(&o.report, "report", "", "also write the JSON report to this file")
	fs.IntVar(&o.procs, "procs", 0, "processes to split the fleet over (0: 1, or ceil(N/18000) above 19,000)")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 0, "after the run, wait this long for every transaction to be acknowledged (0: do not wait)")
	fs.Float64Var(&o.nakRate, "nak-rate", 0, "probability of refusing a valid command (NAK busy or content_error)")
	fs.DurationVar(&o.cmdLatency, "cmd-latency", 0, "delay before answering each command")
	fs.Float64Var(&o.ramp, "ramp", sim.DefaultRamp, "controllers started per second")
	fs.IntVar(&o.logCapacity, "log-capacity", sim.DefaultLogCapacity, "transaction log capacity per controller")
	fs.Int64Var(&o.seed, "seed", 0, "seed of the event mix, jitter and NAKs (0: from the clock)")
	fs.BoolVar(&o.commEvents, "comm-events", true, "log system/comm_offline and comm_online around every lost session, like a real panel")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level")
	fs.StringVar(&o.tls.ca, "tls-ca", "", "connect with TLS, trusting the CA certificates of this PEM file")
	fs.StringVar(&o.tls.certDir, "tls-cert-dir", "", "with --tls-ca: client certificates per controller, <dir>/<serial>.crt and <dir>/<serial>.key")
	fs.StringVar(&o.tls.cert, "tls-cert", "", "with --tls-ca: one client certificate (PEM) for every controller")
	fs.StringVar(&o.tls.key, "tls-key", "", "key of --tls-cert (PEM)")
	fs.StringVar(&o.tls.serverName, "tls-server-name", "", "name to verify the driver's certificate against (default: the --target host)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	if err := o.validate(); err != nil {
		return err
	}
	if _, err := o.tls.configFor(); err != nil {
		return err
	}
	if o.seed == 0 {
		o.seed = time.Now().UnixNano()
	}
	log := newLogger(o.logLevel, false)
	if o.childOf > 0 {
		return runSimChild(ctx, o, log)
	}
	procs := o.procs
	if procs == 0 {
		procs = 1
		if o.controllers > maxPerProc {
			procs = (o.controllers + perChild - 1) / perChild
		}
	}
	if procs == 1 && o.controllers > maxPerProc {
		log.Warn().Int("controllers", o.controllers).Msg("more than 19,000 controllers in one process may run out of ephemeral ports or open files; consider --procs")
	}
	var rep sim.Report
	if procs == 1 {
		rep, err = runSimFleet(ctx, o, log, newStatus(log, o.controllers))
	} else {
		rep, err = runSimParent(ctx, o, procs, args, log)
	}
	if werr := writeSimReport(os.Stdout, o.report, rep); werr != nil && err == nil {
		err = werr
	}
	if err == nil && rep.Sessions == 0 && o.childOf == 0 {
		// Nothing was simulated: the target is wrong, down or refusing.
		err = fmt.Errorf("no controller ever connected to %s (%d connection attempts, %d rejected): is a driver listening there?",
			o.target, rep.Reconnects+uint64(rep.Controllers), rep.Rejected)
	}
	return err
}

func (o *simOptions) validate() error {
	switch {
	case o.target == "":
		return usageErrorf("--target is required")
	case o.controllers < 1:
		return usageErrorf("--controllers must be at least 1")
	case o.rate < 0:
		return usageErrorf("--rate must not be negative")
	case o.nakRate < 0 || o.nakRate > 1:
		return usageErrorf("--nak-rate must be within 0..1")
	case o.procs < 0 || o.procs > o.controllers:
		return usageErrorf("--procs must be within 0..controllers")
	case o.ramp <= 0:
		return usageErrorf("--ramp must be positive")
	case o.logCapacity < 1:
		return usageErrorf("--log-capacity must be at least 1")
	case !serialPrefixRE.MatchString(o.serialPrefix):
		return usageErrorf("--serial-prefix must be at most 24 of A-Z a-z 0-9 _ -")
	}
	if _, _, err := net.SplitHostPort(o.target); err != nil {
		return usageErrorf("--target: %v", err)
	}
	return nil
}

// runSimFleet runs o's fleet in this process: the event mix for
// o.duration, then the drain, then the report. st shows progress.
func runSimFleet(ctx context.Context, o simOptions, log zerolog.Logger, st statusFunc) (sim.Report, error) {
	first, count := 0, o.controllers
	localAddr, ramp := "", o.ramp
	if o.childOf > 0 {
		first, count = slice(o.controllers, o.childOf, o.childIndex)
		localAddr = loopbackSource(o.target, o.childIndex)
		ramp = o.ramp / float64(o.childOf)
		log = log.With().Int("child", o.childIndex).Logger()
	}
	tlsFor, err := o.tls.configFor()
	if err != nil {
		return sim.Report{}, err
	}
	fleet := sim.NewFleet(sim.FleetConfig{
		Controller: sim.Config{
			Target: o.target, LogCapacity: o.logCapacity, Rate: o.rate, NakRate: o.nakRate,
			CommandLatency: o.cmdLatency, LocalAddr: localAddr, Log: log, Seed: o.seed,
			LogCommEvents: o.commEvents,
		},
		Count: count, SerialPrefix: o.serialPrefix, FirstIndex: first, Ramp: ramp, TLSFor: tlsFor,
	})
	log.Info().Int("controllers", count).Int("first", first).Str("target", o.target).Str("source", localAddr).
		Float64("rate", o.rate).Dur("duration", o.duration).Msg("simulating")

	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	done := make(chan error, 1)
	go func() { done <- fleet.Run(runCtx) }()
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	var end <-chan time.Time
	if o.duration > 0 {
		t := time.NewTimer(o.duration)
		defer t.Stop()
		end = t.C
	}
	started := time.Now()
	var runErr error
	running := true
	for running {
		select {
		case <-ctx.Done():
			running = false
		case <-end:
			running = false
		case runErr = <-done:
			done = nil
			running = false
		case <-ticker.C:
			st(time.Since(started), fleet.Report(), false)
		}
	}
	fleet.SetRate(0)
	var drainErr error
	if o.drainTimeout > 0 && ctx.Err() == nil && runErr == nil {
		log.Info().Dur("timeout", o.drainTimeout).Msg("event mix stopped; waiting for acknowledgements")
		dctx, cancel := context.WithTimeout(ctx, o.drainTimeout)
		drained := make(chan error, 1)
		go func() { drained <- fleet.WaitAcked(dctx) }()
		for waiting := true; waiting; {
			select {
			case drainErr = <-drained:
				waiting = false
			case <-ticker.C:
				st(time.Since(started), fleet.Report(), false)
			}
		}
		cancel()
	}
	connected := fleet.Report().Connected
	stopRun()
	if done != nil {
		runErr = <-done
	}
	rep := fleet.Report()
	rep.Connected = connected
	st(time.Since(started), rep, true)
	if runErr != nil {
		return rep, fmt.Errorf("run fleet: %w", runErr)
	}
	if drainErr != nil && errors.Is(drainErr, sim.ErrUnacked) {
		return rep, fmt.Errorf("%d %w", rep.Unacked, sim.ErrUnacked)
	}
	return rep, drainErr
}

// writeSimReport writes rep as indented JSON to w and, when file is set,
// to file.
func writeSimReport(w io.Writer, file string, rep sim.Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if file != "" {
		if err := os.WriteFile(file, b, 0o644); err != nil {
			return fmt.Errorf("write report file: %w", err)
		}
	}
	return nil
}

// statusFunc shows the progress of a run; final is set once, at the end.
type statusFunc func(elapsed time.Duration, r sim.Report, final bool)

// newStatus returns the progress display: a status line refreshed in place
// when stderr is a terminal, else a log line every five seconds.
func newStatus(log zerolog.Logger, total int) statusFunc {
	if isTerminal(os.Stderr) {
		return func(elapsed time.Duration, r sim.Report, final bool) {
			end := ""
			if final {
				end = "\n"
			}
			fmt.Fprintf(os.Stderr, "\r\033[K%s%s", statusLine(elapsed, r, total), end)
		}
	}
	var last time.Time
	return func(elapsed time.Duration, r sim.Report, final bool) {
		if !final && time.Since(last) < 5*time.Second {
			return
		}
		last = time.Now()
		log.WithLevel(zerolog.InfoLevel).Dur("elapsed", elapsed).Int("connected", r.Connected).Int("controllers", total).
			Uint64("generated", r.Generated).Uint64("acked", r.Acked).Uint64("unacked", r.Unacked).
			Uint64("dropped_overflow", r.DroppedOverflow).Uint64("reconnects", r.Reconnects).
			Uint64("commands_ok", r.CommandsOK).Uint64("commands_nak", r.CommandsNAK).Msg("sim progress")
	}
}

func statusLine(elapsed time.Duration, r sim.Report, total int) string {
	return fmt.Sprintf("sim %s  connected %d/%d  generated %d  acked %d  unacked %d  dropped %d  reconnects %d  cmds %d ok %d nak  dup %d  rejected %d",
		elapsed.Truncate(time.Second), r.Connected, total, r.Generated, r.Acked, r.Unacked, r.DroppedOverflow,
		r.Reconnects, r.CommandsOK, r.CommandsNAK, r.DuplicateCommands, r.Rejected)
}
