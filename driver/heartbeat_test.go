package driver_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/scpbridge"
)

// TestHeartbeat: the driver pings an idle controller, and closes one that
// stops answering with heartbeat_timeout (bye heartbeat).
func TestHeartbeat(t *testing.T) {
	e := newEnv(t)
	d := e.startDriver("d1", func(o *driver.Options) {
		o.Timing = scpbridge.Timing{Handshake: time.Second, Heartbeat: 200 * time.Millisecond, OfflineTime: 800 * time.Millisecond}
	})
	r := dialRaw(t, d.Addr().String())
	r.hello("HB1", 1)
	if w := r.cs.Welcome; w.HeartbeatMS != 200 || w.OfflineMS != 800 {
		t.Errorf("welcome %+v, want heartbeat 200 ms, offline 800 ms", w)
	}
	start := time.Now()
	if ft, err := r.next(time.Second); err != nil || ft != scpbridge.FramePing {
		t.Fatalf("idle session: got %s, %v; want a ping", ft, err)
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Errorf("first ping after %s, want about one heartbeat (200ms)", el)
	}
	// Stay silent: no pong, nothing.
	var bye *scpbridge.Bye
	for {
		ft, err := r.next(3 * time.Second)
		if err != nil {
			break
		}
		if ft == scpbridge.FrameBye {
			b := r.cs.Bye
			bye = &b
		}
	}
	if bye == nil || bye.Reason != scpbridge.ByeHeartbeat {
		t.Errorf("silent controller got bye %+v, want heartbeat_timeout", bye)
	}
	r.conn.Close()
	natstest.CheckFor(t, 3*time.Second, 10*time.Millisecond, func() error {
		if n := d.Stats().Closed(scpgate.ReasonHeartbeatTimeout); n != 1 {
			return fmt.Errorf("closed heartbeat_timeout: %d", n)
		}
		return nil
	})
}
