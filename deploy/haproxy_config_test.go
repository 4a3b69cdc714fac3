package deploy_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// haproxyCfg is deploy/haproxy/haproxy.cfg, relative to the repository.
const haproxyCfg = "deploy/haproxy/haproxy.cfg"

// haSection is one section of an HAProxy configuration: its keyword
// (global, defaults, frontend, backend, ...), name and directive lines,
// split into words, without comments.
type haSection struct {
	kind, name string
	lines      [][]string
}

var haSectionKinds = []string{"global", "defaults", "frontend", "backend", "listen", "resolvers", "peers", "userlist", "program", "http-errors", "ring", "cache", "mailers"}

// parseHAProxy splits an HAProxy configuration into sections.
func parseHAProxy(text string) []*haSection {
	var out []*haSection
	var cur *haSection
	for _, raw := range strings.Split(text, "\n") {
		line, _, _ := strings.Cut(raw, "#")
		words := strings.Fields(line)
		if len(words) == 0 {
			continue
		}
		if raw[0] != ' ' && raw[0] != '\t' && slices.Contains(haSectionKinds, words[0]) {
			cur = &haSection{kind: words[0]}
			if len(words) > 1 {
				cur.name = words[1]
			}
			out = append(out, cur)
			continue
		}
		if cur != nil {
			cur.lines = append(cur.lines, words)
		}
	}
	return out
}

// find returns the lines of s that start with the given words.
func (s *haSection) find(prefix ...string) [][]string {
	var out [][]string
	for _, l := range s.lines {
		if len(l) >= len(prefix) && slices.Equal(l[:len(prefix)], prefix) {
			out = append(out, l)
		}
	}
	return out
}

// has reports whether s has a line starting with the given words.
func (s *haSection) has(prefix ...string) bool { return len(s.find(prefix...)) > 0 }

// haSectionOf returns the section kind/name, or nil.
func haSectionOf(secs []*haSection, kind, name string) *haSection {
	for _, s := range secs {
		if s.kind == kind && (name == "" || s.name == name) {
			return s
		}
	}
	return nil
}

// haSetting returns the value words of directive prefix in sec, else in
// defaults (HAProxy's inheritance), or nil.
func haSetting(secs []*haSection, sec *haSection, prefix ...string) []string {
	for _, s := range []*haSection{sec, haSectionOf(secs, "defaults", "")} {
		if s == nil {
			continue
		}
		if l := s.find(prefix...); len(l) > 0 {
			return l[len(l)-1][len(prefix):]
		}
	}
	return nil
}

// haDuration parses an HAProxy time (default unit ms).
func haDuration(s string) (time.Duration, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		n, err := strconv.Atoi(s)
		return time.Duration(n) * time.Millisecond, err
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil {
		return 0, fmt.Errorf("haproxy time %q: %w", s, err)
	}
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[s[i:]]
	if unit == 0 {
		return 0, fmt.Errorf("haproxy time %q: unknown unit", s)
	}
	return time.Duration(n) * unit, nil
}

// controllerFrontend returns the frontend that binds port and its backend.
func controllerFrontend(t testing.TB, secs []*haSection, port string) (fe, be *haSection) {
	t.Helper()
	for _, s := range secs {
		if s.kind != "frontend" && s.kind != "listen" {
			continue
		}
		for _, b := range s.find("bind") {
			if len(b) > 1 && portOf(b[1]) == port {
				fe = s
			}
		}
	}
	if fe == nil {
		t.Fatalf("%s: no frontend binds port %s", haproxyCfg, port)
	}
	if fe.kind == "listen" {
		return fe, fe
	}
	def := fe.find("default_backend")
	if len(def) == 0 || len(def[0]) < 2 {
		t.Fatalf("%s: frontend %s has no default_backend", haproxyCfg, fe.name)
	}
	be = haSectionOf(secs, "backend", def[0][1])
	if be == nil {
		t.Fatalf("%s: frontend %s: backend %s not defined", haproxyCfg, fe.name, def[0][1])
	}
	return fe, be
}

