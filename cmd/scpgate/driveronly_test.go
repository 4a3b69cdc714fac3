package main_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDriverOnlyBuild builds scpgate with -tags driveronly, as the image's
// scpgate-driver is built, and checks that it is the same driver command
// without the code of the other roles.
func TestDriverOnlyBuild(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "scpgate-driver")
	if out, err := exec.Command("go", "build", "-tags", "driveronly", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags driveronly: %v\n%s", err, out)
	}
	run := func(bin string, args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, args...).Output()
		if err != nil {
			t.Fatalf("%s %v: %v", filepath.Base(bin), args, err)
		}
		return string(out)
	}

	var cmds []string
	_, list, _ := strings.Cut(run(bin, "help"), "Commands:\n")
	for _, line := range strings.Split(list, "\n") {
		if !strings.HasPrefix(line, "  ") {
			break
		}
		cmds = append(cmds, strings.Fields(line)[0])
	}
	if got := strings.Join(cmds, " "); got != "driver version" {
		t.Errorf("driver-only build: commands %q, want \"driver version\"", got)
	}
	if got, want := run(bin, "help", "driver"), run(sharedBin(t), "help", "driver"); got != want {
		t.Errorf("help driver differs between the builds:\ndriver-only:\n%s\nfull:\n%s", got, want)
	}
	if v := run(bin, "version"); !strings.Contains(v, "tags     driveronly\n") {
		t.Errorf("version of the driver-only build does not say so:\n%s", v)
	}
	deps := run(bin, "version", "-deps")
	if !strings.Contains(deps, "github.com/nats-io/nats.go") {
		t.Fatalf("version -deps of the driver-only build does not list nats.go:\n%s", deps)
	}
	for _, mod := range []string{"github.com/nats-io/nats-server", "modernc.org/sqlite", "github.com/jackc/pgx"} {
		if strings.Contains(deps, mod) {
			t.Errorf("driver-only build links %s, which only other roles need", mod)
		}
	}
}
