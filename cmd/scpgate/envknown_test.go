package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/scpgate/scpgate/internal/envcheck"
)

// TestDriverOnlyOtherEnv checks the variables the driver-only build knows
// of the other roles (those the driver does not read itself) against
// their config structs.
func TestDriverOnlyOtherEnv(t *testing.T) {
	driver := envcheck.Names("SCPGATE", &driverConfig{})
	var want []string
	for _, n := range otherRolesEnv() {
		if !slices.Contains(driver, n) {
			want = append(want, n)
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)
	got := slices.Sorted(slices.Values(driverOnlyOtherEnv))
	if !slices.Equal(got, want) {
		var b strings.Builder
		for _, n := range want {
			fmt.Fprintf(&b, "\t%q,\n", n)
		}
		t.Errorf("driverOnlyOtherEnv (envknown.go) is out of date; it should be:\n[]string{\n%s}", b.String())
	}
}
