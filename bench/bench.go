package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/rs/zerolog"
)

// Options are what every scenario shares: where NATS and the driver are,
// how to start child processes, and the mode.
type Options struct {
	// NATS is the URL of the NATS server to measure; empty starts an
	// embedded server with JetStream in a temporary directory (or DataDir).
	// Against an external server the scenarios write into the scpgate
	// streams and never purge them: use a dedicated server.
	NATS string
	// Target is host:port of a driver (or load balancer) started outside
	// the bench; empty starts drivers as child processes. Figures that need
	// the driver's process (memory, CPU, killing it) are then left out.
	Target string
	// DataDir holds the embedded server's store; empty: a temporary
	// directory, removed at the end.
	DataDir string
	// Quick runs each scenario small and for a few seconds, to prove it
	// works; its figures are not judged against the targets.
	Quick bool
	// Pprof makes every driver child serve net/http/pprof on a loopback
	// port (logged at warn level).
	Pprof bool
	// PhaseProfiles, when set, is a directory that receives a CPU profile
	// of the bench process for each measured phase of events and storm
	// (raw-1.prof, e2e-1.prof, storm-1.prof, ...), to compare the embedded
	// server's work behind the driver with its work behind the raw
	// publisher. It cannot be combined with a profile of the whole run.
	PhaseProfiles string
	// Spawn returns the command running a bench child process with args
	// (RunChild must receive args). Required.
	Spawn func(args []string) *exec.Cmd
	// DriverEnv is added to the environment of driver children
	// ("GOGC=50", say), to measure a driver as it would be deployed.
	DriverEnv []string
	// DriverBin is a binary with the driver command (scpgate, or its
	// driver-only build scpgate-driver) whose empty driver the
	// connections scenario measures against its memory target; empty:
	// not measured.
	DriverBin string
	// Stderr receives the children's logs. Default os.Stderr.
	Stderr io.Writer
	// ChildLogLevel is the log level of the children. Default "warn".
	ChildLogLevel string
	// Log receives the scenario's progress.
	Log zerolog.Logger
	// Command is the command line recorded in the result.
	Command string
}

// Params size a scenario. Zero fields take the scenario's defaults
// (DefaultParams); each scenario reads only some of them.
type Params struct {
	// Controllers is the number of simulated controllers.
	Controllers int `json:"controllers,omitempty"`
	// Events is the number of events (events: per run; ingest: for rows/s).
	Events int `json:"events,omitempty"`
	// Buffered is the number of transactions each controller holds before
	// it connects (storm).
	Buffered int `json:"buffered,omitempty"`
	// Rate is commands/s (commands), events/s (ingest lag, events latency;
	// 0 in events means a tenth of the measured maximum).
	Rate float64 `json:"rate,omitempty"`
	// Duration is how long a steady rate is held (commands, ingest lag,
	// events latency).
	Duration time.Duration `json:"duration,omitempty"`
	// Window is the CPU measurement window at idle (connections).
	Window time.Duration `json:"window,omitempty"`
	// Ramp is the connect rate the fleet aims at (controllers/s).
	Ramp float64 `json:"ramp,omitempty"`
	// Postgres is the DSN of the PostgreSQL database (ingest); empty reads
	// SCPGATE_TEST_POSTGRES_DSN, and without either PostgreSQL is skipped.
	Postgres string `json:"-"`
}

// Scenario is one benchmark.
type Scenario struct {
	Name    string
	Summary string
	// Full and Quick are the default Params of a full and a quick run.
	Full, Quick Params
	// Timeout bounds a full run (a quick one gets two minutes).
	Timeout time.Duration
	run     func(ctx context.Context, e *env, p Params, r *Result) error
}

