package ingest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/storetest"
)

func TestRebuildMatchesLive(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t)
		live := b.open(t, b.db(t))
		events := storetest.History(5, 4, 300)
		rs := results(30)
		e.publish(t, true, events, rs)
		e.publish(t, false, events[:50], nil) // repeats in the stream
		if _, err := e.js.PublishMsg(context.Background(), &nats.Msg{Subject: "scp.evt.SC00001.door", Data: []byte("{")}); err != nil {
			t.Fatalf("publish: %v", err)
		}
		run(t, ingest.Options{JS: e.js, Store: live})
		e.waitDrained(t, live, len(events))

		rebuilt := b.open(t, b.db(t))
		var mu sync.Mutex
		var calls []([2]uint64)
		err := ingest.Rebuild(context.Background(), e.js, rebuilt, 0, func(done, total uint64) {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, [2]uint64{done, total})
		})
		if err != nil {
			t.Fatalf("rebuild: %v", err)
		}
		wantMsgs := uint64(len(events) + 50 + 1 + len(rs))
		if last := calls[len(calls)-1]; last != [2]uint64{wantMsgs, wantMsgs} {
			t.Fatalf("last progress %v, want [%d %d]", last, wantMsgs, wantMsgs)
		}
		for i := 1; i < len(calls); i++ {
			if calls[i][0] < calls[i-1][0] || calls[i][0] > calls[i][1] {
				t.Fatalf("progress %v after %v", calls[i], calls[i-1])
			}
		}
		sameRows(t, live, rebuilt, events, rs)
	})
}

// sameRows fails t unless a and b hold the same events, states and
// results.
func sameRows(t *testing.T, a, b scpgate.Store, events []scpgate.Event, rs []scpgate.Result) {
	t.Helper()
	for _, order := range []scpgate.Order{scpgate.OrderAsc, scpgate.OrderDesc} {
		q := scpgate.EventQuery{Limit: 1000, Order: order}
		storetest.SameEvents(t, "rebuilt events", storetest.All(t, b, q), storetest.All(t, a, q))
	}
	for serial := range storetest.Expected(events) {
		sa, err := a.ControllerState(context.Background(), serial)
		if err != nil {
			t.Fatalf("live state of %s: %v", serial, err)
		}
		sb, err := b.ControllerState(context.Background(), serial)
		if err != nil {
			t.Fatalf("rebuilt state of %s: %v", serial, err)
		}
		if ja, jb := storetest.JSON(sa), storetest.JSON(sb); ja != jb {
			t.Fatalf("state of %s:\n live    %s\n rebuilt %s", serial, ja, jb)
		}
	}
	for _, r := range rs {
		ra, err := a.ResultByID(context.Background(), r.ID)
		if err != nil {
			t.Fatalf("live result %s: %v", r.ID, err)
		}
		rb, err := b.ResultByID(context.Background(), r.ID)
		if err != nil {
			t.Fatalf("rebuilt result %s: %v", r.ID, err)
		}
		if ja, jb := storetest.JSON(ra), storetest.JSON(rb); ja != jb {
			t.Fatalf("result %s:\n live    %s\n rebuilt %s", r.ID, ja, jb)
		}
	}
}

func TestRebuildSince(t *testing.T) {
	e := newEnv(t)
	old := storetest.History(6, 1, 30)
	e.publish(t, true, old, nil)
	// Stream timestamps are publish times: leave a margin on each side of
	// the instant the rebuild starts from.
	time.Sleep(50 * time.Millisecond)
	from := time.Now()
	time.Sleep(50 * time.Millisecond)
	recent := storetest.History(7, 1, 20)
	for i := range recent {
		recent[i].Controller = "RECENT"
		if recent[i].Kind == scpgate.KindPresence {
			recent[i].ID = fmt.Sprintf("RECENT.presence.%d", i)
		} else {
			recent[i].ID = scpgate.EventID("RECENT", recent[i].BootEpoch, recent[i].Seq)
		}
	}
	e.publish(t, true, recent, nil)
	store := backends[0].open(t, backends[0].db(t))
	if err := ingest.Rebuild(context.Background(), e.js, store, time.Since(from), nil); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	storetest.SameEvents(t, "events since the mark", storetest.All(t, store, scpgate.EventQuery{Limit: 1000}), storetest.Sorted(recent))

	empty := newEnv(t)
	if err := ingest.Rebuild(context.Background(), empty.js, store, 0, nil); err != nil {
		t.Fatalf("rebuild from empty streams: %v", err)
	}
}

// gatedStore blocks WriteBatch until open is closed.
type gatedStore struct {
	scpgate.Store
	open chan struct{}
}

func (s *gatedStore) WriteBatch(ctx context.Context, events []scpgate.Event, results []scpgate.Result) (int, error) {
	select {
	case <-s.open:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return s.Store.WriteBatch(ctx, events, results)
}

func TestLag(t *testing.T) {
	e := newEnv(t)
	store := &gatedStore{Store: backends[0].open(t, backends[0].db(t)), open: make(chan struct{})}
	events := storetest.History(8, 2, 100)
	e.publish(t, true, events, nil)
	svc := run(t, ingest.Options{JS: e.js, Store: store, Batch: 50})
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		l := svc.Lag()
		if l.Events.Pending != uint64(len(events)) || l.Pending != l.Events.Pending || l.SecondsBehind < 0.2 {
			return fmt.Errorf("lag %+v, want %d pending at least 0.2 s behind", l, len(events))
		}
		return nil
	})
	close(store.open)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if l := svc.Lag(); l.Pending != 0 || l.SecondsBehind != 0 || l.Events.Error != "" {
			return fmt.Errorf("lag %+v, want none", l)
		}
		return nil
	})
}
