package deploy_test

import (
	"bytes"
	"net"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// natsUserOf is the NATS user each scpgate subcommand connects as; the
// other tools (replay, status, ...) use ops.
var natsUserOf = map[string]string{"driver": "driver", "ingest": "ingest", "commander": "commander"}

// healthcheckBin is where the Dockerfile puts the container health probe.
const healthcheckBin = "/usr/local/bin/healthcheck"

// TestComposeCommands checks every scpgate service: its command is a real
// subcommand, every flag it passes exists and parses, and every SCPGATE_*
// and NATS_* variable it sets is one the subcommand reads, with a value of
// the right type.
func TestComposeCommands(t *testing.T) {
	f, _ := loadCompose(t, nil)
	bin := scpgateBinary(t)
	services := f.servicesWhere((*composeService).isScpgate)
	if len(services) == 0 {
		t.Fatal("no service runs the scpgate image")
	}
	for _, name := range services {
		s := f.Services[name]
		sub := s.subcommand()
		h, err := helpOf(t, sub)
		if err != nil {
			t.Errorf("service %s: command %q is not an scpgate subcommand: %v", name, sub, err)
			continue
		}
		for _, a := range s.Command[1:] {
			if !strings.HasPrefix(a, "-") {
				continue
			}
			flag, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if flag != "h" && flag != "help" && !h.flags[flag] {
				t.Errorf("service %s: flag %s is not a flag of scpgate %s (see scpgate help %s)", name, a, sub, sub)
			}
		}
		// The command line as the container runs it, with -h added: the
		// flags are parsed (names and values), then the usage printed.
		var stderr bytes.Buffer
		cmd := exec.Command(bin, append(slices.Clone(s.Command), "-h")...)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("service %s: scpgate %s does not accept its arguments %q: %v\n%s", name, sub, s.Command[1:], err, firstLines(stderr.String(), 3))
		}
		for _, k := range sortedKeys(s.Environment) {
			if !strings.HasPrefix(k, "SCPGATE_") && !strings.HasPrefix(k, "NATS_") {
				continue
			}
			if _, ok := h.env[k]; !ok {
				t.Errorf("service %s: variable %s is not read by scpgate %s (see scpgate help %s)", name, k, sub, sub)
				continue
			}
			if err := checkEnvType(h, k, s.Environment[k]); err != nil {
				t.Errorf("service %s: variable %s=%q: %v", name, k, s.Environment[k], err)
			}
		}
	}
}

