package driver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sim"
)

// TestHTTPAndService: /healthz, /readyz, the micro service's info and the
// sessions endpoint.
func TestHTTPAndService(t *testing.T) {
	e := newEnv(t)
	d := e.startDriver("d-http", nil)
	c := sim.NewController(simConfig(d.Addr().String(), "HTTP1"))
	runController(t, c)
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if len(d.Sessions()) != 1 {
			return fmt.Errorf("no session yet")
		}
		return nil
	})

	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/stats": 200} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}

	msg, err := e.nc.Request(driver.SessionsSubject("d-http"), nil, 2*time.Second)
	if err != nil {
		t.Fatalf("sessions request: %v", err)
	}
	if got := string(msg.Data); got != `["HTTP1"]` {
		t.Errorf("sessions endpoint: %s, want [\"HTTP1\"]", got)
	}
	info, err := e.nc.Request("$SRV.INFO."+driver.ServiceName, nil, 2*time.Second)
	if err != nil {
		t.Fatalf("micro info: %v", err)
	}
	if !strings.Contains(string(info.Data), `"id":"d-http"`) || !strings.Contains(string(info.Data), `"controller_port"`) {
		t.Errorf("micro info %s lacks id or controller_port", info.Data)
	}
	stats, err := e.nc.Request("$SRV.STATS."+driver.ServiceName, nil, 2*time.Second)
	if err != nil {
		t.Fatalf("micro stats: %v", err)
	}
	if !strings.Contains(string(stats.Data), `"sessions":1`) {
		t.Errorf("micro stats %s lacks sessions:1", stats.Data)
	}

	// Draining: readyz turns 503 with a reason.
	go func() { _ = d.Drain(context.Background()) }()
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return fmt.Errorf("readyz %d while draining", resp.StatusCode)
		}
		return nil
	})
	if r := d.Ready(); r.Reason != "draining" {
		t.Errorf("readiness reason %q, want draining", r.Reason)
	}
}
