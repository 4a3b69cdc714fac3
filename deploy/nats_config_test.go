package deploy_test

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/streams"
)

// natsNodeConfig parses the nats-server configuration that compose
// service name runs, in the environment compose gives it.
func natsNodeConfig(t *testing.T, name string, s *composeService) *server.Options {
	t.Helper()
	i := slices.IndexFunc(s.Command, func(a string) bool { return a == "--config" || a == "-c" })
	if i < 0 || i+1 >= len(s.Command) {
		t.Fatalf("service %s: command %q has no --config FILE", name, s.Command)
	}
	file := s.hostPath(s.Command[i+1])
	if file == "" {
		t.Fatalf("service %s: config %s is not bind-mounted from the repository", name, s.Command[i+1])
	}
	for k, v := range s.Environment {
		t.Setenv(k, v)
	}
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("service %s: %s: %v", name, file, err)
	}
	return opts
}

// TestNATSConfigs checks the NATS node configurations: one per NATS
// service, each with its own server_name, JetStream on a named volume, one
// cluster whose routes name the three nodes, the client port NATS_URL
// uses and the monitoring port the health check probes.
func TestNATSConfigs(t *testing.T) {
	f, _ := loadCompose(t, nil)
	nodes := f.servicesWhere((*composeService).isNATS)
	if len(nodes) != 3 {
		t.Fatalf("%d NATS services (%v), want 3", len(nodes), nodes)
	}
	names := map[string]string{}
	var cluster string
	for _, name := range nodes {
		s := f.Services[name]
		o := natsNodeConfig(t, name, s)
		switch other, dup := names[o.ServerName]; {
		case o.ServerName != name:
			t.Errorf("service %s: server_name %q, want the service name", name, o.ServerName)
		case dup:
			t.Errorf("service %s: server_name %q is also %s's", name, o.ServerName, other)
		}
		names[o.ServerName] = name
		if !o.JetStream {
			t.Errorf("service %s: JetStream is not enabled", name)
		}
		if o.StoreDir == "" || s.namedVolumeAt(o.StoreDir) == "" {
			t.Errorf("service %s: JetStream store_dir %q is not on a named volume", name, o.StoreDir)
		}
		if o.Port != 4222 {
			t.Errorf("service %s: client port %d, want 4222 (NATS_URL)", name, o.Port)
		}
		switch {
		case o.Cluster.Name == "":
			t.Errorf("service %s: no cluster name", name)
		case cluster == "":
			cluster = o.Cluster.Name
		case o.Cluster.Name != cluster:
			t.Errorf("service %s: cluster %q, the others %q", name, o.Cluster.Name, cluster)
		}
		var routes []string
		for _, r := range o.Routes {
			if r.Port() != strconv.Itoa(o.Cluster.Port) {
				t.Errorf("service %s: route %s: port %s, but the cluster listens on %d", name, r, r.Port(), o.Cluster.Port)
			}
			routes = append(routes, r.Hostname())
		}
		slices.Sort(routes)
		if !slices.Equal(routes, nodes) {
			t.Errorf("service %s: routes name %v, want the three nodes %v", name, routes, nodes)
		}
		// docker stop: lame duck mode (SIGUSR2), with the time to finish it.
		if s.StopSignal != "SIGUSR2" {
			t.Errorf("service %s: stop_signal %q, want SIGUSR2 (lame duck mode: clients move to the other nodes gradually)", name, s.StopSignal)
		}
		if grace, err := time.ParseDuration(cmpOr(s.StopGracePeriod, "10s")); err != nil || grace <= o.LameDuckDuration+o.LameDuckGracePeriod {
			t.Errorf("service %s: stop_grace_period %q is not above lame_duck_duration %s + lame_duck_grace_period %s (%v)", name, s.StopGracePeriod, o.LameDuckDuration, o.LameDuckGracePeriod, err)
		}
		// SCP_EVENTS discards its oldest events at its cap: the node's store
		// must never fill first, or every event is refused. A quarter of the
		// store stays for the other streams and buckets.
		if mb := streams.DefaultEventsMaxBytes; o.JetStreamMaxStore <= 0 || mb > o.JetStreamMaxStore*3/4 {
			t.Errorf("service %s: max_file_store %d leaves no room above SCP_EVENTS' default cap %d (SCPGATE_EVENTS_MAX_BYTES)", name, o.JetStreamMaxStore, mb)
		}
		if s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 {
			t.Errorf("service %s: no healthcheck", name)
		} else if u, err := url.Parse(s.Healthcheck.Test[len(s.Healthcheck.Test)-1]); err != nil || u.Port() != strconv.Itoa(o.HTTPPort) || u.Path != "/healthz" {
			t.Errorf("service %s: healthcheck %q, want /healthz on the monitoring port %d", name, s.Healthcheck.Test, o.HTTPPort)
		}
	}
}

// TestNATSUsers starts a server with a node's configuration and logs in
// as every scpgate service of docker-compose.yml, with the default
// passwords and with every password variable overridden (as a .env file
// would): the servers and the clients must follow the same variables.
func TestNATSUsers(t *testing.T) {
	_, vars := loadCompose(t, nil)
	overrides := map[string]string{}
	for _, v := range vars {
		if strings.Contains(v, "PASSWORD") {
			overrides[v] = "override-" + strings.ToLower(v)
		}
	}
	for _, tc := range []struct {
		name string
		vars map[string]string
	}{{"defaults", nil}, {"overridden", overrides}} {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := loadCompose(t, tc.vars)
			nodes := f.servicesWhere((*composeService).isNATS)
			if len(nodes) == 0 {
				t.Fatal("no NATS service")
			}
			o := natsNodeConfig(t, nodes[0], f.Services[nodes[0]])
			// The same node alone on loopback: no cluster, a temp store.
			o.Host, o.Port, o.HTTPPort = "127.0.0.1", -1, 0
			o.Cluster, o.Routes, o.RoutesStr = server.ClusterOpts{}, nil, ""
			o.StoreDir, o.JetStreamMaxStore, o.JetStreamMaxMemory = t.TempDir(), 1<<30, 64<<20
			o.LameDuckDuration, o.LameDuckGracePeriod = 0, 0
			srv := natstest.RunServerWith(t, o)
			for _, name := range f.servicesWhere((*composeService).isScpgate) {
				env := f.Services[name].Environment
				user, pw := env["NATS_USER"], env["NATS_PASSWORD"]
				if user == "" {
					continue
				}
				nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(user, pw), nats.Timeout(5*time.Second), nats.MaxReconnects(0))
				if err != nil {
					t.Errorf("service %s: cannot log in to %s as NATS_USER %q with its NATS_PASSWORD: %v%s", name, nodes[0], user, err, hint(tc.vars))
					continue
				}
				nc.Close()
			}
		})
	}
}

func hint(overrides map[string]string) string {
	if overrides == nil {
		return ""
	}
	return fmt.Sprintf(" (with %v overridden: does deploy/nats/auth.conf read the same variables as docker-compose.yml?)", sortedKeys(overrides))
}
