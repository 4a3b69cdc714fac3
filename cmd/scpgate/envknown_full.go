//go:build !driveronly

package main

import "github.com/scpgate/scpgate/internal/envcheck"

// otherRolesEnv returns the SCPGATE_ variables of the roles other than
// the driver, read from their config structs.
func otherRolesEnv() []string {
	var names []string
	for _, spec := range []any{&ingestConfig{}, &commanderConfig{}, &devEnv{}} {
		names = append(names, envcheck.Names("SCPGATE", spec)...)
	}
	return names
}
