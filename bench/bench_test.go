package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/bench"
)

// childEnv marks a run of the test binary as a bench child process.
const childEnv = "SCPGATE_BENCH_TEST_CHILD"

// TestMain turns the test binary into a bench child process when the
// scenarios start one (see spawn).
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		if err := bench.RunChild(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
			os.Stderr.WriteString("bench child: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// spawn starts this test binary as a bench child.
func spawn(args []string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	return cmd
}

// runQuick runs scenario name in quick mode and fails the test on error;
// tune, if given, changes the options first.
func runQuick(t *testing.T, name string, p bench.Params, tune ...func(*bench.Options)) *bench.Result {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t))
	o := bench.Options{Quick: true, Spawn: spawn, Stderr: zerolog.NewTestWriter(t), Log: log, Command: "test " + name}
	for _, f := range tune {
		f(&o)
	}
	res, err := bench.Run(context.Background(), name, o, p)
	if res != nil {
		var b bytes.Buffer
		if werr := res.WriteTable(&b); werr != nil {
			t.Errorf("write table: %v", werr)
		}
		t.Logf("\n%s", &b)
	}
	if err != nil {
		t.Fatalf("bench %s: %v", name, err)
	}
	return res
}

// value returns the value of a row, failing the test without it.
func value(t *testing.T, r *bench.Result, metric string) float64 {
	t.Helper()
	row := r.Row(metric)
	if row == nil {
		t.Fatalf("%s: no row %q", r.Scenario, metric)
	}
	return row.Value
}

// positive fails unless every named row is above zero.
func positive(t *testing.T, r *bench.Result, metrics ...string) {
	t.Helper()
	for _, m := range metrics {
		if v := value(t, r, m); !(v > 0) {
			t.Errorf("%s: %s = %v, want > 0", r.Scenario, m, v)
		}
	}
}

func TestConnectionsQuick(t *testing.T) {
	// The empty driver is the driver-only build, as the image runs it.
	driverBin := filepath.Join(t.TempDir(), "scpgate-driver")
	if out, err := exec.Command("go", "build", "-tags", "driveronly", "-o", driverBin, "../cmd/scpgate").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags driveronly: %v\n%s", err, out)
	}
	r := runQuick(t, "connections", bench.Params{}, func(o *bench.Options) { o.DriverBin = driverBin })
	if got, want := value(t, r, "sessions established"), value(t, r, "controllers"); got != want {
		t.Errorf("sessions established %v, want %v", got, want)
	}
	positive(t, r, "connect rate", "driver RSS, empty", "goroutines per session", "empty driver RSS (driver command, settled)")
	if g := value(t, r, "goroutines per session"); g > 1.5 {
		t.Errorf("%.2f goroutines per idle session, want about one (no writer while idle)", g)
	}
	for _, row := range r.Rows {
		if row.Met != nil {
			t.Errorf("quick mode judged %q against its target", row.Metric)
		}
	}
}

func TestEventsQuick(t *testing.T) {
	r := runQuick(t, "events", bench.Params{})
	positive(t, r, "end to end, sustained", "raw JetStream publish, sustained", "end to end / raw", "event payload")
	for _, row := range r.Rows {
		if strings.HasPrefix(row.Metric, "latency samples") && row.Value <= 0 {
			t.Errorf("no latency measured: %+v", row)
		}
	}
}

func TestCommandsQuick(t *testing.T) {
	r := runQuick(t, "commands", bench.Params{})
	if ok, sent := value(t, r, "results ok"), value(t, r, "commands submitted"); ok != sent || sent == 0 {
		t.Errorf("%v of %v commands ended ok", ok, sent)
	}
	positive(t, r, "round trip p50", "round trip p99")
}

func TestStormQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two drivers and kills one")
	}
	r := runQuick(t, "storm", bench.Params{})
	for _, m := range []string{"storm 1: lost", "storm 1: duplicates", "storm 2: lost", "storm 2: duplicates"} {
		if v := value(t, r, m); v != 0 {
			t.Errorf("%s = %v, want 0", m, v)
		}
	}
	positive(t, r, "storm 1: raw JetStream publish", "storm 2: raw JetStream publish", "storm 1: stored", "storm 2: stored")
}

func TestIngestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("writes SQLite and PostgreSQL")
	}
	r := runQuick(t, "ingest", bench.Params{})
	positive(t, r, "sqlite: rows/s (backlog of 5,000)")
	if os.Getenv("SCPGATE_TEST_POSTGRES_DSN") != "" {
		found := false
		for _, row := range r.Rows {
			found = found || strings.HasPrefix(row.Metric, "postgres: rows/s")
		}
		if !found {
			t.Error("SCPGATE_TEST_POSTGRES_DSN is set but PostgreSQL was not measured")
		}
	}
}

func TestResultOutput(t *testing.T) {
	met := true
	r := &bench.Result{Scenario: "x", Machine: bench.ThisMachine(), Rows: []bench.Row{
		{Metric: "rate", Value: 1234567.891, Unit: "events/s", Target: ">= 4,000", Met: &met},
		{Metric: "small", Value: 0.012345, Unit: "ms"},
	}, Notes: []string{"a note"}}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1,234,568", "0.012", "yes", "- a note", "cores"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table\n%s\nwant it to contain %q", &table, want)
		}
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back bench.Result
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("decode JSON: %v", err)
	}
	if back.Row("rate") == nil || *back.Row("rate").Met != true || back.Machine.Cores == 0 {
		t.Errorf("JSON round trip lost fields: %+v", back)
	}
}

func TestUnknownScenario(t *testing.T) {
	if _, err := bench.Run(context.Background(), "nope", bench.Options{Spawn: spawn}, bench.Params{}); err == nil {
		t.Error("an unknown scenario ran")
	}
	if _, err := bench.Lookup("storm"); err != nil {
		t.Errorf("lookup storm: %v", err)
	}
}