// checkEnvType checks v against the type `scpgate help` gives variable k.
func checkEnvType(h *commandHelp, k, v string) error {
	var typ string
	for _, line := range strings.Split(h.text, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == k {
			typ = f[1]
		}
	}
	var err error
	switch typ {
	case "Duration":
		_, err = time.ParseDuration(v)
	case "Integer":
		_, err = strconv.ParseInt(v, 10, 64)
	case "Float":
		_, err = strconv.ParseFloat(v, 64)
	case "True":
		_, err = strconv.ParseBool(v)
	}
	return err
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// TestComposeNATSClients checks the NATS side of every scpgate service:
// NATS_URL names exactly the NATS nodes, the user fits the role,
// SCPGATE_REPLICAS equals the number of nodes, the stream settings agree
// across services, and the service waits for every node to be healthy.
func TestComposeNATSClients(t *testing.T) {
	f, _ := loadCompose(t, nil)
	nodes := f.servicesWhere((*composeService).isNATS)
	if len(nodes) != 3 {
		t.Fatalf("%d NATS services (%v), want 3", len(nodes), nodes)
	}
	streamVars := map[string]map[string]string{} // variable -> service -> value
	for _, name := range f.servicesWhere((*composeService).isScpgate) {
		s := f.Services[name]
		h, err := helpOf(t, s.subcommand())
		if err != nil {
			continue // reported by TestComposeCommands
		}
		if _, ok := h.env["NATS_URL"]; !ok {
			continue // no NATS (sim)
		}
		checkNATSURL(t, name, s.Environment["NATS_URL"], nodes)
		want := natsUserOf[s.subcommand()]
		if want == "" {
			want = "ops"
		}
		if got := s.Environment["NATS_USER"]; got != want {
			t.Errorf("service %s: NATS_USER=%q, want %q for scpgate %s", name, got, want, s.subcommand())
		}
		if s.Environment["NATS_PASSWORD"] == "" {
			t.Errorf("service %s: no NATS_PASSWORD", name)
		}
		for _, n := range nodes {
			if s.DependsOn[n] != "service_healthy" {
				t.Errorf("service %s: depends_on %s is %q, want condition service_healthy", name, n, s.DependsOn[n])
			}
		}
		if _, ok := h.env["SCPGATE_REPLICAS"]; !ok {
			continue
		}
		if got := s.Environment["SCPGATE_REPLICAS"]; got != strconv.Itoa(len(nodes)) {
			t.Errorf("service %s: SCPGATE_REPLICAS=%q, want %d (one replica per NATS node)", name, got, len(nodes))
		}
		for _, k := range streamsVars {
			v, ok := s.Environment[k]
			if !ok {
				v = h.env[k] + " (default)"
			}
			if streamVars[k] == nil {
				streamVars[k] = map[string]string{}
			}
			streamVars[k][name] = v
		}
	}
	// Every service ensures the streams at start: they must agree.
	for _, k := range streamsVars {
		var first string
		for _, name := range sortedKeys(streamVars[k]) {
			v := streamVars[k][name]
			if first == "" {
				first = name
			} else if w := streamVars[k][first]; strings.TrimSuffix(v, " (default)") != strings.TrimSuffix(w, " (default)") {
				t.Errorf("variable %s: service %s has %s, service %s has %s; every service must agree", k, name, v, first, w)
			}
		}
	}
}

// streamsVars size the streams and buckets; every service ensures them.
var streamsVars = []string{
	"SCPGATE_REPLICAS", "SCPGATE_EVENTS_MAX_AGE", "SCPGATE_EVENTS_MAX_BYTES", "SCPGATE_COMMANDS_MAX_AGE", "SCPGATE_RESULTS_MAX_AGE",
	"SCPGATE_DUPLICATE_WINDOW", "SCPGATE_COMMAND_QUEUE_CAP", "SCPGATE_MEMORY_STORAGE",
}

// checkNATSURL checks that v lists nats://<node>:4222 for exactly the
// given nodes.
func checkNATSURL(t *testing.T, service, v string, nodes []string) {
	t.Helper()
	var hosts []string
	for _, u := range strings.Split(v, ",") {
		pu, err := url.Parse(strings.TrimSpace(u))
		if err != nil || pu.Scheme != "nats" || pu.Port() != "4222" {
			t.Errorf("service %s: NATS_URL entry %q is not nats://HOST:4222", service, u)
			continue
		}
		hosts = append(hosts, pu.Hostname())
	}
	slices.Sort(hosts)
	if !slices.Equal(hosts, nodes) {
		t.Errorf("service %s: NATS_URL=%q names %v, want the NATS services %v", service, v, hosts, nodes)
	}
}

// TestComposeDrivers checks the driver services: several of them,
// distinct ids, a stop grace period that lets a drain finish, a readiness
// health check on their HTTP port, enough open files, and no controller
// port of their own on the host (controllers come through HAProxy).
func TestComposeDrivers(t *testing.T) {
	f, _ := loadCompose(t, nil)
	h, err := helpOf(t, "driver")
	if err != nil {
		t.Fatal(err)
	}
	drivers := f.servicesWhere(func(s *composeService) bool { return s.isScpgate() && s.subcommand() == "driver" })
	if len(drivers) < 2 {
		t.Fatalf("%d driver services, want at least 2", len(drivers))
	}
	ids := map[string]string{}
	for _, name := range drivers {
		s := f.Services[name]
		env := withDefaults(s.Environment, h)
		if id := env["SCPGATE_DRIVER_ID"]; id == "" {
			t.Errorf("service %s: no SCPGATE_DRIVER_ID (a random one changes at every restart)", name)
		} else if other, dup := ids[id]; dup {
			t.Errorf("service %s: SCPGATE_DRIVER_ID %q is also %s's", name, id, other)
		} else {
			ids[id] = name
		}
		drain, err := time.ParseDuration(env["SCPGATE_DRAIN_DEADLINE"])
		if err != nil {
			t.Errorf("service %s: SCPGATE_DRAIN_DEADLINE: %v", name, err)
		}
		grace, err := time.ParseDuration(cmpOr(s.StopGracePeriod, "10s"))
		if err != nil {
			t.Errorf("service %s: stop_grace_period: %v", name, err)
		}
		// scpgate driver gives a drain SCPGATE_DRAIN_DEADLINE plus 5 s.
		if grace <= drain+5*time.Second {
			t.Errorf("service %s: stop_grace_period %s is not above SCPGATE_DRAIN_DEADLINE %s + 5s: docker would kill a draining driver", name, grace, drain)
		}
		checkHealthURL(t, name, s, env["SCPGATE_HTTP_LISTEN"], "/readyz")
		if n := s.Ulimits["nofile"]; n.Soft < 10000 {
			t.Errorf("service %s: ulimits nofile %d, want at least 10000 (one per controller)", name, n.Soft)
		}
		if s.publishes(portOf(env["SCPGATE_LISTEN"])) {
			t.Errorf("service %s publishes its controller port: controllers must come through HAProxy", name)
		}
		if s.Restart == "" || s.Restart == "no" {
			t.Errorf("service %s: restart %q, want a restart policy", name, s.Restart)
		}
	}
}

// withDefaults returns env with the defaults of h for unset variables.
func withDefaults(env envMap, h *commandHelp) map[string]string {
	out := map[string]string{}
	for k, v := range h.env {
		out[k] = v
	}
	for k, v := range env {
		out[k] = v
	}
	return out
}

// portOf returns the port of a listen address such as ":8080".
func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return port
}

