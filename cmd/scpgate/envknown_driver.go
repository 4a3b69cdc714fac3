//go:build driveronly

package main

// otherRolesEnv returns the SCPGATE_ variables of the roles other than
// the driver, which a driver-only build does not link: the list kept in
// driverOnlyOtherEnv.
func otherRolesEnv() []string { return driverOnlyOtherEnv }
