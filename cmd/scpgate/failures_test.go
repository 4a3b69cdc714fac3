package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sim"
)

var (
	sharedBinOnce sync.Once
	sharedBinPath string
	sharedBinErr  error
)

// sharedBin builds scpgate once for the tests of this file.
func sharedBin(t *testing.T) string {
	t.Helper()
	sharedBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "scpgate-bin")
		if err != nil {
			sharedBinErr = err
			return
		}
		sharedBinPath = filepath.Join(dir, "scpgate")
		if out, err := exec.Command("go", "build", "-o", sharedBinPath, ".").CombinedOutput(); err != nil {
			sharedBinErr = errors.New(string(out))
		}
	})
	if sharedBinErr != nil {
		t.Fatalf("go build: %v", sharedBinErr)
	}
	return sharedBinPath
}

// runEnv runs scpgate with args and extra environment variables (on top of
// a clean one: no SCPGATE_ or NATS_ variable of the test's own) and waits
// for it at most d.
func runEnv(t *testing.T, d time.Duration, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, sharedBin(t), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("scpgate %v did not end within %s\nstdout:\n%s\nstderr:\n%s", args, d, &out, &errb)
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// cleanEnv is the test process's environment without SCPGATE_ and NATS_
// variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SCPGATE_") && !strings.HasPrefix(kv, "NATS_") {
			env = append(env, kv)
		}
	}
	return env
}

// deadNATS is a NATS URL where nothing listens.
func deadNATS(t *testing.T) string {
	return "NATS_URL=nats://" + freeAddr(t)
}

// TestConfigRefusedBeforeNATS checks that a store or a setting scpgate
// cannot use is refused at once, in plain words, before NATS is tried.
func TestConfigRefusedBeforeNATS(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{"mysql store", []string{"ingest"}, []string{"SCPGATE_DB=mysql://x"},
			[]string{`"mysql://x"`, "sqlite:PATH", "postgres://", "libpq"}},
		{"store flag", []string{"ingest", "--db", "data/scpgate"}, nil,
			[]string{`"data/scpgate"`, "ending in .db"}},
		{"negative drain rate", []string{"driver"}, []string{"SCPGATE_DRAIN_RATE=-5"},
			[]string{"SCPGATE_DRAIN_RATE=-5 is not allowed", "at least 0.01", "controllers per second"}},
		{"verbose log level", []string{"commander"}, []string{"SCPGATE_LOG_LEVEL=verbose"},
			[]string{"SCPGATE_LOG_LEVEL=verbose is not allowed", "one of trace, debug, info, warn, error"}},
		{"duration without unit", []string{"driver"}, []string{"SCPGATE_OFFLINE_TIME=15"},
			[]string{"SCPGATE_OFFLINE_TIME=15 is not allowed", "a duration with a unit"}},
		{"dev log level", []string{"dev", "--data", "d"}, []string{"SCPGATE_LOG_LEVEL=verbose"},
			[]string{"SCPGATE_LOG_LEVEL=verbose is not allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runEnv(t, 20*time.Second, append(tt.env, deadNATS(t)), tt.args...)
			if code != 1 {
				t.Errorf("got exit code %d, want 1\nstderr:\n%s", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("got stderr\n%s\nwant it to contain %q", stderr, w)
				}
			}
			if strings.Contains(strings.ToLower(stderr), "nats") {
				t.Errorf("got stderr\n%s\nwant the error before any NATS connection", stderr)
			}
		})
	}
}

