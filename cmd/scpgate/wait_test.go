package main_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/scpgate/scpgate/internal/natstest"
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
	natstest.CheckFor(t, d, 100*time.Millisecond, func() error {
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}
