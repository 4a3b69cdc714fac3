//go:build !race

package driver_test

// raceEnabled reports whether the race detector is on: it changes
// allocation counts.
const raceEnabled = false
