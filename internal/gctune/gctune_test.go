package gctune_test

import (
	"os"
	"runtime/debug"
	"testing"

	"github.com/scpgate/scpgate/internal/gctune"
)

func TestApply(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })

	t.Setenv("GOGC", "") // set, even if empty: the runtime's choice stands
	debug.SetGCPercent(80)
	if got, env := gctune.Apply(gctune.DriverPercent); got != 80 || !env {
		t.Errorf("with GOGC set: Apply = %d, %v; want 80 (unchanged), true", got, env)
	}
}

func TestApplyDefault(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	t.Setenv("GOGC", "x") // restored after the test
	os.Unsetenv("GOGC")

	if got, env := gctune.Apply(gctune.DriverPercent); got != gctune.DriverPercent || env {
		t.Errorf("without GOGC: Apply = %d, %v; want %d, false", got, env, gctune.DriverPercent)
	}
	if cur := debug.SetGCPercent(100); cur != gctune.DriverPercent {
		t.Errorf("GC percent in effect %d, want %d", cur, gctune.DriverPercent)
	}
}
