package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/console"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/natsconn"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/internal/systest"
	"github.com/scpgate/scpgate/replay"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/sqlite"
	"github.com/scpgate/scpgate/streams"
)

// permServer starts a JetStream server whose users are those of
// deploy/nats/auth.conf, loaded the way a node loads them.
func permServer(t *testing.T) *server.Server { return systest.PermServer(t) }

// roleConn is one role's connection and the asynchronous errors (such as
// permission violations) it received.
type roleConn struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	mu   sync.Mutex
	errs []error
}

func (r *roleConn) errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

func connectAs(t *testing.T, s *server.Server, user string) *roleConn {
	t.Helper()
	r := &roleConn{}
	r.nc = natstest.Connect(t, s, nats.UserInfo(user, systest.Password(user)), nats.Name("scpgate-"+user),
		nats.CustomInboxPrefix(natsconn.Role(user).InboxPrefix()),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			r.mu.Lock()
			r.errs = append(r.errs, err)
			r.mu.Unlock()
		}))
	r.js = natstest.JetStream(t, r.nc)
	return r
}

// violation waits for an asynchronous permission violation naming subject.
func (r *roleConn) violation(t *testing.T, what, subject string) {
	t.Helper()
	natstest.CheckFor(t, 3*time.Second, 10*time.Millisecond, func() error {
		for _, err := range r.errors() {
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), subject) {
				return nil
			}
		}
		return fmt.Errorf("%s: no permission violation for %s (errors: %v)", what, subject, r.errors())
	})
}

