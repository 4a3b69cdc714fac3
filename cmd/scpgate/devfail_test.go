package main_test

import (
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDevPortInUse checks that each address of dev that is taken is named
// with the flag that changes it, before anything starts.
func TestDevPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"listen flag", []string{"--listen", addr}, nil, "--listen or SCPGATE_LISTEN"},
		{"listen env", nil, []string{"SCPGATE_LISTEN=" + addr}, "--listen or SCPGATE_LISTEN"},
		{"http", []string{"--http", addr}, nil, "--http or SCPGATE_HTTP_LISTEN"},
		{"nats", []string{"--nats-port", port}, nil, "--nats-port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"dev", "--data", t.TempDir()}
			if tt.name != "listen flag" && tt.name != "listen env" {
				args = append(args, "--listen", freeAddr(t))
			}
			if tt.name != "http" {
				args = append(args, "--http", freeAddr(t))
			}
			if tt.name != "nats" {
				args = append(args, "--nats-port", "-1")
			}
			_, stderr, code := runEnv(t, 30*time.Second, tt.env, append(args, tt.args...)...)
			if code != 1 || !strings.Contains(stderr, "port "+port+" is already in use") || !strings.Contains(stderr, tt.want) {
				t.Errorf("got exit code %d, stderr\n%s\nwant 1, port %s in use and %q", code, stderr, port, tt.want)
			}
		})
	}
}

// msTime matches a log line's timestamp with milliseconds.
var msTime = regexp.MustCompile(`"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}`)

// TestDevEnvAndSessionLines runs dev configured from the environment like
// the roles, with a small fleet: at debug level the sessions' own lines are
// shown at debug; at info they are left out and the status line counts
// them.
func TestDevEnvAndSessionLines(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system")
	}
	for _, level := range []string{"debug", "info"} {
		t.Run(level, func(t *testing.T) {
			web := freeAddr(t)
			env := []string{"SCPGATE_LISTEN=" + freeAddr(t), "SCPGATE_HTTP_LISTEN=" + web, "SCPGATE_LOG_LEVEL=" + level,
				"SCPGATE_DRAIN_RAET=5"}
			_, _, stderr := startEnv(t, env, "dev", "--data", t.TempDir(), "--sim", "3", "--nats-port", "-1", "--status-every", "500ms")
			eventually(t, "ready on SCPGATE_HTTP_LISTEN", 30*time.Second, func() error {
				code, reason, err := readyz(web)
				if err != nil {
					return err
				}
				if code != http.StatusOK {
					return fmt.Errorf("readyz %d %s", code, reason)
				}
				return nil
			})
			eventually(t, "status line with the sessions started", 30*time.Second, func() error {
				for _, line := range strings.Split(stderr.String(), "\n") {
					if !strings.Contains(line, `"message":"status"`) || !strings.Contains(line, `"online":3`) {
						continue
					}
					return nil
				}
				return fmt.Errorf("no status line with online 3 yet:\n%s", stderr)
			})
			out := stderr.String()
			var started int
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, `"message":"session started"`) {
					started++
					if !strings.Contains(line, `"level":"debug"`) {
						t.Errorf("session line not at debug: %s", line)
					}
				}
				if strings.Contains(line, `"message":"status"`) && strings.Contains(line, `"sessions_started":`) {
					if !strings.Contains(line, `"events_per_s":`) || strings.Contains(line, `"events_per_s":"`) {
						t.Errorf("status line without a numeric events_per_s: %s", line)
					}
				}
			}
			if want := map[string]bool{"debug": true, "info": false}[level]; (started > 0) != want {
				t.Errorf("level %s: got %d session started lines, want them shown: %v\n%s", level, started, want, out)
			}
			if !strings.Contains(out, `"variable":"SCPGATE_DRAIN_RAET"`) || !strings.Contains(out, `"did_you_mean":"SCPGATE_DRAIN_RATE"`) {
				t.Errorf("got stderr\n%s\nwant a warning of the unknown SCPGATE_DRAIN_RAET", out)
			}
			if !msTime.MatchString(out) {
				t.Errorf("got stderr\n%s\nwant millisecond timestamps", out)
			}
		})
	}
}
