package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/postgres"
	"github.com/scpgate/scpgate/postgres/pgtest"
	"github.com/scpgate/scpgate/sqlite"
	"github.com/scpgate/scpgate/storetest"
	"github.com/scpgate/scpgate/streams"
)

// backend makes stores of one kind: db names a fresh database, open opens
// a store on it (several may be open on one database).
type backend struct {
	name string
	db   func(t *testing.T) string
	open func(t *testing.T, db string) scpgate.Store
}

var backends = []backend{
	{
		name: "sqlite",
		db:   func(t *testing.T) string { return filepath.Join(t.TempDir(), "events.db") },
		open: func(t *testing.T, db string) scpgate.Store {
			s, err := sqlite.Open(db)
			if err != nil {
				t.Fatalf("open sqlite: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	},
	{
		name: "postgres",
		db:   func(t *testing.T) string { return pgtest.DSN(t) },
		open: func(t *testing.T, dsn string) scpgate.Store {
			s, err := postgres.Open(context.Background(), dsn)
			if err != nil {
				t.Fatalf("open postgres: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	},
}

// forEachBackend runs fn as a subtest per backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// env is a JetStream server with the scpgate streams.
type env struct {
	js jetstream.JetStream
	h  *streams.Handles
}

func newEnv(t *testing.T) *env {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := streams.Ensure(ctx, js, streams.DefaultConfig())
	if err != nil {
		t.Fatalf("ensure streams: %v", err)
	}
	return &env{js: js, h: h}
}

// publish publishes docs to their subjects with their ids as message ids
// (no id when msgID is false, so a repeat is stored again). With msgID,
// each event newly stored gets its stream sequence in StreamSeq, as ingest
// will read it, so that storetest.Expected(events) is the state ingest
// must reach.
func (e *env) publish(t *testing.T, msgID bool, events []scpgate.Event, results []scpgate.Result) {
	t.Helper()
	var futures []jetstream.PubAckFuture
	pub := func(subject, id string, v any) {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		var opts []jetstream.PublishOpt
		if msgID {
			opts = append(opts, jetstream.WithMsgID(id))
		}
		f, err := e.js.PublishAsync(subject, data, opts...)
		if err != nil {
			t.Fatalf("publish %s: %v", id, err)
		}
		futures = append(futures, f)
	}
	for _, ev := range events {
		subj, err := streams.EventSubject(ev.Controller, ev.Kind)
		if err != nil {
			t.Fatalf("subject of %s: %v", ev.ID, err)
		}
		pub(subj, ev.ID, ev)
	}
	for _, r := range results {
		subj, err := streams.ResultSubject(r.Controller)
		if err != nil {
			t.Fatalf("subject of %s: %v", r.ID, err)
		}
		pub(subj, r.ID, r)
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
		t.Fatalf("publish of %d messages not acknowledged", len(futures))
	}
	for i, f := range futures {
		select {
		case err := <-f.Err():
			t.Fatalf("publish %s: %v", f.Msg().Subject, err)
		case ack := <-f.Ok():
			if msgID && i < len(events) && !ack.Duplicate {
				events[i].StreamSeq = ack.Sequence
			}
		default:
		}
	}
}

// run starts a service and stops it (waiting for Run to return) on
// cleanup.
func run(t *testing.T, opts ingest.Options) *ingest.Service {
	t.Helper()
	opts.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	if opts.RetryDelay == 0 {
		opts.RetryDelay = 50 * time.Millisecond
	}
	if opts.MaxWait == 0 {
		opts.MaxWait = 200 * time.Millisecond
	}
	if opts.LagInterval == 0 {
		opts.LagInterval = 50 * time.Millisecond
	}
	svc, err := ingest.New(opts)
	if err != nil {
		t.Fatalf("new service: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("run did not return after cancel")
		}
	})
	return svc
}

// waitDrained waits until the shared consumers have nothing pending or
// unacknowledged and store holds want events.
func (e *env) waitDrained(t *testing.T, store scpgate.Store, want int) {
	t.Helper()
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		for _, stream := range []string{streams.EventsStream, streams.ResultsStream} {
			c, err := e.js.Consumer(context.Background(), stream, ingest.DefaultDurable)
			if err != nil {
				return err
			}
			info, err := c.Info(context.Background())
			if err != nil {
				return err
			}
			if info.NumPending+uint64(info.NumAckPending) > 0 {
				return fmt.Errorf("%s: %d pending, %d unacknowledged", stream, info.NumPending, info.NumAckPending)
			}
		}
		if got := len(storetest.All(t, store, scpgate.EventQuery{Limit: 1000})); got != want {
			return fmt.Errorf("store holds %d events, want %d", got, want)
		}
		return nil
	})
}

func results(n int) []scpgate.Result {
	out := make([]scpgate.Result, n)
	for i := range out {
		at := storetest.Epoch.Add(time.Duration(i) * time.Second)
		out[i] = scpgate.Result{V: 1, ID: fmt.Sprintf("cmd-%d", i), Controller: storetest.Serial(i % 3),
			Type: scpgate.CmdOutput, Status: scpgate.StatusOK, Seq: uint64(i + 1), Created: at, Finished: at.Add(time.Second)}
	}
	return out
}

func TestExactlyOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t)
		store := b.open(t, b.db(t))
		events := storetest.History(1, 5, 200)
		rs := results(20)
		e.publish(t, true, events, rs)
		// Repeats past the duplicate window: stored in the stream again.
		e.publish(t, false, events[100:300], rs[:5])
		svc := run(t, ingest.Options{JS: e.js, Store: store, StateKV: e.h.State})
		e.waitDrained(t, store, len(events))

		storetest.SameEvents(t, "stored events", storetest.All(t, store, scpgate.EventQuery{Limit: 1000}), storetest.Sorted(events))
		want := storetest.Expected(events)
		storetest.SameStates(t, store, want)
		checkKV(t, e.h.State, want)
		for _, r := range rs {
			if _, err := store.ResultByID(context.Background(), r.ID); err != nil {
				t.Fatalf("result %s: %v", r.ID, err)
			}
		}
		natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
			st := svc.Stats()
			if st.Events != uint64(len(events)) || st.Results != 20 || st.Duplicates != 205 {
				return fmt.Errorf("stats %+v, want %d events, 20 results, 205 duplicates", st, len(events))
			}
			return nil
		})
	})
}

