package driver_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
)

// TestSlowConsumer: a controller that stops reading (and floods pings, so
// the driver has answers to write) is closed as a slow consumer or on a
// write timeout, while the others keep getting their acks.
func TestSlowConsumer(t *testing.T) {
	e := newEnv(t)
	d := e.startDriver("d1", func(o *driver.Options) {
		o.SendQueue = 16
		o.WriteBuffer = 4096
		o.WriteTimeout = time.Second
	})
	addr := d.Addr().String()
	f := sim.NewFleet(sim.FleetConfig{Controller: simConfig(addr, ""), Count: 5, Ramp: 1000})
	f.SetRate(100)
	runFleet(t, f)
	waitSessions(t, d, 5) // else the frozen one can be closed before they connect

	r := dialRaw(t, addr)
	_ = r.conn.(*net.TCPConn).SetReadBuffer(4096)
	r.hello("FROZEN", 1)
	ping, _ := scpbridge.AppendFrame(nil, &scpbridge.Ping{Nonce: 1})
	batch := make([]byte, 0, len(ping)*1024)
	for range 1024 {
		batch = append(batch, ping...)
	}
	flood := make(chan error, 1)
	go func() {
		for {
			_ = r.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := r.conn.Write(batch); err != nil {
				flood <- err
				return
			}
		}
	}()
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		st := d.Stats()
		if st.Closed(scpgate.ReasonSlowConsumer)+st.Closed(scpgate.ReasonWriteError) != 1 {
			return fmt.Errorf("frozen controller not closed yet: %v", st.Closes)
		}
		return nil
	})
	r.conn.Close()
	<-flood

	f.SetRate(0)
	ctrls := f.Controllers()
	waitAcked(t, 10*time.Second, ctrls...)
	for _, c := range ctrls {
		if n := c.Stats().Sessions; n != 1 {
			t.Errorf("%s needed %d sessions, want 1", c.Serial(), n)
		}
	}
	st := d.Stats()
	t.Logf("closes %v", st.Closes)
}
