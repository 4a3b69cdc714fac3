package ingest_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sqlite"
	"github.com/scpgate/scpgate/storetest"
	"github.com/scpgate/scpgate/streams"
)

// TestConsumerRepaired: ingest's durable consumer is deleted, then
// retargeted to another filter. Each time ingest reports the problem
// (Health, so /readyz 503), creates the consumer again with its own
// config, and goes on storing every event.
func TestConsumerRepaired(t *testing.T) {
	e := newEnv(t)
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	events := storetest.History(7, 3, 40)
	e.publish(t, true, events[:60], nil)
	// Checks every 300 ms: a problem stays reported that long.
	svc := run(t, ingest.Options{JS: e.js, Store: store, LagInterval: 300 * time.Millisecond})
	e.waitDrained(t, store, 60)
	if h := svc.Health(); !h.Ready() || h.Repairs != 0 {
		t.Fatalf("health %+v, want ready and no repair", h)
	}

	// seen records the problems Health reported.
	var seen atomic.Value
	seen.Store("")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if h := svc.Health(); !h.Ready() {
				seen.Store(seen.Load().(string) + h.Reason() + "\n")
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	defer func() { close(stop); <-done }()
	waitProblem := func(want string) {
		t.Helper()
		natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			if s := seen.Load().(string); !strings.Contains(s, want) {
				return fmt.Errorf("health reported %q, want a problem containing %q", s, want)
			}
			return nil
		})
	}

	ctx := context.Background()
	if err := e.js.DeleteConsumer(ctx, streams.EventsStream, ingest.DefaultDurable); err != nil {
		t.Fatal(err)
	}
	waitProblem("consumer scpgate-ingest on SCP_EVENTS is missing")
	e.publish(t, true, events[60:90], nil)
	e.waitDrained(t, store, 90)

	// Retargeted by another user to one controller's events.
	if _, err := e.js.UpdateConsumer(ctx, streams.ResultsStream, jetstream.ConsumerConfig{
		Durable: ingest.DefaultDurable, AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: -1,
		FilterSubject: "scp.res.SC00001", AckWait: 30 * time.Second, MaxAckPending: 10000, MaxWaiting: 512,
	}); err != nil {
		t.Fatal(err)
	}
	waitProblem("consumer scpgate-ingest on SCP_RESULTS filters [scp.res.SC00001], want " + streams.ResultsAll)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		c, err := e.js.Consumer(ctx, streams.ResultsStream, ingest.DefaultDurable)
		if err != nil {
			return err
		}
		if f := c.CachedInfo().Config.FilterSubject; f != streams.ResultsAll {
			return fmt.Errorf("filter %q, want %s", f, streams.ResultsAll)
		}
		if h := svc.Health(); !h.Ready() || h.Repairs != 2 {
			return fmt.Errorf("health %+v, want ready after 2 repairs", h)
		}
		return nil
	})
	e.publish(t, true, events[90:], nil)
	e.waitDrained(t, store, len(events))
}
