package sim_test

import (
	"fmt"
	"time"

	"github.com/scpgate/scpgate/sim"
)

// The reconnect delay is drawn uniformly below a ceiling that doubles per
// failed attempt, up to Max.
func ExampleBackoffConfig_Ceiling() {
	b := sim.BackoffConfig{Min: 250 * time.Millisecond, Max: 30 * time.Second}
	for attempt := 0; attempt < 9; attempt++ {
		fmt.Print(b.Ceiling(attempt), " ")
	}
	fmt.Println()
	// Output: 250ms 500ms 1s 2s 4s 8s 16s 30s 30s
}

// A fleet names its controllers from a prefix and an index; the slices of
// a fleet split over processes start at different indexes.
func ExampleFleetConfig_Serial() {
	cfg := sim.FleetConfig{SerialPrefix: "LOBBY-", FirstIndex: 18000}
	fmt.Println(cfg.Serial(cfg.FirstIndex), cfg.Serial(cfg.FirstIndex+1))
	// Output: LOBBY-018000 LOBBY-018001
}
