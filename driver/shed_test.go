package driver_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sim"
)

// TestShed asks a running driver, over its micro endpoint, to release a
// number and then a fraction of its sessions: they close with reason shed
// after their events are stored and acknowledged, the controllers come
// back, and the driver never stops accepting.
func TestShed(t *testing.T) {
	e := newEnv(t)
	d := e.startDriver("shed-a", func(o *driver.Options) { o.DrainRate = 100 })
	var ctrls []*sim.Controller
	for i := range 6 {
		c := sim.NewController(simConfig(d.Addr().String(), fmt.Sprintf("SHED%02d", i)))
		runController(t, c)
		ctrls = append(ctrls, c)
	}
	waitSessions(t, d, 6)
	for _, c := range ctrls {
		c.Generate(20)
	}

	shed := func(req string) driver.ShedResponse {
		t.Helper()
		m, err := e.nc.Request(driver.ShedSubject("shed-a"), []byte(req), 5*time.Second)
		if err != nil {
			t.Fatalf("shed %s: %v", req, err)
		}
		if code := m.Header.Get("Nats-Service-Error-Code"); code != "" {
			t.Fatalf("shed %s: error %s %s", req, code, m.Header.Get("Nats-Service-Error"))
		}
		var resp driver.ShedResponse
		if err := json.Unmarshal(m.Data, &resp); err != nil {
			t.Fatalf("shed %s: %v: %s", req, err, m.Data)
		}
		return resp
	}
	closedShed := func(want uint64) {
		t.Helper()
		natstest.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
			if got := d.Stats().Closed(scpgate.ReasonShed); got != want {
				return fmt.Errorf("closed with reason shed: %d, want %d", got, want)
			}
			return nil
		})
	}

	if resp := shed(`{"sessions":2}`); resp.ID != "shed-a" || resp.Sessions != 6 || resp.Shed != 2 {
		t.Fatalf("shed 2: got %+v", resp)
	}
	closedShed(2)
	waitSessions(t, d, 6) // they reconnect (here: the only driver)
	if resp := shed(`{"fraction":0.5}`); resp.Shed != 3 {
		t.Fatalf("shed half: got %+v, want 3", resp)
	}
	closedShed(5)
	waitSessions(t, d, 6)
	waitAcked(t, 15*time.Second, ctrls...)

	st := d.Stats()
	if st.Draining || st.Closed(scpgate.ReasonDrained) != 0 || st.Closed(scpgate.ReasonShutdown) != 0 {
		t.Errorf("after shedding: draining %v, drained %d, shutdown %d; want a running driver and only shed closes",
			st.Draining, st.Closed(scpgate.ReasonDrained), st.Closed(scpgate.ReasonShutdown))
	}
	if r := d.Ready(); !r.Ready {
		t.Errorf("after shedding: not ready: %+v", r)
	}

	for _, bad := range []string{`{}`, `{"sessions":1,"fraction":0.5}`, `{"fraction":1.5}`, `nope`} {
		m, err := e.nc.Request(driver.ShedSubject("shed-a"), []byte(bad), 5*time.Second)
		if err != nil {
			t.Fatalf("shed %s: %v", bad, err)
		}
		if code := m.Header.Get("Nats-Service-Error-Code"); code != "400" || !strings.Contains(m.Header.Get("Nats-Service-Error"), "shed") {
			t.Errorf("shed %s: got error %q %q, want 400", bad, code, m.Header.Get("Nats-Service-Error"))
		}
	}
}