// checkKV fails t unless the state bucket holds want.
func checkKV(t *testing.T, kv jetstream.KeyValue, want map[string]*scpgate.ControllerState) {
	t.Helper()
	get := func(key string, v any) string {
		e, err := kv.Get(context.Background(), key)
		if err != nil {
			t.Fatalf("state bucket key %s: %v", key, err)
		}
		if err := json.Unmarshal(e.Value(), v); err != nil {
			t.Fatalf("state bucket key %s: %v", key, err)
		}
		return storetest.JSON(v)
	}
	for serial, w := range want {
		c := *w
		c.Doors, c.Inputs, c.Outputs = nil, nil, nil
		if got := get(ingest.ControllerKey(serial), &scpgate.ControllerState{}); got != storetest.JSON(c) {
			t.Fatalf("bucket state of %s:\n got %s\nwant %s", serial, got, storetest.JSON(c))
		}
		for _, d := range w.Doors {
			if got := get(ingest.PointKey(serial, scpgate.PointDoor, d.Door), &scpgate.DoorState{}); got != storetest.JSON(d) {
				t.Fatalf("bucket door %d of %s:\n got %s\nwant %s", d.Door, serial, got, storetest.JSON(d))
			}
		}
		for _, s := range w.Inputs {
			if got := get(ingest.PointKey(serial, scpgate.PointInput, s.Input), &scpgate.InputState{}); got != storetest.JSON(s) {
				t.Fatalf("bucket input %d of %s:\n got %s\nwant %s", s.Input, serial, got, storetest.JSON(s))
			}
		}
		for _, s := range w.Outputs {
			if got := get(ingest.PointKey(serial, scpgate.PointOutput, s.Output), &scpgate.OutputState{}); got != storetest.JSON(s) {
				t.Fatalf("bucket output %d of %s:\n got %s\nwant %s", s.Output, serial, got, storetest.JSON(s))
			}
		}
	}
}