// TestHAProxyConfig checks haproxy.cfg against docker-compose.yml: TCP
// mode on the controller port, least-connections balancing over exactly
// the driver services with a /readyz health check on their HTTP port,
// idle timeouts well above the drivers' offline time, TCP keepalives,
// retries elsewhere, and no cutting of a draining driver's sessions.
func TestHAProxyConfig(t *testing.T) {
	f, _ := loadCompose(t, nil)
	text, err := readRepo(haproxyCfg)
	if err != nil {
		t.Fatal(err)
	}
	secs := parseHAProxy(text)

	lbs := f.servicesWhere((*composeService).isHAProxy)
	if len(lbs) != 1 {
		t.Fatalf("%d HAProxy services, want 1", len(lbs))
	}
	lb := f.Services[lbs[0]]
	if hp := lb.hostPath("/usr/local/etc/haproxy/haproxy.cfg"); filepath.Clean(hp) != filepath.Join(repoRoot, haproxyCfg) {
		t.Errorf("service %s: /usr/local/etc/haproxy/haproxy.cfg comes from %q, want %s", lbs[0], hp, haproxyCfg)
	}
	if !lb.publishes("3001") {
		t.Errorf("service %s does not publish the controller port 3001", lbs[0])
	}

	fe, be := controllerFrontend(t, secs, "3001")
	if m := haSetting(secs, fe, "mode"); len(m) != 1 || m[0] != "tcp" {
		t.Errorf("frontend %s: mode %v, want tcp", fe.name, m)
	}
	if m := haSetting(secs, be, "mode"); len(m) != 1 || m[0] != "tcp" {
		t.Errorf("backend %s: mode %v, want tcp", be.name, m)
	}
	if b := haSetting(secs, be, "balance"); len(b) != 1 || b[0] != "leastconn" {
		t.Errorf("backend %s: balance %v, want leastconn", be.name, b)
	}
	if c := haSetting(secs, be, "option", "httpchk"); !slices.Equal(c, []string{"GET", "/readyz"}) &&
		!(c != nil && be.has("http-check", "send", "meth", "GET", "uri", "/readyz")) {
		t.Errorf("backend %s: option httpchk %v, want GET /readyz", be.name, c)
	}
	if !be.has("http-check", "expect", "status", "200") {
		t.Errorf("backend %s: no http-check expect status 200", be.name)
	}
	if haSetting(secs, be, "option", "redispatch") == nil || haSetting(secs, be, "retries") == nil {
		t.Errorf("backend %s: want retries and option redispatch, so a controller sent to a stopped driver is retried on another", be.name)
	}
	if haSetting(secs, fe, "option", "clitcpka") == nil {
		t.Errorf("frontend %s: no option clitcpka", fe.name)
	}
	if haSetting(secs, be, "option", "srvtcpka") == nil {
		t.Errorf("backend %s: no option srvtcpka", be.name)
	}
	for _, s := range secs {
		for _, l := range s.lines {
			if slices.Contains(l, "on-marked-down") && slices.Contains(l, "shutdown-sessions") {
				t.Errorf("%s %s: %q cuts every session of a draining driver at once; the driver sends its controllers away itself", s.kind, s.name, strings.Join(l, " "))
			}
		}
	}

	h, err := helpOf(t, "driver")
	if err != nil {
		t.Fatal(err)
	}
	drivers := f.servicesWhere(func(s *composeService) bool { return s.isScpgate() && s.subcommand() == "driver" })
	var servers []string
	var maxOffline time.Duration
	for _, l := range be.find("server") {
		if len(l) < 3 {
			t.Errorf("backend %s: short server line %q", be.name, l)
			continue
		}
		name := l[1]
		servers = append(servers, name)
		s, ok := f.Services[name]
		if !ok || !s.isScpgate() || s.subcommand() != "driver" {
			t.Errorf("backend %s: server %s is not a driver service of docker-compose.yml", be.name, name)
			continue
		}
		env := withDefaults(s.Environment, h)
		if want := net.JoinHostPort(name, portOf(env["SCPGATE_LISTEN"])); l[2] != want {
			t.Errorf("backend %s: server %s at %s, want %s (SCPGATE_LISTEN %q)", be.name, name, l[2], want, env["SCPGATE_LISTEN"])
		}
		opts := l[3:]
		if !slices.Contains(opts, "check") {
			t.Errorf("backend %s: server %s is not health-checked", be.name, name)
		}
		if i := slices.Index(opts, "port"); i < 0 || i+1 >= len(opts) || opts[i+1] != portOf(env["SCPGATE_HTTP_LISTEN"]) {
			t.Errorf("backend %s: server %s: check port must be the driver's HTTP port %s (SCPGATE_HTTP_LISTEN)", be.name, name, portOf(env["SCPGATE_HTTP_LISTEN"]))
		}
		for _, k := range []string{"inter", "fall", "rise"} {
			if !slices.Contains(opts, k) {
				t.Errorf("backend %s: server %s: no %s", be.name, name, k)
			}
		}
		// A crashed driver refuses connections: the first refusals take it
		// out, instead of bouncing controllers off it until fall×inter.
		if i := slices.Index(opts, "observe"); i < 0 || i+1 >= len(opts) || opts[i+1] != "layer4" || !strings.Contains(strings.Join(opts, " "), "on-error mark-down") {
			t.Errorf("backend %s: server %s: want observe layer4 ... on-error mark-down", be.name, name)
		}
		offline, err := time.ParseDuration(env["SCPGATE_OFFLINE_TIME"])
		if err != nil {
			t.Errorf("service %s: SCPGATE_OFFLINE_TIME: %v", name, err)
		}
		maxOffline = max(maxOffline, offline)
	}
	slices.Sort(servers)
	if !slices.Equal(servers, drivers) {
		t.Errorf("backend %s: servers %v, want exactly the driver services %v", be.name, servers, drivers)
	}
	for _, side := range []struct {
		sec  *haSection
		name string
	}{{fe, "client"}, {be, "server"}} {
		v := haSetting(secs, side.sec, "timeout", side.name)
		if len(v) != 1 {
			t.Errorf("%s %s: no timeout %s", side.sec.kind, side.sec.name, side.name)
			continue
		}
		d, err := haDuration(v[0])
		if err != nil || d < 2*maxOffline {
			t.Errorf("%s %s: timeout %s %s, want at least twice the drivers' offline time %s (%v)", side.sec.kind, side.sec.name, side.name, v[0], maxOffline, err)
		}
	}

	// The local HAProxy, when installed, must accept the file (with
	// loopback addresses, which it can resolve).
	bin := haproxyPath()
	if bin == "" {
		return
	}
	addrs := map[string]driverAddr{}
	for i, name := range drivers {
		addrs[name] = driverAddr{listen: 20001 + i, http: 20101 + i}
	}
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(localHAProxyConfig(t, text, 20000, 20100, addrs)), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-c", "-f", cfg)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("haproxy -c rejects %s: %v\n%s", haproxyCfg, err, out.String())
	}
}

