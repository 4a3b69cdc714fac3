package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// phaseProfile profiles this process's CPU (the embedded NATS server
// above all) into <Options.PhaseProfiles>/<name>.prof until the returned
// function is called, so that a phase's profile can be compared with its
// baseline's; without PhaseProfiles it does nothing. A profile that cannot
// start is logged and skipped.
func (e *env) phaseProfile(name string) func() {
	if e.o.PhaseProfiles == "" {
		return func() {}
	}
	path := filepath.Join(e.o.PhaseProfiles, name+".prof")
	stop, err := StartCPUProfile(path)
	if err != nil {
		e.log.Warn().Err(err).Str("path", path).Msg("phase CPU profile not written")
		return func() {}
	}
	return stop
}

// StartCPUProfile profiles this process's CPU into path until the
// returned function is called.
func StartCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start CPU profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
