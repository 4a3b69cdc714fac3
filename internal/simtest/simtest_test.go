package simtest_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/internal/simtest"
	"github.com/scpgate/scpgate/sim"
)

// TestRunFleetStops runs a fleet against a listener that takes its
// connections, and checks that stop ends it without error.
func TestRunFleetStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	f := sim.NewFleet(sim.FleetConfig{Count: 2, Controller: sim.Config{Target: ln.Addr().String()}})
	stop := simtest.RunFleet(t, f)
	n := 0
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		for {
			select {
			case c := <-accepted:
				defer c.Close()
				n++
			default:
				if n < 2 {
					return errNotYet
				}
				return nil
			}
		}
	})
	stop()
	stop() // a second stop is a no-op
}

var errNotYet = errors.New("fewer than 2 controllers connected")