// haproxyPath returns the haproxy binary, or "" when it is not installed.
func haproxyPath() string {
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/haproxy", "/usr/local/sbin/haproxy"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// driverAddr is where a driver process of a test listens on 127.0.0.1.
type driverAddr struct{ listen, http int }

// localHAProxyConfig rewrites haproxy.cfg for processes on 127.0.0.1: the
// controller frontend binds controllerPort, every other bind statsPort,
// and each server points at its driver's ports. Everything else is kept.
func localHAProxyConfig(t testing.TB, text string, controllerPort, statsPort int, drivers map[string]driverAddr) string {
	t.Helper()
	var out []string
	seen := map[string]bool{}
	for _, raw := range strings.Split(text, "\n") {
		line, _, _ := strings.Cut(raw, "#")
		w := strings.Fields(line)
		indent := raw[:len(raw)-len(strings.TrimLeft(raw, " \t"))]
		switch {
		case len(w) >= 2 && w[0] == "bind":
			port := statsPort
			if portOf(w[1]) == "3001" {
				port = controllerPort
			}
			w[1] = fmt.Sprintf("127.0.0.1:%d", port)
			raw = indent + strings.Join(w, " ")
		case len(w) >= 3 && w[0] == "server":
			a, ok := drivers[w[1]]
			if !ok {
				t.Fatalf("%s: server %s has no local driver", haproxyCfg, w[1])
			}
			seen[w[1]] = true
			w[2] = fmt.Sprintf("127.0.0.1:%d", a.listen)
			if i := slices.Index(w, "port"); i >= 0 && i+1 < len(w) {
				w[i+1] = strconv.Itoa(a.http)
			}
			raw = indent + strings.Join(w, " ")
		}
		out = append(out, raw)
	}
	if len(seen) != len(drivers) {
		t.Fatalf("%s: servers %v, want %d", haproxyCfg, sortedKeys(seen), len(drivers))
	}
	return strings.Join(out, "\n")
}
