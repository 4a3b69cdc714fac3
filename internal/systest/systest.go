// Package systest starts the whole of scpgate inside a test: a NATS server
// with JetStream and the users of deploy/nats/auth.conf, a driver with
// simulated controllers, the commander (HTTP and micro) and ingest (SQLite,
// scp_state, HTTP), each connected as its own NATS user. Tests of the
// vendor contract run clients against it.
package systest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/sqlite"
	"github.com/scpgate/scpgate/streams"
)

// Roles are the NATS users of deploy/nats/auth.conf and the variables of
// their passwords.
var Roles = map[string]string{
	"driver":    "NATS_DRIVER_PASSWORD",
	"ingest":    "NATS_INGEST_PASSWORD",
	"commander": "NATS_COMMANDER_PASSWORD",
	"ops":       "NATS_OPS_PASSWORD",
	"vendor":    "NATS_VENDOR_PASSWORD",
}

// Password returns the password the test server gives user.
func Password(user string) string { return "pw-" + user }

// Options size the system.
type Options struct {
	Controllers int // simulated controllers (default 2)
	Doors       int // doors, inputs and outputs of each (default 4)
	// Wrap, when set, wraps the commander's and ingest's HTTP handlers
	// (to record the answers).
	Wrap func(name string, h http.Handler) http.Handler
}

// System is a running scpgate.
type System struct {
	Server    *server.Server
	Commander *commander.Service
	Ingest    *ingest.Service
	// CommanderURL and IngestURL are the bases of the HTTP APIs.
	CommanderURL, IngestURL string
	Controllers             []*sim.Controller
	// Ops is a JetStream handle as the ops user, for tests to look.
	Ops jetstream.JetStream
}

// RepoRoot returns the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// PermServer starts a JetStream server whose users are those of
// deploy/nats/auth.conf, loaded as a node loads them.
func PermServer(t testing.TB) *server.Server {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(RepoRoot(), "deploy", "nats", "auth.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "auth.conf"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("jetstream { store_dir: %q }\ninclude ./auth.conf\n", filepath.Join(dir, "js"))
	if err := os.WriteFile(filepath.Join(dir, "node.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	for user, v := range Roles {
		if setenv, ok := t.(interface{ Setenv(string, string) }); ok {
			setenv.Setenv(v, Password(user))
		} else {
			t.Fatalf("PermServer needs a *testing.T to set %s", v)
		}
	}
	opts, err := server.ProcessConfigFile(filepath.Join(dir, "node.conf"))
	if err != nil {
		t.Fatalf("load auth.conf: %v", err)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	return natstest.RunServerWith(t, opts)
}

// ConnectAs connects to s as user, with the role's inbox prefix.
func ConnectAs(t testing.TB, s *server.Server, user string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc := natstest.Connect(t, s, nats.UserInfo(user, Password(user)), nats.Name("scpgate-"+user),
		nats.CustomInboxPrefix("_INBOX."+user))
	return nc, natstest.JetStream(t, nc)
}

func testLog(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

// Start runs the system until the test ends. Every controller is online
// when it returns.
func Start(t *testing.T, o Options) *System {
	t.Helper()
	if o.Controllers == 0 {
		o.Controllers = 2
	}
	if o.Doors == 0 {
		o.Doors = 4
	}
	if o.Wrap == nil {
		o.Wrap = func(_ string, h http.Handler) http.Handler { return h }
	}
	s := PermServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	sys := &System{Server: s}

	_, ingJS := ConnectAs(t, s, "ingest")
	h, err := streams.Ensure(ctx, ingJS, streams.DefaultConfig())
	if err != nil {
		t.Fatalf("ensure streams: %v", err)
	}

	drvNC, _ := ConnectAs(t, s, "driver")
	d, err := driver.New(driver.Options{ID: "sys-d", Listen: "127.0.0.1:0", NATS: drvNC, Log: testLog(t),
		Timing: scpbridge.Timing{Handshake: 5 * time.Second, Heartbeat: time.Second, OfflineTime: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatalf("driver start: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })

	cmdNC, cmdJS := ConnectAs(t, s, "commander")
	svc, err := commander.New(commander.Options{JS: cmdJS, NC: cmdNC, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	if _, err := svc.Register(cmdNC); err != nil {
		t.Fatalf("register commander: %v", err)
	}
	sys.Commander = svc
	cs := httptest.NewServer(o.Wrap("commander", svc.Handler()))
	t.Cleanup(cs.Close)
	sys.CommanderURL = cs.URL

	store, err := sqlite.Open(filepath.Join(t.TempDir(), "sys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	isvc, err := ingest.New(ingest.Options{JS: ingJS, Store: store, StateKV: h.State, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		if err := isvc.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("ingest run: %v", err)
		}
	})
	sys.Ingest = isvc
	// Stop ingest before its store closes (cleanups run last first).
	t.Cleanup(func() { cancel(); wg.Wait() })
	is := httptest.NewServer(o.Wrap("ingest", isvc.Handler()))
	t.Cleanup(is.Close)
	sys.IngestURL = is.URL

	_, sys.Ops = ConnectAs(t, s, "ops")

	for i := range o.Controllers {
		c := sim.NewController(sim.Config{Target: d.Addr().String(), Serial: fmt.Sprintf("SYS-%d", i+1),
			Model: "SIM-1", Firmware: "1.0", Doors: o.Doors, Inputs: o.Doors, Outputs: o.Doors,
			Backoff: sim.BackoffConfig{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}})
		wg.Go(func() { _ = c.Run(ctx) })
		sys.Controllers = append(sys.Controllers, c)
	}
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		list, err := svc.Controllers(ctx, "", 0)
		if err != nil {
			return err
		}
		if n := len(list.Controllers); n != o.Controllers {
			return fmt.Errorf("%d of %d controllers online", n, o.Controllers)
		}
		return nil
	})
	return sys
}

// Generate makes every controller log n transactions and waits until the
// driver stored them all.
func (sys *System) Generate(t *testing.T, n int) {
	t.Helper()
	want := map[*sim.Controller]uint64{}
	for _, c := range sys.Controllers {
		want[c] = c.Stats().Acked + uint64(n)
		c.Generate(n)
	}
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		for c, w := range want {
			if st := c.Stats(); st.Acked < w {
				return fmt.Errorf("%s: acked %d of %d", c.Serial(), st.Acked, w)
			}
		}
		return nil
	})
}

// StreamMsgs returns how many messages stream holds.
func (sys *System) StreamMsgs(t *testing.T, stream string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := sys.Ops.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	return st.CachedInfo().State.Msgs
}
