//go:build !driveronly

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scpgate/scpgate/internal/natstest"
)

// readmeDevArgs returns the arguments of `scpgate dev` in the README's
// first command, the one a new user runs first.
func readmeDevArgs(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cmd, _, _ := strings.Cut(line, "#")
		fields := strings.Fields(cmd)
		if len(fields) < 4 || strings.Join(fields[:4], " ") != "go run ./cmd/scpgate dev" {
			t.Fatalf("README's first command is %q, want go run ./cmd/scpgate dev ...", line)
		}
		return fields[4:]
	}
	t.Fatal("README has no command")
	return nil
}

// devGet GETs url into v; a status other than 200 is an error.
func devGet(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s (%v)", url, resp.Status, b, err)
	}
	return json.Unmarshal(b, v)
}

// TestDev runs the README's first command (`scpgate dev --sim N`) in this
// process, on ports the system chooses, and uses the system it starts:
// events stored and queryable, controllers listed online, a command
// answered, a controller's state; then Ctrl-C (its context) stops it
// cleanly. With --tls the controller port serves the dev CA written under
// --data.
func TestDev(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system")
	}
	readme := readmeDevArgs(t)
	for _, withTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", withTLS), func(t *testing.T) {
			data := t.TempDir()
			args := append(append([]string{}, readme...), "--data", data, "--sim", "5", "--sim-rate", "20",
				"--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--nats-port", "-1", "--status-every", "1s")
			if withTLS {
				args = append(args, "--tls")
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type addrs struct{ ctrl, web string }
			running := make(chan addrs, 1)
			exited := make(chan error, 1)
			go func() {
				exited <- runDevWith(ctx, args, devHooks{logTo: io.Discard, running: func(c, h string) { running <- addrs{c, h} }})
			}()
			var a addrs
			select {
			case a = <-running:
			case err := <-exited:
				t.Fatalf("dev %v: %v", args, err)
			case <-time.After(60 * time.Second):
				t.Fatal("dev not running after 60 s")
			}
			base := "http://" + a.web

			natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
				var r map[string]any
				return devGet(base+"/readyz", &r)
			})
			var api struct {
				OpenAPI string `json:"openapi"`
			}
			if err := devGet(base+"/openapi.json", &api); err != nil || api.OpenAPI != "3.1.0" {
				t.Errorf("/openapi.json: %q, %v; want the OpenAPI 3.1 document", api.OpenAPI, err)
			}
			var list struct {
				Controllers []struct {
					Serial string `json:"controller"`
					Online bool   `json:"online"`
				} `json:"controllers"`
			}
			natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
				if err := devGet(base+"/v1/controllers", &list); err != nil {
					return err
				}
				online := 0
				for _, c := range list.Controllers {
					if c.Online {
						online++
					}
				}
				if online != 5 {
					return fmt.Errorf("%d of 5 controllers online: %+v", online, list.Controllers)
				}
				return nil
			})
			serial := list.Controllers[0].Serial
			natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
				var page struct {
					Events []struct {
						Kind string `json:"kind"`
					} `json:"events"`
				}
				if err := devGet(base+"/v1/controllers/"+serial+"/events?limit=50", &page); err != nil {
					return err
				}
				for _, ev := range page.Events {
					if ev.Kind != "presence" {
						return nil
					}
				}
				return fmt.Errorf("no transaction event of %s yet (%d events)", serial, len(page.Events))
			})

			resp, err := http.Post(base+"/v1/controllers/"+serial+"/commands?wait=10s", "application/json",
				strings.NewReader(`{"type":"id_request"}`))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var sub struct {
				Status   string `json:"status"`
				Finished string `json:"finished"`
			}
			if err := json.Unmarshal(b, &sub); err != nil || sub.Status != "ok" || sub.Finished == "" {
				t.Fatalf("command: %s %s (%v); want a result ok", resp.Status, b, err)
			}
			natstest.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
				var state struct {
					Online bool `json:"online"`
				}
				if err := devGet(base+"/v1/controllers/"+serial+"/state", &state); err != nil {
					return err
				}
				if !state.Online {
					return fmt.Errorf("state of %s: %+v, want online", serial, state)
				}
				return nil
			})

			if withTLS {
				pem, err := os.ReadFile(filepath.Join(data, "tls", "ca.crt"))
				if err != nil {
					t.Fatal(err)
				}
				pool := x509.NewCertPool()
				pool.AppendCertsFromPEM(pem)
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", a.ctrl, &tls.Config{RootCAs: pool, ServerName: "localhost"})
				if err != nil {
					t.Fatalf("TLS handshake with the controller port, trusting --data/tls/ca.crt: %v", err)
				}
				c.Close()
			}

			cancel() // Ctrl-C
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("scpgate dev after Ctrl-C: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("scpgate dev still running 30 s after Ctrl-C")
			}
		})
	}
}