// checkHealthURL checks that service s has a health check running the
// image's probe against path on the port of httpListen.
func checkHealthURL(t *testing.T, name string, s *composeService, httpListen, path string) {
	t.Helper()
	if s.Healthcheck == nil || len(s.Healthcheck.Test) < 3 {
		t.Errorf("service %s: no healthcheck [CMD %s URL]", name, healthcheckBin)
		return
	}
	test := s.Healthcheck.Test
	if test[0] != "CMD" || test[1] != healthcheckBin {
		t.Errorf("service %s: healthcheck %q, want [CMD %s URL] (the image has no shell)", name, test, healthcheckBin)
		return
	}
	u, err := url.Parse(test[len(test)-1])
	if err != nil {
		t.Errorf("service %s: healthcheck URL: %v", name, err)
		return
	}
	if u.Port() != portOf(httpListen) {
		t.Errorf("service %s: healthcheck %s probes port %s, but SCPGATE_HTTP_LISTEN is %q", name, u, u.Port(), httpListen)
	}
	if path != "" && u.Path != path {
		t.Errorf("service %s: healthcheck probes %s, want %s", name, u.Path, path)
	}
}

// TestComposeIngest checks that ingest stores into the compose PostgreSQL
// with its credentials and waits for it.
func TestComposeIngest(t *testing.T) {
	f, _ := loadCompose(t, nil)
	pgs := f.servicesWhere((*composeService).isPostgres)
	if len(pgs) != 1 {
		t.Fatalf("%d PostgreSQL services, want 1", len(pgs))
	}
	pgName, pg := pgs[0], f.Services[pgs[0]]
	if pg.Healthcheck == nil || len(pg.Healthcheck.Test) == 0 {
		t.Errorf("service %s: no healthcheck", pgName)
	}
	h, err := helpOf(t, "ingest")
	if err != nil {
		t.Fatal(err)
	}
	ingests := f.servicesWhere(func(s *composeService) bool { return s.isScpgate() && s.subcommand() == "ingest" })
	if len(ingests) == 0 {
		t.Fatal("no ingest service")
	}
	for _, name := range ingests {
		s := f.Services[name]
		dsn := s.Environment["SCPGATE_DB"]
		u, err := url.Parse(dsn)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			t.Errorf("service %s: SCPGATE_DB=%q is not a postgres:// URL", name, dsn)
			continue
		}
		pw, _ := u.User.Password()
		switch {
		case u.Hostname() != pgName:
			t.Errorf("service %s: SCPGATE_DB host %q, want the service %s", name, u.Hostname(), pgName)
		case u.User.Username() != pg.Environment["POSTGRES_USER"]:
			t.Errorf("service %s: SCPGATE_DB user %q, but %s's POSTGRES_USER is %q", name, u.User.Username(), pgName, pg.Environment["POSTGRES_USER"])
		case pw != pg.Environment["POSTGRES_PASSWORD"]:
			t.Errorf("service %s: SCPGATE_DB password differs from %s's POSTGRES_PASSWORD", name, pgName)
		case strings.TrimPrefix(u.Path, "/") != pg.Environment["POSTGRES_DB"]:
			t.Errorf("service %s: SCPGATE_DB database %q, but %s's POSTGRES_DB is %q", name, u.Path, pgName, pg.Environment["POSTGRES_DB"])
		}
		if s.DependsOn[pgName] != "service_healthy" {
			t.Errorf("service %s: depends_on %s is %q, want condition service_healthy", name, pgName, s.DependsOn[pgName])
		}
		checkHealthURL(t, name, s, withDefaults(s.Environment, h)["SCPGATE_HTTP_LISTEN"], "")
	}
}

