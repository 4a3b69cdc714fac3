package sim_test

import (
	"testing"

	"github.com/scpgate/scpgate/sim"
)

func TestOnIPv4Loopback(t *testing.T) {
	for target, want := range map[string]bool{
		"127.0.0.1:3001": true, "127.3.4.5:1": true, "localhost:3001": true,
		"[::1]:3001": false, "10.0.0.1:3001": false, "example.com:3001": false, "127.0.0.1": false,
	} {
		if got := sim.OnIPv4Loopback(target); got != want {
			t.Errorf("OnIPv4Loopback(%q) = %v, want %v", target, got, want)
		}
	}
}
