package deploy_test

import (
	"slices"
	"strings"
	"testing"
)

// dockerInstr is one Dockerfile instruction: keyword and the rest, with
// continuation lines joined.
type dockerInstr struct{ op, args string }

func parseDockerfile(text string) []dockerInstr {
	var out []dockerInstr
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if more, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(trimmed)
		op, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstr{strings.ToUpper(op), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// driverBin is the driver-only build of scpgate in the image (go build
// -tags driveronly ./cmd/scpgate), the entrypoint of the driver services.
const driverBin = "/usr/local/bin/scpgate-driver"

// TestDockerfile checks the image every scpgate service runs: a static,
// trimmed build with the version stamped in, a final stage without a shell
// running as a non-root user, scpgate as the entrypoint, the driver-only
// build that the driver services run instead, and the health probe where
// docker-compose.yml calls it.
func TestDockerfile(t *testing.T) {
	text, err := readRepo("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	ins := parseDockerfile(text)
	last := -1
	for i, in := range ins {
		if in.op == "FROM" {
			last = i
		}
	}
	if last < 0 {
		t.Fatal("Dockerfile: no FROM")
	}
	var build []string
	for _, in := range ins[:last] {
		if in.op == "RUN" || in.op == "ENV" {
			build = append(build, in.args)
		}
	}
	all := strings.Join(build, " ")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=", "./cmd/scpgate", "./deploy/healthcheck", "-s -w", "-tags driveronly"} {
		if !strings.Contains(all, want) {
			t.Errorf("Dockerfile: the build stage does not use %q", want)
		}
	}
	final := ins[last:]
	base := strings.Fields(final[0].args)[0]
	if !strings.HasPrefix(base, "gcr.io/distroless/static") && base != "scratch" {
		t.Errorf("Dockerfile: final image %s, want distroless static or scratch", base)
	}
	var user, entrypoint string
	var copies []string
	for _, in := range final {
		switch in.op {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "COPY":
			f := strings.Fields(in.args)
			copies = append(copies, f[len(f)-1])
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("Dockerfile: final stage USER %q, want a non-root user", user)
	}
	if !strings.Contains(entrypoint, "scpgate") {
		t.Errorf("Dockerfile: ENTRYPOINT %s, want the scpgate binary", entrypoint)
	}
	if !slices.Contains(copies, driverBin) {
		t.Errorf("Dockerfile: the final stage does not COPY the driver-only build to %s (docker-compose.yml runs it)", driverBin)
	}
	if !slices.Contains(copies, healthcheckBin) {
		t.Errorf("Dockerfile: the final stage does not COPY the health probe to %s (docker-compose.yml runs it)", healthcheckBin)
	}

	f, _ := loadCompose(t, nil)
	images := map[string]bool{}
	for _, name := range f.servicesWhere((*composeService).isScpgate) {
		s := f.Services[name]
		images[s.Image] = true
		// Drivers run the driver-only build; every other role the full one.
		want := []string(nil)
		if s.subcommand() == "driver" {
			want = []string{driverBin}
		}
		if !slices.Equal(s.Entrypoint, want) {
			t.Errorf("service %s (scpgate %s): entrypoint %q, want %q", name, s.subcommand(), s.Entrypoint, want)
		}
		if b, ok := s.Build.(map[string]any); !ok || b["context"] != "." {
			t.Errorf("service %s: build %v, want context . (the Dockerfile)", name, s.Build)
		}
	}
	if len(images) != 1 {
		t.Errorf("scpgate services run %d images %v, want one", len(images), sortedKeys(images))
	}

	ignore, err := readRepo(".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(ignore, "\n") {
		p := strings.TrimSuffix(strings.TrimSpace(line), "/")
		if slices.Contains([]string{"go.mod", "go.sum", "cmd", "deploy", "*.go", "**/*.go", "**/*.sql"}, p) {
			t.Errorf(".dockerignore excludes %s, which the build needs", p)
		}
	}
}
