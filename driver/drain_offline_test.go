package driver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/sim"
)

// TestDrainWithoutNATS stops a driver while NATS is unreachable, with
// controllers connected and events unconfirmed: Drain returns by its
// deadline, give or take a small slack, instead of waiting for NATS.
func TestDrainWithoutNATS(t *testing.T) {
	e := newEnv(t)
	const deadline = 2 * time.Second
	d := e.startDriver("offline-drain", func(o *driver.Options) { o.DrainDeadline = deadline })
	var ctrls []*sim.Controller
	for i := range 5 {
		c := sim.NewController(simConfig(d.Addr().String(), fmt.Sprintf("OFF%d", i)))
		runController(t, c)
		ctrls = append(ctrls, c)
		c.Generate(5)
	}
	waitAcked(t, 10*time.Second, ctrls...)
	waitSessions(t, d, len(ctrls))

	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	for _, c := range ctrls {
		c.Generate(20) // never confirmed: NATS is gone
	}
	time.Sleep(200 * time.Millisecond) // let them be read and published into the void

	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- d.Drain(context.Background()) }()
	const slack = 2 * time.Second
	select {
	case err := <-done:
		took := time.Since(start)
		t.Logf("drain without NATS took %s (err %v)", took.Round(time.Millisecond), err)
		if took > deadline+slack {
			t.Errorf("drain took %s, want at most %s", took, deadline+slack)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("drain still running %s after it started, deadline %s", 2*time.Minute, deadline)
	}
}
