package ingest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/storetest"
)

// slowFirst is a store whose batches holding the first stream message
// take a while, as a large batch on a busy database does.
type slowFirst struct {
	scpgate.Store
	delay time.Duration
}

func (s slowFirst) WriteBatch(ctx context.Context, events []scpgate.Event, results []scpgate.Result) (int, error) {
	for _, ev := range events {
		if ev.StreamSeq == 1 {
			time.Sleep(s.delay)
			break
		}
	}
	return s.Store.WriteBatch(ctx, events, results)
}

// TestResendWithWriters: an event re-sent past the duplicate window comes
// in a later batch than its first copy. With several writers that later
// batch must not be stored first: state would record the copy's stream
// sequence, newer than those of the events that followed the first copy,
// and after a boot epoch reset (ordered by stream sequence) the re-sent
// event would win over later ones.
func TestResendWithWriters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t)
		store := b.open(t, b.db(t))
		at := storetest.Epoch
		events := []scpgate.Event{
			doorEv("RS1", 1900000000, 1, "forced_open", at),
			doorEv("RS1", 1900000000, 2, "secure", at.Add(time.Second)),
		}
		events[1].Source = &scpgate.Source{Type: "door", Number: 2}
		e.publish(t, true, events, nil)
		e.publish(t, false, events[:1], nil) // stream sequence 3, in the second batch
		run(t, ingest.Options{JS: e.js, Store: slowFirst{store, 500 * time.Millisecond}, StateKV: e.h.State,
			Batch: 2, Writers: 2})
		e.waitDrained(t, store, len(events))

		want := storetest.Expected(events)
		storetest.SameStates(t, store, want)
		checkKV(t, e.h.State, want)
	})
}

// serialStore counts the WriteBatch calls running at once on a store
// that writes one batch at a time.
type serialStore struct {
	scpgate.Store
	mu           sync.Mutex
	now, most    int
	writeBatches int
}

func (s *serialStore) SerialWrites() {}

func (s *serialStore) WriteBatch(ctx context.Context, events []scpgate.Event, results []scpgate.Result) (int, error) {
	s.mu.Lock()
	s.now++
	s.most = max(s.most, s.now)
	s.writeBatches++
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.now--; s.mu.Unlock() }()
	time.Sleep(20 * time.Millisecond) // long enough for a second writer to start
	return s.Store.WriteBatch(ctx, events, results)
}

// TestSerialWriterOneWriter: a store that writes one batch at a time
// (SQLite) gets one writer whatever Options.Writers says.
func TestSerialWriterOneWriter(t *testing.T) {
	e := newEnv(t)
	store := &serialStore{Store: backends[0].open(t, backends[0].db(t))}
	events := storetest.History(1, 20, 20)
	e.publish(t, true, events, nil)
	run(t, ingest.Options{JS: e.js, Store: store, Batch: 10, Writers: 4})
	e.waitDrained(t, store.Store, len(events))
	store.mu.Lock()
	defer store.mu.Unlock()
	if store.most != 1 || store.writeBatches < 2 {
		t.Fatalf("%d batches, at most %d written at once; want several, one at a time", store.writeBatches, store.most)
	}
}