// TestComposeDependencies checks depends_on: the targets exist, a
// service_healthy target has a health check, a service without profile
// does not depend on one with a profile, and there is no cycle.
func TestComposeDependencies(t *testing.T) {
	f, _ := loadCompose(t, nil)
	for _, name := range sortedKeys(f.Services) {
		s := f.Services[name]
		for _, dep := range sortedKeys(s.DependsOn) {
			d, ok := f.Services[dep]
			switch {
			case !ok:
				t.Errorf("service %s: depends_on %s, which is not a service", name, dep)
				continue
			case s.DependsOn[dep] == "service_healthy" && (d.Healthcheck == nil || d.Healthcheck.Disable || len(d.Healthcheck.Test) == 0):
				t.Errorf("service %s: waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
			case len(s.Profiles) == 0 && len(d.Profiles) > 0:
				t.Errorf("service %s: depends_on %s, which only runs with profiles %v", name, dep, d.Profiles)
			}
		}
	}
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, path []string)
	visit = func(name string, path []string) {
		switch state[name] {
		case 1:
			t.Errorf("depends_on cycle: %s", strings.Join(append(path, name), " -> "))
			return
		case 2:
			return
		}
		state[name] = 1
		if s := f.Services[name]; s != nil {
			for _, dep := range sortedKeys(s.DependsOn) {
				visit(dep, append(path, name))
			}
		}
		state[name] = 2
	}
	for _, name := range sortedKeys(f.Services) {
		visit(name, nil)
	}
}

// TestComposeVolumes checks that named volumes are declared and bind
// mounts point at files of the repository.
func TestComposeVolumes(t *testing.T) {
	f, _ := loadCompose(t, nil)
	for _, name := range sortedKeys(f.Services) {
		for _, v := range f.Services[name].Volumes {
			src, _, _ := strings.Cut(v, ":")
			switch {
			case strings.HasPrefix(src, "."):
				if _, err := statRepo(src); err != nil {
					t.Errorf("service %s: bind mount %s: %v", name, v, err)
				}
			case strings.HasPrefix(src, "/"):
				t.Errorf("service %s: bind mount of an absolute host path %s", name, v)
			default:
				if _, ok := f.Volumes[src]; !ok {
					t.Errorf("service %s: volume %s is not declared under volumes:", name, src)
				}
			}
		}
	}
}

// TestComposeSim checks the sim profile: it dials HAProxy's controller
// port and only runs when asked for.
func TestComposeSim(t *testing.T) {
	f, _ := loadCompose(t, nil)
	sims := f.servicesWhere(func(s *composeService) bool { return s.isScpgate() && s.subcommand() == "sim" })
	if len(sims) != 1 {
		t.Fatalf("%d sim services, want 1", len(sims))
	}
	name, s := sims[0], f.Services[sims[0]]
	if !slices.Contains(s.Profiles, "sim") {
		t.Errorf("service %s: profiles %v, want [sim]", name, s.Profiles)
	}
	target := ""
	for i, a := range s.Command {
		if (a == "--target" || a == "-target") && i+1 < len(s.Command) {
			target = s.Command[i+1]
		} else if v, ok := strings.CutPrefix(strings.TrimLeft(a, "-"), "target="); ok {
			target = v
		}
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		t.Fatalf("service %s: --target %q: %v", name, target, err)
	}
	lb, ok := f.Services[host]
	if !ok || !lb.isHAProxy() {
		t.Errorf("service %s: --target %s is not the HAProxy service", name, target)
	}
	if port != "3001" {
		t.Errorf("service %s: --target port %s, want 3001 (HAProxy's controller port)", name, port)
	}
	if s.DependsOn[host] != "service_healthy" {
		t.Errorf("service %s: depends_on %s is %q, want service_healthy", name, host, s.DependsOn[host])
	}
}
