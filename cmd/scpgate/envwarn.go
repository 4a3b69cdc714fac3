package main

import (
	"os"
	"slices"
	"sync"

	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/internal/envcheck"
)

// ignoredEnv are SCPGATE_ prefixes read by something other than the
// binary: the compose file's own variables and the test suites'.
var ignoredEnv = []string{"SCPGATE_TEST_", "SCPGATE_IMAGE", "SCPGATE_VERSION"}

var (
	seenEnvMu sync.Mutex
	seenEnv   []string // variables of the config structs loaded so far
)

// rememberEnv adds the variables of spec to those known to this process.
func rememberEnv(prefix string, spec any) {
	seenEnvMu.Lock()
	defer seenEnvMu.Unlock()
	seenEnv = append(seenEnv, envcheck.Names(prefix, spec)...)
}

// knownEnv returns every SCPGATE_ variable that some command of scpgate
// reads, so that a variable meant for another role sharing the same
// environment (a compose anchor) is not reported.
func knownEnv() []string {
	var names []string
	names = append(names, envcheck.Names("SCPGATE", &driverConfig{})...)
	names = append(names, otherRolesEnv()...)
	seenEnvMu.Lock()
	names = append(names, seenEnv...)
	seenEnvMu.Unlock()
	slices.Sort(names)
	return slices.Compact(names)
}

// warnUnknownEnv logs one warning per SCPGATE_ variable of the
// environment that no setting reads, with the nearest known name.
func warnUnknownEnv(log zerolog.Logger) []string {
	known := knownEnv()
	unknown := envcheck.Unknown(os.Environ(), "SCPGATE", known, ignoredEnv...)
	for _, k := range unknown {
		ev := log.Warn().Str("variable", k)
		if near := envcheck.Closest(k, known); near != "" {
			ev = ev.Str("did_you_mean", near)
		}
		ev.Msg("unknown SCPGATE_ variable ignored; 'scpgate help <command>' lists the settings")
	}
	return unknown
}
