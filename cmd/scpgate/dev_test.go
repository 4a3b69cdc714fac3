package main_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freeAddr returns a loopback address with a port free at the time of the
// call.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// eventually polls f every 100 ms until it returns nil or d passed.
func eventually(t *testing.T, what string, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// getJSON GETs url into v; a status other than 200 is an error.
func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return json.Unmarshal(b, v)
}

// TestDev runs the README's first command as a user would (`scpgate dev`
// with a simulated fleet, here on free ports) and uses the system it
// starts: events stored and queryable, controllers listed online, a
// command answered, a controller's state; then Ctrl-C stops it cleanly.
// With --tls the controller port serves the dev CA written under --data.
func TestDev(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the whole system")
	}
	bin := filepath.Join(t.TempDir(), "scpgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, withTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", withTLS), func(t *testing.T) {
			data := t.TempDir()
			ctrl, web := freeAddr(t), freeAddr(t)
			args := []string{"dev", "--data", data, "--sim", "5", "--sim-rate", "20", "--listen", ctrl,
				"--http", web, "--nats-port", "-1", "--status-every", "1s"}
			if withTLS {
				args = append(args, "--tls")
			}
			cmd := exec.Command(bin, args...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			stopped := false
			defer func() {
				if !stopped {
					_ = cmd.Process.Kill()
					<-exited
				}
				if t.Failed() {
					t.Logf("scpgate dev output:\n%s", out.String())
				}
			}()
			base := "http://" + web

			eventually(t, "ready", 30*time.Second, func() error {
				resp, err := http.Get(base + "/readyz")
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("/readyz: %s", resp.Status)
				}
				return nil
			})
			var api struct {
				OpenAPI string `json:"openapi"`
			}
			if err := getJSON(base+"/openapi.json", &api); err != nil || api.OpenAPI != "3.1.0" {
				t.Errorf("/openapi.json: %q, %v; want the OpenAPI 3.1 document", api.OpenAPI, err)
			}
			var list struct {
				Controllers []struct {
					Serial string `json:"controller"`
					Online bool   `json:"online"`
				} `json:"controllers"`
			}
			eventually(t, "fleet online", 30*time.Second, func() error {
				if err := getJSON(base+"/v1/controllers", &list); err != nil {
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
			eventually(t, "events stored and queryable", 30*time.Second, func() error {
				var page struct {
					Events []struct {
						Kind string `json:"kind"`
					} `json:"events"`
				}
				if err := getJSON(base+"/v1/controllers/"+serial+"/events?limit=50", &page); err != nil {
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
			var state struct {
				Serial string `json:"controller"`
				Online bool   `json:"online"`
			}
			eventually(t, "state", 10*time.Second, func() error {
				if err := getJSON(base+"/v1/controllers/"+serial+"/state", &state); err != nil {
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
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ctrl, &tls.Config{RootCAs: pool, ServerName: "localhost"})
				if err != nil {
					t.Fatalf("TLS handshake with the controller port, trusting --data/tls/ca.crt: %v", err)
				}
				c.Close()
			}

			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				stopped = true
				if err != nil {
					t.Fatalf("scpgate dev after Ctrl-C: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("scpgate dev still running 30 s after Ctrl-C")
			}
		})
	}
}
