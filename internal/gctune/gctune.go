// Package gctune sets the garbage collector's target for processes that
// hold many idle connections, such as a driver.
//
// With Go's default (GOGC=100) the heap may grow to twice what is live
// before a collection, and the runtime keeps the memory it grew into. A
// driver's live memory is mostly its idle sessions (goroutine stacks and
// small records), so that headroom is most of its resident memory:
// measured with 19,000 idle sessions, 9.2-9.6 KB per session at GOGC=100
// against 7.7 KB at GOGC=50 (docs/benchmarks.md). Idle sessions hardly
// allocate, so collecting at half the headroom costs almost nothing at
// idle; under a full event load it costs some CPU, also measured there.
package gctune

import (
	"os"
	"runtime/debug"
)

// DriverPercent is the GC target of driver processes unless GOGC is set.
const DriverPercent = 50

// Apply sets the GC target to percent unless the GOGC environment
// variable is set, which always wins. It returns the target in effect and
// whether it came from GOGC.
func Apply(percent int) (inEffect int, fromEnv bool) {
	if _, ok := os.LookupEnv("GOGC"); ok {
		cur := debug.SetGCPercent(100)
		debug.SetGCPercent(cur)
		return cur, true
	}
	debug.SetGCPercent(percent)
	return percent, false
}
