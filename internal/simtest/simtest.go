// Package simtest runs simulated controllers (package sim) inside tests:
// each runs until the test ends or it is stopped, and an error of its Run
// fails the test.
package simtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/scpgate/scpgate/sim"
)

// stopTimeout bounds how long a stop waits for Run to return.
const stopTimeout = 30 * time.Second

// run runs fn until the returned stop is called or the test ends; stop
// cancels it and waits for it, failing the test with what's error.
func run(t testing.TB, what string, fn func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s: %v", what, err)
				}
			case <-time.After(stopTimeout):
				t.Errorf("%s did not stop within %s", what, stopTimeout)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// RunFleet runs f until stop is called or the test ends.
func RunFleet(t testing.TB, f *sim.Fleet) (stop func()) {
	return run(t, "fleet", f.Run)
}

// RunController runs c until stop is called or the test ends.
func RunController(t testing.TB, c *sim.Controller) (stop func()) {
	return run(t, "controller "+c.Serial(), c.Run)
}
