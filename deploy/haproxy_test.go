package deploy_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/internal/simtest"
	"github.com/scpgate/scpgate/sim"
)

// TestHAProxyFailover runs deploy/haproxy/haproxy.cfg for real in front of
// three `scpgate driver` processes on one embedded JetStream server, with
// a simulated fleet dialling HAProxy. One driver drains (SIGTERM), another
// is killed (SIGKILL): every controller must end up connected to the last
// driver through HAProxy, and SCP_EVENTS must hold every generated event
// exactly once.
func TestHAProxyFailover(t *testing.T) {
	haproxy := haproxyPath()
	if haproxy == "" {
		if os.Getenv("SCPGATE_TEST_REQUIRE_HAPROXY") == "1" {
			t.Fatal("haproxy is not installed, and SCPGATE_TEST_REQUIRE_HAPROXY=1")
		}
		t.Skip("haproxy is not installed (set SCPGATE_TEST_REQUIRE_HAPROXY=1 to fail instead)")
	}
	if testing.Short() {
		t.Skip("runs processes for about 20 s")
	}
	const controllers = 200

	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js := natstest.JetStream(t, nc)
	bin := scpgateBinary(t)

	ports := freePorts(t, 8)
	lbPort, statsPort := ports[0], ports[1]
	names := []string{"driver-1", "driver-2", "driver-3"}
	addrs := map[string]driverAddr{}
	drivers := map[string]*proc{}
	for i, name := range names {
		a := driverAddr{listen: ports[2+i], http: ports[5+i]}
		addrs[name] = a
		drivers[name] = startProc(t, name, bin, []string{"driver"}, []string{
			"SCPGATE_DRIVER_ID=" + name,
			fmt.Sprintf("SCPGATE_LISTEN=127.0.0.1:%d", a.listen),
			fmt.Sprintf("SCPGATE_HTTP_LISTEN=127.0.0.1:%d", a.http),
			"NATS_URL=" + srv.ClientURL(),
			"SCPGATE_DRAIN_RATE=200",
			"SCPGATE_DRAIN_DEADLINE=8s",
			"SCPGATE_EVENTS_MAX_AGE=1h",
			"SCPGATE_DUPLICATE_WINDOW=10m",
			"SCPGATE_LOG_LEVEL=info",
		})
	}
	for _, name := range names {
		url := fmt.Sprintf("http://127.0.0.1:%d/readyz", addrs[name].http)
		checkFor(t, name+" ready", 20*time.Second, 50*time.Millisecond, func() error {
			if drivers[name].exited() {
				t.Fatalf("%s exited: %v\n%s", name, drivers[name].err, tail(drivers[name].log, 20))
			}
			return httpOK(url)
		})
	}

	text, err := readRepo(haproxyCfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(localHAProxyConfig(t, text, lbPort, statsPort, addrs)), 0o644); err != nil {
		t.Fatal(err)
	}
	lb := startProc(t, "haproxy", haproxy, []string{"-f", cfg, "-db"}, nil)
	statsURL := fmt.Sprintf("http://127.0.0.1:%d/stats;csv", statsPort)
	waitServers(t, lb, statsURL, "all drivers UP", map[string]string{"driver-1": "UP", "driver-2": "UP", "driver-3": "UP"})

	fleet := sim.NewFleet(sim.FleetConfig{
		Controller: sim.Config{
			Target:  fmt.Sprintf("127.0.0.1:%d", lbPort),
			Rate:    2,
			Backoff: sim.BackoffConfig{Min: 50 * time.Millisecond, Max: time.Second},
			Seed:    1,
			Log:     testLogger(t),
		},
		Count:        controllers,
		SerialPrefix: "LB",
		Ramp:         500,
	})
	stopFleet := simtest.RunFleet(t, fleet)

	sessions := func(name string) (int, error) {
		var st driver.Stats
		err := getJSON(fmt.Sprintf("http://127.0.0.1:%d/stats", addrs[name].http), &st)
		return st.Sessions, err
	}
	checkFor(t, "fleet connected over three drivers", 20*time.Second, 50*time.Millisecond, func() error {
		r := fleet.Report()
		per := map[string]int{}
		sum := 0
		for _, name := range names {
			n, err := sessions(name)
			if err != nil {
				return err
			}
			per[name], sum = n, sum+n
		}
		if r.Connected != controllers || sum != controllers || per["driver-1"] == 0 || per["driver-2"] == 0 || per["driver-3"] == 0 {
			return fmt.Errorf("%d of %d controllers connected; sessions per driver %v", r.Connected, controllers, per)
		}
		t.Logf("sessions per driver through HAProxy: %v", per)
		return nil
	})
	waitGenerated(t, fleet, 400)

	// A planned stop: the driver drains and exits cleanly.
	if err := drivers["driver-1"].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := drivers["driver-1"].wait(20 * time.Second); err != nil {
		t.Fatalf("driver-1 after SIGTERM: %v", err)
	}
	if !drivers["driver-1"].logContains(`"message":"drained"`) {
		t.Errorf("driver-1 did not log that it drained:\n%s", tail(drivers["driver-1"].log, 20))
	}
	waitGenerated(t, fleet, fleet.Report().Generated+200)

	// A crash.
	if err := drivers["driver-2"].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = drivers["driver-2"].wait(10 * time.Second)

	waitServers(t, lb, statsURL, "stopped drivers DOWN", map[string]string{"driver-1": "DOWN", "driver-2": "DOWN", "driver-3": "UP"})
	checkFor(t, "fleet back on driver-3", 30*time.Second, 50*time.Millisecond, func() error {
		r := fleet.Report()
		n, err := sessions("driver-3")
		if err != nil {
			return err
		}
		if r.Connected != controllers || n != controllers {
			return fmt.Errorf("%d of %d controllers connected, driver-3 holds %d sessions", r.Connected, controllers, n)
		}
		return nil
	})
	waitGenerated(t, fleet, fleet.Report().Generated+200)

	fleet.SetRate(0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := fleet.WaitAcked(ctx); err != nil {
		t.Fatalf("wait acked: %v; report %+v", err, fleet.Report())
	}
	stopFleet()
	r := fleet.Report()
	t.Logf("fleet: %+v", r)
	if r.DroppedOverflow != 0 {
		t.Errorf("%d transactions overwritten in the controllers' logs", r.DroppedOverflow)
	}
	checkExactlyOnce(t, js, fleet)
}

// waitGenerated waits until the fleet has generated at least n events.
func waitGenerated(t *testing.T, fleet *sim.Fleet, n uint64) {
	t.Helper()
	checkFor(t, fmt.Sprintf("%d events generated", n), 20*time.Second, 20*time.Millisecond, func() error {
		if g := fleet.Report().Generated; g < n {
			return fmt.Errorf("%d generated", g)
		}
		return nil
	})
}

// waitServers waits until HAProxy's stats show the drivers backend's
// servers in the given states (UP, DOWN, ...).
func waitServers(t *testing.T, lb *proc, statsURL, what string, want map[string]string) {
	t.Helper()
	checkFor(t, what, 20*time.Second, 100*time.Millisecond, func() error {
		if lb.exited() {
			t.Fatalf("haproxy exited: %v\n%s", lb.err, tail(lb.log, 20))
		}
		got, err := haproxyServers(statsURL)
		if err != nil {
			return err
		}
		for name, state := range want {
			if !strings.HasPrefix(got[name], state) {
				return fmt.Errorf("server states %v, want %v", got, want)
			}
		}
		return nil
	})
}

// haproxyServers reads the status of every server from HAProxy's CSV
// stats.
func haproxyServers(statsURL string) (map[string]string, error) {
	resp, err := http.Get(statsURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", statsURL, resp.Status)
	}
	r := csv.NewReader(resp.Body)
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read stats csv: %w", err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("empty stats csv")
	}
	col := -1
	for i, h := range rows[0] {
		if strings.TrimPrefix(h, "# ") == "status" {
			col = i
		}
	}
	if col < 0 {
		return nil, fmt.Errorf("stats csv has no status column: %v", rows[0])
	}
	out := map[string]string{}
	for _, row := range rows[1:] {
		if len(row) > col && row[1] != "FRONTEND" && row[1] != "BACKEND" {
			out[row[1]] = row[col]
		}
	}
	return out, nil
}

// httpOK GETs url and wants 200.
func httpOK(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// getJSON GETs url and decodes its JSON body into v.
func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