func testLog(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

// TestNATSPermissions runs every role's real code against a server with
// the users of deploy/nats/auth.conf: the driver stores events, keeps
// presence and delivers a command; the commander submits it and hears
// the result; ingest consumes both streams, measures its lag and
// rebuilds; ops replays, reads streams and discovers the drivers. None
// may hit a permission violation. Then each role tries a subject that is
// not its own and is refused.
func TestNATSPermissions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts every service")
	}
	s := permServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	drv, ing, cmd, ops := connectAs(t, s, "driver"), connectAs(t, s, "ingest"), connectAs(t, s, "commander"), connectAs(t, s, "ops")
	vnd := connectAs(t, s, "vendor")

	if _, err := nats.Connect(s.ClientURL(), nats.UserInfo("driver", "wrong")); err == nil {
		t.Error("wrong password: connected")
	}

	// Driver and a controller: events stored and acknowledged.
	d, err := driver.New(driver.Options{ID: "perm-d", Listen: "127.0.0.1:0", NATS: drv.nc, Log: testLog(t),
		Timing: scpbridge.Timing{Handshake: 2 * time.Second, Heartbeat: 500 * time.Millisecond, OfflineTime: 3 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatalf("driver start as driver: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	// The driver created the streams; ops owns their settings and updates
	// them (scpgate streams apply).
	if _, err := streams.Apply(ctx, ops.js, streams.DefaultConfig()); err != nil {
		t.Fatalf("apply streams as ops: %v", err)
	}
	c := sim.NewController(sim.Config{Target: d.Addr().String(), Serial: "PERM1", Backoff: sim.BackoffConfig{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}})
	cctx, stopCtrl := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(cctx) })
	t.Cleanup(func() { stopCtrl(); wg.Wait() })
	c.Generate(20)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if st := c.Stats(); st.Acked != 20 {
			return fmt.Errorf("acked %d of 20", st.Acked)
		}
		return nil
	})

	// Commander: submit, delivered by the driver, result heard.
	svc, err := commander.New(commander.Options{JS: cmd.js, NC: cmd.nc, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	if _, err := svc.Register(cmd.nc); err != nil {
		t.Fatalf("register commander: %v", err)
	}
	resp, err := svc.Submit(ctx, "PERM1", commander.SubmitRequest{Type: scpgate.CmdIDRequest, Wait: 10 * time.Second})
	if err != nil {
		t.Fatalf("submit as commander: %v", err)
	}
	if resp.Result == nil || resp.Result.Status != scpgate.StatusOK {
		t.Fatalf("submit: got %+v, want a result ok", resp)
	}
	if _, err := svc.Get(ctx, resp.ID); err != nil {
		t.Errorf("get command as commander: %v", err)
	}
	// Its sweeper ends an expired command of a controller that is gone.
	gone, err := svc.Submit(ctx, "PERMGONE", commander.SubmitRequest{Type: scpgate.CmdReset, TTL: "1s"})
	if err != nil {
		t.Fatalf("submit as commander: %v", err)
	}
	sw, err := commander.NewSweeper(commander.SweeperOptions{JS: cmd.js, Log: testLog(t), Grace: time.Millisecond, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Check(ctx); err != nil {
		t.Errorf("sweeper check as commander: %v", err)
	}
	natstest.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		if err := sw.Sweep(ctx); err != nil {
			return err
		}
		if rec, err := svc.Get(ctx, gone.ID); err != nil || rec.Status != scpgate.StatusExpired {
			return fmt.Errorf("swept command: %+v, %v; want expired", rec, err)
		}
		return nil
	})
	if st := sw.Stats(); st.Errors != 0 {
		t.Errorf("sweeper as commander: stats %+v, want no errors", st)
	}
	list, err := svc.Controllers(ctx, "", 10)
	if err != nil || len(list.Controllers) != 1 || !list.Controllers[0].Online {
		t.Errorf("controllers as commander: got %+v, %v; want PERM1 online", list, err)
	}

	// Ingest: both streams consumed, lag measured, rebuild.
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "perm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h, err := streams.Ensure(ctx, ing.js, streams.DefaultConfig())
	if err != nil {
		t.Fatalf("ensure as ingest: %v", err)
	}
	isvc, err := ingest.New(ingest.Options{JS: ing.js, Store: store, StateKV: h.State, Log: testLog(t), LagInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ictx, stopIngest := context.WithCancel(ctx)
	var iwg sync.WaitGroup
	iwg.Go(func() {
		if err := isvc.Run(ictx); err != nil {
			t.Errorf("ingest run: %v", err)
		}
	})
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		st, lag := isvc.Stats(), isvc.Lag()
		switch {
		case st.Events < 21 || st.Results < 1: // 20 transactions and a presence event at least
			return fmt.Errorf("ingest stored %d events, %d results", st.Events, st.Results)
		case lag.Events.Updated.IsZero() || lag.Events.Error != "" || lag.Pending != 0:
			return fmt.Errorf("ingest lag %+v", lag)
		}
		return nil
	})
	stopIngest()
	iwg.Wait()
	store2, err := sqlite.Open(filepath.Join(t.TempDir(), "rebuild.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store2.Close() })
	if err := ingest.Rebuild(ctx, ing.js, store2, 0, nil); err != nil {
		t.Errorf("rebuild as ingest: %v", err)
	}

	// Ops: replay, stream and consumer info, driver discovery.
	n, err := replay.Count(ctx, ops.js, replay.Options{Serial: "PERM1"})
	if err != nil || n < 20 {
		t.Errorf("replay count as ops: %d, %v", n, err)
	}
	got := 0
	err = replay.Run(ctx, ops.js, replay.Options{Serial: "PERM1"}, func(replay.Msg) error { got++; return nil }, nil)
	if err != nil || got < 20 {
		t.Errorf("replay as ops: %d events, %v", got, err)
	}
	if _, err := ops.js.Stream(ctx, streams.EventsStream); err != nil {
		t.Errorf("stream info as ops: %v", err)
	}
	if _, err := ops.js.Consumer(ctx, streams.EventsStream, ingest.DefaultDurable); err != nil {
		t.Errorf("consumer info as ops: %v", err)
	}
	info, _ := micro.ControlSubject(micro.InfoVerb, driver.ServiceName, "")
	if m, err := ops.nc.Request(info, nil, 2*time.Second); err != nil || !strings.Contains(string(m.Data), "perm-d") {
		t.Errorf("driver discovery as ops: %v", err)
	}
	if m, err := ops.nc.Request(driver.SessionsSubject("perm-d"), nil, 2*time.Second); err != nil || !strings.Contains(string(m.Data), "PERM1") {
		t.Errorf("driver sessions as ops: %v", err)
	}
	if m, err := ops.nc.Request(driver.ShedSubject("perm-d"), []byte(`{"fraction":0.01}`), 2*time.Second); err != nil || !strings.Contains(string(m.Data), `"shed":0`) {
		t.Errorf("driver shed as ops: %v", err)
	}

	consoleFleet(ctx, t, cmd, c)
	vendorApp(ctx, t, vnd)

	for user, r := range map[string]*roleConn{"driver": drv, "ingest": ing, "commander": cmd, "ops": ops, "vendor": vnd} {
		for _, err := range r.errors() {
			t.Errorf("%s: asynchronous error on its own path: %v", user, err)
		}
	}

	// Outside their subjects: refused.
	for _, tc := range []struct {
		who     string
		r       *roleConn
		subject string
	}{
		{"ingest queues a command", ing, "scp.cmd.X"},
		{"commander forges an event", cmd, "scp.evt.X.access"},
		{"driver queues a command", drv, "scp.cmd.X"},
		{"ops forges a result", ops, "scp.res.X"},
		{"ops deletes a stream", ops, "$JS.API.STREAM.DELETE.SCP_EVENTS"},
		{"driver updates a stream", drv, "$JS.API.STREAM.UPDATE.SCP_EVENTS"},
		{"commander updates a stream", cmd, "$JS.API.STREAM.UPDATE.SCP_EVENTS"},
		{"ingest updates a bucket", ing, "$JS.API.STREAM.UPDATE.KV_scp_state"},
		{"ingest writes presence", ing, "$KV.scp_sessions.X"},
		{"commander purges commands", cmd, "$JS.API.STREAM.PURGE.SCP_COMMANDS"},
		{"vendor queues a command past the commander", vnd, "scp.cmd.X"},
		{"vendor writes state", vnd, "$KV.scp_state.X"},
		{"vendor forges an event", vnd, "scp.evt.X.access"},
	} {
		if err := tc.r.nc.Publish(tc.subject, []byte("{}")); err != nil {
			t.Fatalf("%s: publish: %v", tc.who, err)
		}
		_ = tc.r.nc.Flush()
		tc.r.violation(t, tc.who, tc.subject)
	}
	vendorDenied(t, vnd)
	if _, err := ing.nc.Subscribe("scp.cmd.*", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	_ = ing.nc.Flush()
	ing.violation(t, "ingest listens to commands", "scp.cmd.*")
}

// vendorApp does what the vendor application does, as the vendor user:
// submits a command through the commander's micro endpoint and hears its
// result live, reads events and results with durable consumers of its
// own, and reads a controller's current state.
func vendorApp(ctx context.Context, t *testing.T, r *roleConn) {
	t.Helper()
	res, err := r.nc.SubscribeSync("scp.res.PERM1")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := json.Marshal(commander.MicroSubmit{Serial: "PERM1", Wait: "10s",
		SubmitRequest: commander.SubmitRequest{Type: scpgate.CmdIDRequest}})
	m, err := r.nc.RequestWithContext(ctx, commander.SubjectPrefix+".submit", req)
	if err != nil {
		t.Fatalf("submit through the commander as vendor: %v", err)
	}
	var resp commander.SubmitResponse
	if err := json.Unmarshal(m.Data, &resp); err != nil || resp.Result == nil || resp.Result.Status != scpgate.StatusOK {
		t.Fatalf("submit as vendor: %s (%v); want a result ok", m.Data, err)
	}
	if _, err := res.NextMsg(5 * time.Second); err != nil {
		t.Errorf("live result as vendor: %v", err)
	}
	info, _ := micro.ControlSubject(micro.InfoVerb, commander.ServiceName, "")
	if _, err := r.nc.Request(info, nil, 2*time.Second); err != nil {
		t.Errorf("commander discovery as vendor: %v", err)
	}

	for stream, min := range map[string]int{streams.EventsStream: 20, streams.ResultsStream: 2} {
		c, err := r.js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: "vendor-app", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatalf("consumer on %s as vendor: %v", stream, err)
		}
		batch, err := c.Fetch(min, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatalf("fetch %s as vendor: %v", stream, err)
		}
		n := 0
		for msg := range batch.Messages() {
			if err := msg.DoubleAck(ctx); err != nil {
				t.Errorf("ack %s as vendor: %v", stream, err)
			}
			n++
		}
		if n != min {
			t.Errorf("%s as vendor: read %d messages, want %d (%v)", stream, n, min, batch.Error())
		}
		if _, err := c.Info(ctx); err != nil {
			t.Errorf("consumer info on %s as vendor: %v", stream, err)
		}
	}
	kv, err := r.js.KeyValue(ctx, streams.StateBucket)
	if err != nil {
		t.Fatalf("bind scp_state as vendor: %v", err)
	}
	if _, err := kv.Get(ctx, "PERM1"); err != nil {
		t.Errorf("read state of PERM1 as vendor: %v", err)
	}
	vendorClients(ctx, t, r, kv)
}

// consoleFleet reads the web console's fleet view as the commander, which
// serves it, with an ingest consumer behind (so its lag needs the oldest
// pending message): every part of it is readable; so are the recent
// commands of a controller.
func consoleFleet(ctx context.Context, t *testing.T, r *roleConn, c *sim.Controller) {
	t.Helper()
	c.Generate(5)
	mux := http.NewServeMux()
	console.New(console.Options{NC: r.nc, CacheFor: time.Nanosecond, Log: testLog(t)}).Register(mux)
	var f console.Fleet
	natstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, "GET", "/console/api/fleet", nil))
		f = console.Fleet{}
		if err := json.Unmarshal(rec.Body.Bytes(), &f); err != nil || rec.Code != http.StatusOK {
			return fmt.Errorf("fleet as commander: %d %s", rec.Code, rec.Body)
		}
		if len(f.Ingest) == 0 || f.Ingest[0].Pending == 0 {
			return fmt.Errorf("fleet as commander: ingest lag %+v, want events pending", f.Ingest)
		}
		return nil
	})
	if len(f.Errors) > 0 {
		t.Errorf("fleet as commander: %q", f.Errors)
	}
	if len(f.Drivers) != 1 || f.Drivers[0].ID != "perm-d" || f.Online != 1 || len(f.Streams) != 3 || len(f.Ingest) != 2 {
		t.Errorf("fleet as commander: %+v, want perm-d holding PERM1, 3 streams, 2 lags", f)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, "GET", "/console/api/controllers/PERM1/commands", nil))
	var list console.CommandList
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || rec.Code != http.StatusOK || len(list.Commands) != 1 {
		t.Errorf("recent commands as commander: %d %s, want the one command", rec.Code, rec.Body)
	}
}