// Scenarios lists every scenario, in the order of the docs.
func Scenarios() []Scenario {
	return []Scenario{
		{Name: "connections", Summary: "empty driver RSS; ramp N controllers into one driver: connect rate, RSS per idle session, idle CPU",
			Full:    Params{Controllers: 19_000, Window: 10 * time.Second, Ramp: 10_000},
			Quick:   Params{Controllers: 200, Window: 2 * time.Second, Ramp: 5_000},
			Timeout: 5 * time.Minute, run: runConnections},
		{Name: "events", Summary: "highest sustained event rate with ack-after-persist, next to raw JetStream publishing; publish-to-ack latency",
			Full:    Params{Controllers: 1_000, Events: 500_000, Duration: 20 * time.Second, Ramp: 5_000},
			Quick:   Params{Controllers: 20, Events: 10_000, Duration: 2 * time.Second, Ramp: 5_000},
			Timeout: 10 * time.Minute, run: runEvents},
		{Name: "commands", Summary: "command round trip (HTTP submit with ?wait to result) at a steady rate",
			Full:    Params{Controllers: 10_000, Rate: 1_000, Duration: 30 * time.Second, Ramp: 10_000},
			Quick:   Params{Controllers: 50, Rate: 100, Duration: 2 * time.Second, Ramp: 5_000},
			Timeout: 5 * time.Minute, run: runCommands},
		{Name: "storm", Summary: "controllers with buffered transactions connect at once, then again after a driver is killed",
			Full:    Params{Controllers: 5_000, Buffered: 1_000, Ramp: 100_000},
			Quick:   Params{Controllers: 40, Buffered: 100, Ramp: 100_000},
			Timeout: 20 * time.Minute, run: runStorm},
		{Name: "ingest", Summary: "rows/s into SQLite and PostgreSQL, and lag at a steady event rate",
			Full:    Params{Events: 200_000, Rate: 5_000, Duration: 30 * time.Second},
			Quick:   Params{Events: 5_000, Rate: 1_000, Duration: 2 * time.Second},
			Timeout: 10 * time.Minute, run: runIngest},
	}
}

// ErrUnknownScenario is returned by Run for a name not in Scenarios.
var ErrUnknownScenario = errors.New("unknown scenario")

// Lookup returns the scenario called name.
func Lookup(name string) (Scenario, error) {
	for _, s := range Scenarios() {
		if s.Name == name {
			return s, nil
		}
	}
	return Scenario{}, fmt.Errorf("%w %q", ErrUnknownScenario, name)
}

// withDefaults fills the zero fields of p from the scenario's defaults.
func (s Scenario) withDefaults(p Params, quick bool) Params {
	d := s.Full
	if quick {
		d = s.Quick
	}
	if p.Controllers == 0 {
		p.Controllers = d.Controllers
	}
	if p.Events == 0 {
		p.Events = d.Events
	}
	if p.Buffered == 0 {
		p.Buffered = d.Buffered
	}
	if p.Rate == 0 {
		p.Rate = d.Rate
	}
	if p.Duration == 0 {
		p.Duration = d.Duration
	}
	if p.Window == 0 {
		p.Window = d.Window
	}
	if p.Ramp == 0 {
		p.Ramp = d.Ramp
	}
	if p.Postgres == "" {
		p.Postgres = os.Getenv("SCPGATE_TEST_POSTGRES_DSN")
	}
	return p
}

// Run runs the scenario called name: it sets up NATS and the child
// processes, measures, and tears everything down, within the scenario's
// time bound. The result is returned even when err is not nil, with what
// was measured until then.
func Run(ctx context.Context, name string, o Options, p Params) (*Result, error) {
	s, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	if o.Spawn == nil {
		return nil, errors.New("bench: Options.Spawn is required")
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.ChildLogLevel == "" {
		o.ChildLogLevel = "warn"
	}
	p = s.withDefaults(p, o.Quick)
	timeout := s.Timeout
	if o.Quick {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := &Result{Scenario: name, Command: o.Command, Quick: o.Quick, Machine: ThisMachine(), Started: time.Now(), Params: p,
		DriverEnv: o.DriverEnv}
	e, err := newEnv(ctx, o)
	if err != nil {
		return r, err
	}
	err = s.run(ctx, e, p, r)
	if cerr := e.close(); err == nil {
		err = cerr
	}
	r.Seconds = time.Since(r.Started).Seconds()
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("scenario %s did not finish within %s: %w", name, timeout, err)
	}
	return r, err
}

// errIncomplete is wrapped by scenarios whose run ended short of what it
// set out to measure (sessions missing, events unacknowledged).
var errIncomplete = errors.New("bench: incomplete run")
