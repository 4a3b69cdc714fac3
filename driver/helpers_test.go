package driver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/streams"
)

// testTiming keeps liveness short so that tests do not wait for defaults.
var testTiming = scpbridge.Timing{Handshake: 2 * time.Second, Heartbeat: 500 * time.Millisecond, OfflineTime: 3 * time.Second}

func testLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel).With().Timestamp().Logger()
}

// env is one embedded JetStream server shared by the drivers of a test.
type env struct {
	t    testing.TB
	opts *server.Options
	srv  *server.Server
	nc   *nats.Conn // the test's own connection, for checks
	js   jetstream.JetStream
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, opts: natstest.Options(t)}
	e.srv = natstest.RunServerWith(t, e.opts)
	e.nc = natstest.Connect(t, e.srv, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	e.js = natstest.JetStream(t, e.nc)
	return e
}

// restart shuts the server down (fn runs while it is down) and starts it
// again on the same port and store.
func (e *env) restart(down func()) {
	e.t.Helper()
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	down()
	e.srv = natstest.RunServerWith(e.t, e.opts)
}

func testStreams() streams.Config {
	c := streams.DefaultConfig()
	c.EventsMaxAge = time.Hour
	c.DuplicateWindow = 10 * time.Minute
	return c
}

// startDriver starts a driver on 127.0.0.1 with its own NATS connection.
func (e *env) startDriver(id string, mod func(*driver.Options)) *driver.Driver {
	e.t.Helper()
	nc := natstest.Connect(e.t, e.srv, nats.Name(id), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	o := driver.Options{
		ID:                id,
		Listen:            "127.0.0.1:0",
		NATS:              nc,
		Streams:           testStreams(),
		Timing:            testTiming,
		Log:               testLogger(e.t),
		PublishTimeout:    2 * time.Second,
		ReconnectAfterMax: 100 * time.Millisecond,
	}
	if mod != nil {
		mod(&o)
	}
	d, err := driver.New(o)
	if err != nil {
		e.t.Fatalf("new driver: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		e.t.Fatalf("start driver: %v", err)
	}
	e.t.Cleanup(func() { _ = d.Close() })
	return d
}

// simConfig is a simulated controller that reconnects quickly.
func simConfig(target, serial string) sim.Config {
	return sim.Config{
		Target:  target,
		Serial:  serial,
		Backoff: sim.BackoffConfig{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond},
		Seed:    1,
	}
}

// waitSessions waits until d holds n sessions.
func waitSessions(t testing.TB, d *driver.Driver, n int) {
	t.Helper()
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if got := d.Stats().Sessions; got != n {
			return fmt.Errorf("driver %s holds %d sessions, want %d", d.ID(), got, n)
		}
		return nil
	})
}

// runFleet runs f until the test ends or stop is called.
func runFleet(t testing.TB, f *sim.Fleet) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("fleet: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// runController runs c until the test ends.
func runController(t testing.TB, c *sim.Controller) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller %s: %v", c.Serial(), err)
		}
	})
}

// waitAcked waits until every controller has all it generated acknowledged.
func waitAcked(t testing.TB, timeout time.Duration, ctrls ...*sim.Controller) {
	t.Helper()
	natstest.CheckFor(t, timeout, 20*time.Millisecond, func() error {
		for _, c := range ctrls {
			st := c.Stats()
			if st.Unacked != 0 || st.Acked != st.Generated || c.Pending() != 0 {
				return fmt.Errorf("%s: generated %d, acked %d, unacked %d, follow-ups pending %d", c.Serial(), st.Generated, st.Acked, st.Unacked, c.Pending())
			}
		}
		return nil
	})
}

// storedEvent is one message of SCP_EVENTS.
type storedEvent struct {
	Subject string
	MsgID   string
	Event   scpgate.Event
}