// startEnv starts scpgate with args and env in the background; the process
// is stopped with SIGTERM (then killed) at the end of the test.
func startEnv(t *testing.T, env []string, args ...string) (*exec.Cmd, *natstest.Buffer, *natstest.Buffer) {
	t.Helper()
	var out, errb natstest.Buffer
	cmd := exec.Command(sharedBin(t), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return cmd, &out, &errb
}

// readyz returns the status code and reason of GET http://addr/readyz.
func readyz(addr string) (int, string, error) {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var body struct {
		Reason string `json:"reason"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return resp.StatusCode, "", err
	}
	return resp.StatusCode, body.Reason, nil
}

// TestNATSUnreachable starts each role against a NATS URL where nothing
// listens: the role says so at once (URL without the password, error),
// serves /readyz with reason "NATS not connected", and repeats the warning.
func TestNATSUnreachable(t *testing.T) {
	for _, role := range []string{"driver", "ingest", "commander"} {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			httpAddr := freeAddr(t)
			env := []string{"NATS_URL=nats://scpgate:s3cret@" + freeAddr(t), "SCPGATE_HTTP_LISTEN=" + httpAddr,
				"SCPGATE_LISTEN=" + freeAddr(t), "SCPGATE_DB=sqlite:store/x.db", "SCPGATE_LOG_LEVEL=info"}
			_, _, stderr := startEnv(t, env, role)
			eventually(t, "warning of an unreachable NATS", 15*time.Second, func() error {
				if !strings.Contains(stderr.String(), "NATS not reachable; retrying") {
					return fmt.Errorf("stderr so far:\n%s", stderr)
				}
				return nil
			})
			eventually(t, "/readyz reason", 15*time.Second, func() error {
				code, reason, err := readyz(httpAddr)
				if err != nil {
					return err
				}
				if code != http.StatusServiceUnavailable || reason != "NATS not connected" {
					return fmt.Errorf("got %d %q, want 503 %q", code, reason, "NATS not connected")
				}
				return nil
			})
			eventually(t, "repeated warning", 20*time.Second, func() error {
				if !strings.Contains(stderr.String(), "NATS still not reachable") {
					return fmt.Errorf("stderr so far:\n%s", stderr)
				}
				return nil
			})
			out := stderr.String()
			if strings.Contains(out, "s3cret") {
				t.Errorf("the NATS password is logged:\n%s", out)
			}
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "NATS not reachable; retrying") && !strings.Contains(line, "connection refused") {
					t.Errorf("got the first warning\n%s\nwant the connect error in it", line)
				}
			}
			if role == "ingest" && !strings.Contains(out, `"store":"sqlite"`) {
				t.Errorf("got stderr\n%s\nwant the store that was opened", out)
			}
		})
	}
}

// TestPortInUse checks that a role whose address is taken fails at once,
// naming the address, without waiting for NATS.
func TestPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	for _, tt := range []struct {
		role, env string
	}{
		{"driver", "SCPGATE_LISTEN=" + addr},
		{"driver", "SCPGATE_HTTP_LISTEN=" + addr},
		{"commander", "SCPGATE_HTTP_LISTEN=" + addr},
		{"ingest", "SCPGATE_HTTP_LISTEN=" + addr},
	} {
		_, stderr, code := runEnv(t, 20*time.Second, []string{tt.env, deadNATS(t), "SCPGATE_DB=x.db"}, tt.role)
		if code != 1 || !strings.Contains(stderr, "listen on "+addr) || !strings.Contains(stderr, "address already in use") {
			t.Errorf("%s with %s: got exit code %d, stderr\n%s\nwant 1 and the address in use", tt.role, tt.env, code, stderr)
		}
	}
}

// TestSimNoControllerConnected checks that a fleet none of whose
// controllers ever connected fails, with the report still on stdout.
func TestSimNoControllerConnected(t *testing.T) {
	target := freeAddr(t) // nothing listens
	stdout, stderr, code := runEnv(t, 30*time.Second, nil, "sim", "--target", target, "--controllers", "2", "--duration", "1s")
	if code != 1 || !strings.Contains(stderr, "no controller ever connected to "+target) {
		t.Fatalf("got exit code %d, stderr\n%s\nwant 1 and no controller connected", code, stderr)
	}
	var rep struct {
		Controllers int    `json:"controllers"`
		Sessions    uint64 `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep.Controllers != 2 || rep.Sessions != 0 {
		t.Fatalf("got report %s (%v), want 2 controllers and no session", stdout, err)
	}
}

// TestDrainCommand runs `scpgate drain` against a driver in this process:
// the sessions asked for are shed and come back; an unknown driver and a
// bad request are errors.
func TestDrainCommand(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s, nats.MaxReconnects(-1))
	d, err := driver.New(driver.Options{ID: "cli-drain", Listen: "127.0.0.1:0", NATS: nc, DrainRate: 100, ReconnectAfterMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fleet := sim.NewFleet(sim.FleetConfig{Count: 4, SerialPrefix: "DRN", Controller: sim.Config{Target: d.Addr().String(),
		Backoff: sim.BackoffConfig{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}}})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = fleet.Run(runCtx) }()
	defer func() { stop(); <-done }()
	eventually(t, "4 sessions", 15*time.Second, func() error {
		if n := d.Stats().Sessions; n != 4 {
			return fmt.Errorf("%d sessions", n)
		}
		return nil
	})
	env := []string{"NATS_URL=" + s.ClientURL()}

	stdout, stderr, code := runEnv(t, 30*time.Second, env, "drain", "--driver", "cli-drain", "--fraction", "0.5", "--json")
	var resp driver.ShedResponse
	if code != 0 || json.Unmarshal([]byte(stdout), &resp) != nil || resp.Shed != 2 || resp.Sessions != 4 {
		t.Fatalf("drain: exit code %d, stdout %q, stderr\n%s\nwant 2 of 4 shed", code, stdout, stderr)
	}
	eventually(t, "2 sessions shed and back", 15*time.Second, func() error {
		st := d.Stats()
		if st.Closed(scpgate.ReasonShed) != 2 || st.Sessions != 4 {
			return fmt.Errorf("shed %d, sessions %d", st.Closed(scpgate.ReasonShed), st.Sessions)
		}
		return nil
	})
	stdout, _, code = runEnv(t, 30*time.Second, env, "drain", "--driver", "cli-drain", "--sessions", "1")
	if code != 0 || !strings.Contains(stdout, "driver cli-drain: releasing 1 of 4 sessions") {
		t.Errorf("drain --sessions 1: exit code %d, stdout %q", code, stdout)
	}

	_, stderr, code = runEnv(t, 30*time.Second, env, "drain", "--driver", "nope", "--sessions", "1", "--timeout", "1s")
	if code != 1 || !strings.Contains(stderr, "ask driver nope") {
		t.Errorf("drain of an unknown driver: exit code %d, stderr\n%s", code, stderr)
	}
	_, stderr, code = runEnv(t, 30*time.Second, env, "drain", "--driver", "cli-drain", "--sessions", "1", "--fraction", "0.5")
	if code != 2 || !strings.Contains(stderr, "give one of --sessions") {
		t.Errorf("drain with both: exit code %d, stderr\n%s", code, stderr)
	}
}
