// Package storetest is the conformance suite of scpgate.Store: every
// implementation runs Run against a fresh, empty store. It also holds the
// event generator and comparison helpers the ingest tests and the
// benchmarks share.
package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
)

// Open returns a new, empty store for one test; it closes it on cleanup.
type Open func(t *testing.T) scpgate.Store

// Run runs the conformance suite, each test on its own store from open.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, scpgate.Store)
	}{
		{"ExactlyOnce", testExactlyOnce},
		{"Results", testResults},
		{"InvalidInput", testInvalidInput},
		{"StateNoRegress", testStateNoRegress},
		{"PresenceOrder", testPresenceOrder},
		{"BootEpochDown", testBootEpochDown},
		{"PresenceOwnership", testPresenceOwnership},
		{"StateAnyOrder", testStateAnyOrder},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ConcurrentLargeBatches", testConcurrentLargeBatches},
		{"Pagination", testPagination},
		{"Filters", testFilters},
		{"BadQueries", testBadQueries},
		{"NotFound", testNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// write writes one batch and returns the count the store reports.
func write(t *testing.T, s scpgate.Store, events []scpgate.Event, results []scpgate.Result) int {
	t.Helper()
	n, err := s.WriteBatch(ctx(t), events, results)
	if err != nil {
		t.Fatalf("write batch of %d events, %d results: %v", len(events), len(results), err)
	}
	return n
}

func testExactlyOnce(t *testing.T, s scpgate.Store) {
	events := History(1, 3, 40)
	if got := write(t, s, events[:70], nil); got != 70 {
		t.Fatalf("first batch: inserted %d, want 70", got)
	}
	if got := write(t, s, events[:70], nil); got != 0 {
		t.Fatalf("same batch again: inserted %d, want 0", got)
	}
	// Overlapping, with events twice in the batch itself: a new one near
	// its first copy, and two at the end.
	batch := slices.Concat(events[50:90], events[80:81], events[90:], events[60:61], events[100:101])
	if got, want := write(t, s, batch, nil), len(events)-70; got != want {
		t.Fatalf("overlapping batch: inserted %d, want %d", got, want)
	}
	// Inserted marks the events this batch stored: the first copy of each
	// new one, not those stored before nor a second copy.
	for i, ev := range batch {
		if want := i >= 20 && i != 40 && i < len(batch)-2; ev.Inserted != want {
			t.Errorf("overlapping batch, event %d (%s): Inserted %v, want %v", i, ev.ID, ev.Inserted, want)
		}
	}
	SameEvents(t, "all events", All(t, s, scpgate.EventQuery{Limit: 1000}), Sorted(events))
	SameStates(t, s, Expected(events))
}

func result(i int, status scpgate.CommandStatus) scpgate.Result {
	created := Epoch.Add(time.Duration(i) * time.Second)
	sent := created.Add(time.Millisecond)
	return scpgate.Result{
		V: scpgate.SchemaVersion, ID: "cmd-" + Serial(i%3) + "-" + string(rune('a'+i)), Controller: Serial(i % 3),
		Type: scpgate.CmdMomentaryUnlock, Status: status, Seq: uint64(100 + i),
		Created: created, Sent: &sent, Finished: sent.Add(5 * time.Millisecond), Driver: "d1",
	}
}

func testResults(t *testing.T, s scpgate.Store) {
	rs := []scpgate.Result{result(0, scpgate.StatusOK), result(1, scpgate.StatusNAK), result(2, scpgate.StatusExpired)}
	rs[1].Reason = "content_error"
	events := History(2, 1, 5)
	if got := write(t, s, events, rs); got != len(events)+3 {
		t.Fatalf("inserted %d, want %d", got, len(events)+3)
	}
	dup := result(1, scpgate.StatusFailed) // same id, other content: the first stored wins
	if got := write(t, s, nil, []scpgate.Result{rs[0], dup, result(3, scpgate.StatusOK)}); got != 1 {
		t.Fatalf("results again: inserted %d, want 1", got)
	}
	for _, want := range rs {
		got, err := s.ResultByID(ctx(t), want.ID)
		if err != nil {
			t.Fatalf("result %s: %v", want.ID, err)
		}
		if g, w := JSON(got), JSON(want); g != w {
			t.Fatalf("result %s:\n got %s\nwant %s", want.ID, g, w)
		}
	}
}

func testInvalidInput(t *testing.T, s scpgate.Store) {
	good := History(3, 1, 3)
	bad := slices.Clone(good)
	bad[1].ID = "wrong.1.1"
	if _, err := s.WriteBatch(ctx(t), bad, nil); !errors.Is(err, scpgate.ErrInvalidEvent) {
		t.Fatalf("event with a foreign id: got %v, want ErrInvalidEvent", err)
	}
	if _, err := s.WriteBatch(ctx(t), good, []scpgate.Result{{ID: "x"}}); !errors.Is(err, scpgate.ErrInvalidResult) {
		t.Fatalf("result without controller: got %v, want ErrInvalidResult", err)
	}
	if got := All(t, s, scpgate.EventQuery{}); len(got) != 0 {
		t.Fatalf("a failed batch stored %d events", len(got))
	}
}

// door returns a door event of controller C at (epoch, seq).
func door(epoch, seq uint32, number uint16, code string) scpgate.Event {
	t := Epoch.Add(time.Duration(epoch)*time.Hour + time.Duration(seq)*time.Second)
	return scpgate.Event{
		V: 1, ID: scpgate.EventID("C", epoch, seq), Controller: "C", Kind: scpgate.KindDoor,
		BootEpoch: epoch, Seq: seq, Time: t, Received: t, Code: code,
		Source: &scpgate.Source{Type: "door", Number: number},
	}
}

func testStateNoRegress(t *testing.T, s scpgate.Store) {
	forced := door(5, 10, 1, "forced_open")
	unlocked := door(5, 11, 1, "unlocked")
	write(t, s, []scpgate.Event{forced, unlocked}, nil)
	// Older events, delivered late or again, must not move the door back.
	write(t, s, []scpgate.Event{door(5, 9, 1, "secure"), door(4, 99, 1, "locked"), forced}, nil)
	write(t, s, []scpgate.Event{door(5, 3, 1, "secure")}, nil)
	st, err := s.ControllerState(ctx(t), "C")
	if err != nil {
		t.Fatalf("state: %v", err)
	}
	if len(st.Doors) != 1 {
		t.Fatalf("doors: got %d, want 1: %s", len(st.Doors), JSON(st))
	}
	d := st.Doors[0]
	if !d.ForcedOpen || !d.Unlocked || d.Secure || d.StatusAt.Event != forced.ID || d.LockAt.Event != unlocked.ID {
		t.Fatalf("door after old events: got %s, want forced open and unlocked", JSON(d))
	}
	// A newer boot epoch wins even with a lower seq.
	write(t, s, []scpgate.Event{door(6, 1, 1, "secure")}, nil)
	st, _ = s.ControllerState(ctx(t), "C")
	if d := st.Doors[0]; !d.Secure || d.ForcedOpen || !d.Unlocked {
		t.Fatalf("door after reboot: got %s, want secure, still unlocked", JSON(d))
	}
}

// presence returns a presence event of controller P.
func presence(session, code, reason string, sec int) scpgate.Event {
	t := Epoch.Add(time.Duration(sec) * time.Second)
	return scpgate.Event{
		V: 1, ID: scpgate.PresenceEventID("P", session, code), Controller: "P", Kind: scpgate.KindPresence,
		Time: t, Received: t, Code: code,
		Presence: &scpgate.Presence{Session: session, Model: "M-" + session, Firmware: "F-" + session, Reason: reason},
	}
}

func testPresenceOrder(t *testing.T, s scpgate.Store) {
	aOn := presence("a", "online", "", 1)
	bOn := presence("b", "online", "", 5)
	aOff := presence("a", "offline", string(scpgate.ReasonTakenOver), 6)
	// Take-over delivered backwards: the old session's end must not mark
	// the controller offline.
	write(t, s, []scpgate.Event{aOff}, nil)
	write(t, s, []scpgate.Event{bOn, aOn}, nil)
	st, err := s.ControllerState(ctx(t), "P")
	if err != nil {
		t.Fatalf("state: %v", err)
	}
	if !st.Online || st.Session != "b" || st.Model != "M-b" || !st.LastSeen.Equal(aOff.Time) {
		t.Fatalf("after take-over: got %s, want online in session b, model M-b, last seen at %s", JSON(st), aOff.Time)
	}
	bOff := presence("b", "offline", string(scpgate.ReasonHeartbeatTimeout), 9)
	write(t, s, []scpgate.Event{bOff, bOn}, nil)
	st, _ = s.ControllerState(ctx(t), "P")
	if st.Online || st.Session != "b" || st.Reason != string(scpgate.ReasonHeartbeatTimeout) || st.Model != "M-b" {
		t.Fatalf("after timeout: got %s, want offline (heartbeat_timeout), model M-b", JSON(st))
	}
	SameStates(t, s, Expected([]scpgate.Event{aOn, bOn, aOff, bOff}))
}

func testStateAnyOrder(t *testing.T, s scpgate.Store) {
	events := History(4, 5, 120)
	total := 0
	for _, b := range Shuffled(4, events, 20, 40) {
		total += write(t, s, b, nil)
	}
	if total != len(events) {
		t.Fatalf("inserted %d, want %d", total, len(events))
	}
	SameStates(t, s, Expected(events))
	SameEvents(t, "all events", All(t, s, scpgate.EventQuery{Limit: 1000}), Sorted(events))
}

func testConcurrentWriters(t *testing.T, s scpgate.Store) {
	concurrentWriters(t, s, History(5, 6, 100), 60)
}

// testConcurrentLargeBatches: as ConcurrentWriters, with batches large
// enough for a store's bulk path (PostgreSQL's COPY).
func testConcurrentLargeBatches(t *testing.T, s scpgate.Store) {
	concurrentWriters(t, s, History(6, 8, 150), 400)
}

// concurrentWriters has 4 writers write all of events, each in its own
// random order and batches of up to maxBatch, and checks that each event
// was stored once and the state is the one of all events.
func concurrentWriters(t *testing.T, s scpgate.Store, events []scpgate.Event, maxBatch int) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, b := range Shuffled(uint64(10+w), events, 10, maxBatch) {
				n, err := s.WriteBatch(context.Background(), b, nil)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent write: %v", err)
	}
	if total != len(events) {
		t.Fatalf("4 writers of the same events inserted %d in all, want %d", total, len(events))
	}
	SameStates(t, s, Expected(events))
	SameEvents(t, "all events", All(t, s, scpgate.EventQuery{Limit: 1000}), Sorted(events))
}
