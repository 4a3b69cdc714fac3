package main_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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
