package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/internal/simtest"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/streams"
)

// startCluster starts a three-node JetStream cluster in the test process,
// like the one of docker-compose.yml, and waits for its meta leader. It
// returns the servers and their options (to restart one).
func startCluster(t *testing.T) ([]*server.Server, []*server.Options) {
	t.Helper()
	ports := freePorts(t, 3)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var srvs []*server.Server
	var opts []*server.Options
	for i, p := range ports {
		o := natstest.Options(t)
		o.ServerName = fmt.Sprintf("nats-%d", i+1)
		o.Cluster = server.ClusterOpts{Name: "scpgate", Host: "127.0.0.1", Port: p}
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		srvs = append(srvs, natstest.RunServerWith(t, o))
		opts = append(opts, o)
	}
	checkFor(t, "JetStream meta leader", 30*time.Second, 50*time.Millisecond, func() error {
		leaders := 0
		for _, s := range srvs {
			if s.JetStreamIsLeader() {
				leaders++
			}
			if !s.JetStreamIsCurrent() {
				return fmt.Errorf("%s is not current with the meta leader", s.Name())
			}
		}
		if leaders != 1 {
			return fmt.Errorf("%d meta leaders", leaders)
		}
		return nil
	})
	return srvs, opts
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// watchPause samples the fleet's acknowledgements every 10 ms until the
// returned function is called, which returns the longest time without
// progress.
func watchPause(fleet *sim.Fleet) func() time.Duration {
	stop := make(chan struct{})
	done := make(chan time.Duration)
	go func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		last, at, longest := fleet.Report().Acked, time.Now(), time.Duration(0)
		for {
			select {
			case <-stop:
				done <- longest
				return
			case now := <-t.C:
				if a := fleet.Report().Acked; a != last {
					longest = max(longest, now.Sub(at))
					last, at = a, now
				}
			}
		}
	}()
	return func() time.Duration {
		close(stop)
		return <-done
	}
}

// clusterURL is a client URL listing every server of srvs.
func clusterURL(srvs []*server.Server) string {
	var urls []string
	for _, s := range srvs {
		urls = append(urls, s.ClientURL())
	}
	return strings.Join(urls, ",")
}

// clusterConnect connects to the cluster at url as name, reconnecting
// quickly and forever (a node is stopped under it), until the test ends.
func clusterConnect(t *testing.T, url, name string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// streamLeader returns the server name of SCP_EVENTS's leader.
func streamLeader(ctx context.Context, js jetstream.JetStream) (string, error) {
	st, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		return "", fmt.Errorf("events stream: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("events stream info: %w", err)
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", errors.New("events stream has no leader")
	}
	return info.Cluster.Leader, nil
}

// TestClusterStreamLeaderLoss runs a driver and a simulated fleet on a
// three-node cluster with R3 streams and shuts the SCP_EVENTS leader down
// under load: a new leader takes over, every generated event is stored
// exactly once, and the old leader, restarted, catches up.
func TestClusterStreamLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster for about 20 s")
	}
	srvs, opts := startCluster(t)
	url := clusterURL(srvs)
	connect := func(name string) *nats.Conn { return clusterConnect(t, url, name) }
	nc := connect("test")
	js := natstest.JetStream(t, nc)

	cfg := streams.DefaultConfig()
	cfg.Replicas = 3
	cfg.EventsMaxAge = time.Hour
	cfg.DuplicateWindow = 10 * time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := streams.Ensure(ctx, js, cfg); err != nil {
		t.Fatalf("ensure streams with 3 replicas: %v", err)
	}

	var logs lockedBuffer
	d, err := driver.New(driver.Options{
		ID:             "cluster-driver",
		Listen:         "127.0.0.1:0",
		NATS:           connect("driver"),
		Streams:        cfg,
		PublishTimeout: 2 * time.Second,
		Log:            zerolog.New(zerolog.MultiLevelWriter(&logs, zerolog.NewTestWriter(t))).Level(zerolog.WarnLevel),
	})
	if err != nil {
		t.Fatalf("new driver: %v", err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatalf("start driver: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })

	const controllers = 40
	fleet := sim.NewFleet(sim.FleetConfig{
		Controller: sim.Config{
			Target:  d.Addr().String(),
			Rate:    10,
			Backoff: sim.BackoffConfig{Min: 50 * time.Millisecond, Max: time.Second},
			Seed:    7,
			Log:     testLogger(t),
		},
		Count:        controllers,
		SerialPrefix: "R3",
	})
	stopFleet := simtest.RunFleet(t, fleet)
	checkFor(t, "fleet connected", 20*time.Second, 20*time.Millisecond, func() error {
		if r := fleet.Report(); r.Connected != controllers || r.Acked < 500 {
			return fmt.Errorf("%d of %d connected, %d acked", r.Connected, controllers, r.Acked)
		}
		return nil
	})

	leader, err := streamLeader(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	before := fleet.Report()
	pause := watchPause(fleet)
	down := -1
	for i, s := range srvs {
		if s.Name() == leader {
			down = i
			t.Logf("shutting down %s, leader of %s, after %d events acked", leader, streams.EventsStream, before.Acked)
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
	checkFor(t, "new stream leader", 30*time.Second, 100*time.Millisecond, func() error {
		lctx, lcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer lcancel()
		l, err := streamLeader(lctx, js)
		if err != nil {
			return err
		}
		if l == leader {
			return fmt.Errorf("leader still %s", l)
		}
		t.Logf("new leader of %s: %s", streams.EventsStream, l)
		return nil
	})
	// Events keep being stored after the election.
	checkFor(t, "events acked after the election", 30*time.Second, 50*time.Millisecond, func() error {
		if r := fleet.Report(); r.Acked < before.Generated+500 {
			return fmt.Errorf("%d acked, want %d", r.Acked, before.Generated+500)
		}
		return nil
	})

	longest := pause()
	st := d.Stats()
	t.Logf("longest pause of acks: %s; driver: %d no-leader outages, %.1fs without leader, %d publish errors",
		longest.Round(10*time.Millisecond), st.NoLeaderOutages, st.NoLeaderSeconds, st.PublishErrors)
	out := logs.String()
	if n := strings.Count(out, "SCP_EVENTS has no leader (no stream took the event)"); uint64(n) != st.NoLeaderOutages {
		t.Errorf("%d outage warnings for %d outages, want one each", n, st.NoLeaderOutages)
	}
	if n := strings.Count(out, "publish failed; will republish"); n > 2*controllers {
		t.Errorf("%d per-session publish warnings, want at most %d (one per session and failure)", n, 2*controllers)
	}
	fleet.SetRate(0)
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if err := fleet.WaitAcked(wctx); err != nil {
		t.Fatalf("wait acked: %v; report %+v", err, fleet.Report())
	}
	stopFleet()
	t.Logf("fleet: %+v", fleet.Report())
	checkExactlyOnce(t, js, fleet)

	// The old leader comes back on its store and catches up.
	natstest.RunServerWith(t, opts[down])
	checkFor(t, leader+" current again", 30*time.Second, 100*time.Millisecond, func() error {
		ictx, icancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer icancel()
		st, err := js.Stream(ictx, streams.EventsStream)
		if err != nil {
			return err
		}
		info, err := st.Info(ictx)
		if err != nil {
			return err
		}
		for _, r := range info.Cluster.Replicas {
			if r.Name == leader && r.Current && !r.Offline {
				return nil
			}
		}
		return fmt.Errorf("replicas %+v", info.Cluster.Replicas)
	})
}
