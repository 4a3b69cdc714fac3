package driver_test

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/scpbridge"
)

// TestNoPingBeforeWelcome opens many sessions at once against a driver
// whose heartbeat loop runs as often as it can: the first frame every
// controller reads must be its welcome (protocol 7.1), never a ping.
func TestNoPingBeforeWelcome(t *testing.T) {
	// Widen the window between a session taking its serial and its
	// welcome well past the heartbeat loop's tick.
	defer driver.SetBeforeWelcome(func() { time.Sleep(30 * time.Millisecond) })()
	e := newEnv(t)
	d := e.startDriver("d1", func(o *driver.Options) {
		o.Timing = scpbridge.Timing{Handshake: 5 * time.Second, Heartbeat: time.Millisecond, OfflineTime: 10 * time.Second}
	})
	addr := d.Addr().String()
	const rounds, conns = 6, 100
	var early, other atomic.Int64
	var wg sync.WaitGroup
	for r := range rounds {
		for i := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				serial := fmt.Sprintf("PW%d-%d", r, i)
				first, err := firstFrame(addr, serial)
				switch {
				case err != nil:
					other.Add(1)
					t.Logf("%s: %v", serial, err)
				case first == scpbridge.FramePing:
					early.Add(1)
				case first != scpbridge.FrameWelcome:
					other.Add(1)
					t.Logf("%s: first frame %s", serial, first)
				}
			}()
		}
		wg.Wait()
	}
	if n := early.Load(); n != 0 {
		t.Errorf("%d of %d controllers got a ping before their welcome", n, rounds*conns)
	}
	if n := other.Load(); n != 0 {
		t.Errorf("%d of %d controllers did not get a welcome first", n, rounds*conns)
	}
}

// firstFrame says hello as serial and returns the type of the first frame
// the host sends back.
func firstFrame(addr, serial string) (scpbridge.FrameType, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	b, err := scpbridge.AppendFrame(nil, &scpbridge.Hello{Serial: serial, Model: "RAW-1", Firmware: "0.1", BootEpoch: 1, Log: scpbridge.LogStatus{Capacity: 1000}})
	if err != nil {
		return 0, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(b); err != nil {
		return 0, err
	}
	h, _, err := scpbridge.NewReader(c, 0).Next()
	if err != nil {
		return 0, errors.Join(errors.New("read first frame"), err)
	}
	return h.Type, nil
}