// readEvents returns every message of SCP_EVENTS, checking that each
// decodes, carries its id as Nats-Msg-Id and sits on its subject.
func readEvents(t testing.TB, js jetstream.JetStream) []storedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		t.Fatalf("events stream: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("events stream info: %v", err)
	}
	total := int(info.State.Msgs)
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	out := make([]storedEvent, 0, total)
	for len(out) < total {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatalf("fetch events: %v", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var se storedEvent
			se.Subject, se.MsgID = m.Subject(), m.Headers().Get(jetstream.MsgIDHeader)
			if err := json.Unmarshal(m.Data(), &se.Event); err != nil {
				t.Fatalf("event %s does not decode: %v", m.Data(), err)
			}
			want, err := streams.EventSubject(se.Event.Controller, se.Event.Kind)
			if err != nil || want != se.Subject {
				t.Errorf("event %s on subject %s, want %s (%v)", se.Event.ID, se.Subject, want, err)
			}
			if se.MsgID != se.Event.ID {
				t.Errorf("event %s has Nats-Msg-Id %q", se.Event.ID, se.MsgID)
			}
			out = append(out, se)
		}
		if err := batch.Error(); err != nil {
			t.Fatalf("fetch events: %v", err)
		}
		if n == 0 {
			t.Fatalf("fetched %d of %d events, then nothing", len(out), total)
		}
	}
	return out
}

// checkExactlyOnce checks that the stream holds, for every controller,
// exactly the transactions it generated, once each.
func checkExactlyOnce(t testing.TB, evs []storedEvent, ctrls ...*sim.Controller) {
	t.Helper()
	ids := make(map[string]int)
	perSerial := make(map[string]int)
	for _, e := range evs {
		if e.Event.Kind == scpgate.KindPresence {
			continue
		}
		ids[e.Event.ID]++
		perSerial[e.Event.Controller]++
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("event %s stored %d times", id, n)
		}
	}
	total := 0
	for _, c := range ctrls {
		st := c.Stats()
		total += int(st.Generated)
		if got := perSerial[c.Serial()]; got != int(st.Generated) {
			t.Errorf("%s: %d events stored, %d generated", c.Serial(), got, st.Generated)
		}
	}
	if len(ids) != total {
		t.Errorf("%d distinct events stored, %d generated", len(ids), total)
	}
}

// presenceOf returns the presence events of serial, in stream order.
func presenceOf(evs []storedEvent, serial string) []scpgate.Event {
	var out []scpgate.Event
	for _, e := range evs {
		if e.Event.Kind == scpgate.KindPresence && e.Event.Controller == serial {
			out = append(out, e.Event)
		}
	}
	return out
}

// lb is a minimal TCP load balancer: each connection goes to the first
// backend that accepts it.
type lb struct {
	ln       net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	backends []string
}

// add appends a backend.
func (l *lb) add(addr string) {
	l.mu.Lock()
	l.backends = append(l.backends, addr)
	l.mu.Unlock()
}

func newLB(t testing.TB, backends ...string) *lb {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("lb listen: %v", err)
	}
	l := &lb{ln: ln, backends: backends}
	l.wg.Add(1)
	go l.serve()
	t.Cleanup(func() {
		ln.Close()
		l.wg.Wait()
	})
	return l
}

func (l *lb) addr() string { return l.ln.Addr().String() }

func (l *lb) serve() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer c.Close()
			l.mu.Lock()
			backends := append([]string(nil), l.backends...)
			l.mu.Unlock()
			var b net.Conn
			for _, addr := range backends {
				if b, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
					break
				}
			}
			if b == nil {
				return
			}
			defer b.Close()
			done := make(chan struct{}, 2)
			pipe := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				if cw, ok := dst.(interface{ CloseWrite() error }); ok {
					_ = cw.CloseWrite()
				}
				done <- struct{}{}
			}
			go pipe(b, c)
			go pipe(c, b)
			<-done
			<-done
		}()
	}
}

func containsStr(s, sub string) bool { return strings.Contains(s, sub) }
