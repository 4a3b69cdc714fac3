//go:build !driveronly

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/scpgate/scpgate/bench"
)

// benchChild is the hidden first argument of a bench child process.
const benchChild = "--child"

func init() {
	var list strings.Builder
	for _, s := range bench.Scenarios() {
		fmt.Fprintf(&list, "  %-12s %s\n", s.Name, s.Summary)
	}
	register(&command{
		name:    "bench",
		summary: "measure throughput and latency of a whole scpgate on this machine",
		usage: `scpgate bench SCENARIO [flags]

Runs one benchmark scenario and prints its figures as a table (with --json,
as JSON on stdout and the table on stderr), with the machine it ran on and
the targets each figure is held to. NATS runs embedded in a temporary
directory unless --nats names a server (the scenarios then write into its
scpgate streams: use a dedicated one). Drivers, simulated fleets and raw
publishers run as child processes of this one; --target uses a driver (or
load balancer) started elsewhere instead. Every scenario is bounded in time
and stops its children when it ends or is interrupted. --quick runs it
small, in seconds, to prove it works.

Scenarios:
` + list.String() + `
Sizes default per scenario (zero flags below); --quick shrinks them.`,
		run: runBench,
	})
}

func runBench(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == benchChild {
		return bench.RunChild(ctx, args[1:], os.Stdin, os.Stdout, os.Stderr)
	}
	var (
		o                  bench.Options
		p                  bench.Params
		asJSON             bool
		logLevel, scenario string
		cpuProfile         string
	)
	fs := newFlagSet("bench")
	fs.StringVar(&o.NATS, "nats", "", "NATS URL to measure (default: an embedded server)")
	fs.StringVar(&o.Target, "target", "", "host:port of a driver started elsewhere (default: drivers started by the bench)")
	fs.StringVar(&o.DataDir, "data", "", "store directory of the embedded server (default: a temporary one, removed)")
	fs.BoolVar(&o.Quick, "quick", false, "small and short: proves the scenario works, judges no target")
	fs.BoolVar(&o.Pprof, "pprof", false, "driver children serve net/http/pprof (address logged)")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the bench process (embedded NATS, ingest, load generators) to `FILE`")
	fs.StringVar(&o.PhaseProfiles, "phase-cpuprofiles", "", "write a CPU profile of the bench process for each measured phase of events and storm (raw and driver runs apart) into `DIR`")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON on stdout (the table goes to stderr)")
	fs.StringVar(&logLevel, "log-level", "info", "log level of the bench")
	fs.StringVar(&o.ChildLogLevel, "child-log-level", "warn", "log level of the child processes")
	fs.IntVar(&p.Controllers, "controllers", 0, "simulated controllers (connections 19000, events 1000, commands 10000, storm 5000)")
	fs.IntVar(&p.Events, "events", 0, "events per run (events 500000, ingest 200000)")
	fs.IntVar(&p.Buffered, "buffered", 0, "transactions each controller holds before connecting (storm 1000)")
	fs.Float64Var(&p.Rate, "rate", 0, "steady rate: commands/s (commands 1000), events/s (ingest 5000; events: a tenth of the measured maximum)")
	fs.DurationVar(&p.Duration, "duration", 0, "how long the steady rate runs (events 20s, commands 30s, ingest 30s)")
	fs.DurationVar(&p.Window, "window", 0, "idle CPU window (connections 10s)")
	fs.Float64Var(&p.Ramp, "ramp", 0, "controllers connecting per second (connections 10000, commands 10000, events 5000, storm 100000)")
	fs.Func("driver-env", "add KEY=VALUE to the environment of driver children (repeatable), e.g. GOGC=50", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("want KEY=VALUE, got %q", v)
		}
		o.DriverEnv = append(o.DriverEnv, v)
		return nil
	})
	fs.StringVar(&o.DriverBin, "driver-bin", "", "`FILE` whose driver command the connections scenario measures with no controllers (default: scpgate-driver beside this program if there is one, else this program)")
	fs.StringVar(&p.Postgres, "postgres", "", "PostgreSQL DSN for ingest (default $SCPGATE_TEST_POSTGRES_DSN; none: skipped)")
	rest := args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		scenario, rest = args[0], args[1:]
	}
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if scenario == "" && fs.NArg() > 0 {
		scenario = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	if scenario == "" {
		return usageErrorf("name a scenario")
	}
	if _, err := bench.Lookup(scenario); err != nil {
		return usageErrorf("%v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to start child processes: %w", err)
	}
	o.Spawn = func(a []string) *exec.Cmd { return exec.Command(exe, append([]string{"bench", benchChild}, a...)...) }
	if o.DriverBin == "" {
		o.DriverBin = defaultDriverBin(exe)
	}
	o.Log = newLogger(logLevel, false)
	o.Command = benchCommandLine(args)

	if cpuProfile != "" && o.PhaseProfiles != "" {
		return usageErrorf("--cpuprofile and --phase-cpuprofiles cannot be combined")
	}
	if cpuProfile != "" {
		stop, err := bench.StartCPUProfile(cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer stop()
	}
	res, err := bench.Run(ctx, scenario, o, p)
	if res != nil && len(res.Rows) > 0 {
		table := os.Stdout
		if asJSON {
			table = os.Stderr
			if jerr := res.WriteJSON(os.Stdout); jerr != nil && err == nil {
				err = jerr
			}
		}
		if terr := res.WriteTable(table); terr != nil && err == nil {
			err = terr
		}
	}
	return err
}

// benchCommandLine returns the command line as run, without the value of
// --postgres (a DSN may hold a password).
func benchCommandLine(args []string) string {
	out := []string{"scpgate", "bench"}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "postgres" {
			out = append(out, "--postgres=…")
			if !hasVal {
				i++
			}
			continue
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

// defaultDriverBin is the driver-only build beside the program exe
// (scpgate-driver, as in the image), or exe itself.
func defaultDriverBin(exe string) string {
	bin := filepath.Join(filepath.Dir(exe), "scpgate-driver")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return bin
	}
	return exe
}