// crashingStore commits a batch of events, then fails once as if the
// process died before acknowledging it.
type crashingStore struct {
	scpgate.Store
	armed atomic.Bool
	seen  sync.Map // event id -> times written
}

func (s *crashingStore) WriteBatch(ctx context.Context, events []scpgate.Event, results []scpgate.Result) (int, error) {
	n, err := s.Store.WriteBatch(ctx, events, results)
	for _, ev := range events {
		v, _ := s.seen.LoadOrStore(ev.ID, new(atomic.Int32))
		v.(*atomic.Int32).Add(1)
	}
	if err == nil && len(events) > 0 && s.armed.CompareAndSwap(true, false) {
		return 0, errors.New("crashed after commit")
	}
	return n, err
}

func TestRedeliveryAfterCommit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t)
		store := &crashingStore{Store: b.open(t, b.db(t))}
		store.armed.Store(true)
		events := storetest.History(2, 3, 100)
		e.publish(t, true, events, nil)
		svc := run(t, ingest.Options{JS: e.js, Store: store, StateKV: e.h.State})
		e.waitDrained(t, store, len(events))

		if store.armed.Load() {
			t.Fatal("the store never crashed")
		}
		again := 0
		store.seen.Range(func(_, v any) bool {
			if v.(*atomic.Int32).Load() > 1 {
				again++
			}
			return true
		})
		if again == 0 {
			t.Fatal("no event was delivered again after the crash")
		}
		storetest.SameEvents(t, "stored events", storetest.All(t, store, scpgate.EventQuery{Limit: 1000}), storetest.Sorted(events))
		storetest.SameStates(t, store, storetest.Expected(events))
		checkKV(t, e.h.State, storetest.Expected(events))
		// The crashed batch was stored but not counted; delivered again, it
		// counts as duplicates.
		if st := svc.Stats(); st.Failures != 1 || st.Events != uint64(len(events)-again) || st.Duplicates != uint64(again) {
			t.Fatalf("stats %+v, want 1 failure, %d events, %d duplicates", st, len(events)-again, again)
		}
	})
}

func TestSharedConsumer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t)
		db := b.db(t)
		stores := []scpgate.Store{b.open(t, db), b.open(t, db), b.open(t, db)}
		var svcs []*ingest.Service
		for _, s := range stores {
			svcs = append(svcs, run(t, ingest.Options{JS: e.js, Store: s, StateKV: e.h.State, Batch: 25}))
		}
		events := storetest.History(3, 8, 150)
		for i := 0; i < len(events); i += 100 {
			e.publish(t, true, events[i:min(i+100, len(events))], nil)
		}
		e.waitDrained(t, stores[0], len(events))
		storetest.SameEvents(t, "stored events", storetest.All(t, stores[1], scpgate.EventQuery{Limit: 1000}), storetest.Sorted(events))
		want := storetest.Expected(events)
		storetest.SameStates(t, stores[2], want)
		checkKV(t, e.h.State, want)
		busy := 0
		var total uint64
		for _, s := range svcs {
			if n := s.Stats().Events; n > 0 {
				busy++
				total += n
			}
		}
		if total != uint64(len(events)) {
			t.Fatalf("instances stored %d events in all, want %d", total, len(events))
		}
		t.Logf("%d of %d instances stored events", busy, len(svcs))
	})
}

func TestBadMessagesTerminated(t *testing.T) {
	e := newEnv(t)
	store := backends[0].open(t, backends[0].db(t))
	events := storetest.History(4, 1, 20)
	ctx := context.Background()
	for _, m := range []*nats.Msg{
		{Subject: "scp.evt.SC00000.door", Data: []byte("not json")},
		{Subject: "scp.evt.OTHER.door", Data: mustJSON(t, events[3])}, // subject of another controller
		{Subject: "scp.res.SC00000", Data: []byte(`{"id":"x"}`)},
	} {
		if _, err := e.js.PublishMsg(ctx, m); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	e.publish(t, true, events, nil)
	svc := run(t, ingest.Options{JS: e.js, Store: store})
	e.waitDrained(t, store, len(events))
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if st := svc.Stats(); st.Invalid != 3 || st.Events != uint64(len(events)) {
			return fmt.Errorf("stats %+v, want 3 invalid, %d events", st, len(events))
		}
		return nil
	})
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return b
}
