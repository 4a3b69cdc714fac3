package replay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/replay"
	"github.com/scpgate/scpgate/streams"
)

// setup stores events for two controllers: A gets n events alternating
// access and door, B gets n access events.
func setup(t *testing.T, n int) jetstream.JetStream {
	t.Helper()
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s))
	ctx := context.Background()
	if _, err := streams.Ensure(ctx, js, streams.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		for _, serial := range []string{"A", "B"} {
			kind := scpgate.KindAccess
			if serial == "A" && i%2 == 0 {
				kind = scpgate.KindDoor
			}
			ev := scpgate.Event{V: 1, ID: scpgate.EventID(serial, 7, uint32(i)), Controller: serial, Kind: kind, BootEpoch: 7, Seq: uint32(i), Code: "x"}
			data, _ := json.Marshal(ev)
			subj, _ := streams.EventSubject(serial, kind)
			m := nats.NewMsg(subj)
			m.Data = data
			m.Header.Set(jetstream.MsgIDHeader, ev.ID)
			if _, err := js.PublishMsg(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	return js
}

func collect(t *testing.T, js jetstream.JetStream, o replay.Options) []scpgate.Event {
	t.Helper()
	var got []scpgate.Event
	err := replay.Run(context.Background(), js, o, func(m replay.Msg) error {
		var ev scpgate.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			return err
		}
		got = append(got, ev)
		return nil
	}, nil)
	if err != nil {
		t.Fatalf("Run(%+v): %v", o, err)
	}
	return got
}

func TestReplaySelects(t *testing.T) {
	js := setup(t, 10)
	tests := []struct {
		name  string
		opts  replay.Options
		count int
		first uint32
	}{
		{"all of A", replay.Options{Serial: "A"}, 10, 1},
		{"doors of A", replay.Options{Serial: "A", Kind: scpgate.KindDoor}, 5, 2},
		{"B from stream seq 11", replay.Options{Serial: "B", FromSeq: 11}, 5, 6},
		{"A within the last hour", replay.Options{Serial: "A", Since: time.Hour}, 10, 1},
		{"unknown controller", replay.Options{Serial: "C"}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := replay.Count(context.Background(), js, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if n != uint64(tt.count) {
				t.Errorf("Count = %d, want %d", n, tt.count)
			}
			got := collect(t, js, tt.opts)
			if len(got) != tt.count {
				t.Fatalf("Run delivered %d events, want %d", len(got), tt.count)
			}
			for i, ev := range got {
				if ev.Controller != tt.opts.Serial {
					t.Errorf("event %d is of %s, want %s", i, ev.Controller, tt.opts.Serial)
				}
				if tt.opts.Kind != "" && ev.Kind != tt.opts.Kind {
					t.Errorf("event %d kind %s, want %s", i, ev.Kind, tt.opts.Kind)
				}
				if i > 0 && ev.Seq <= got[i-1].Seq {
					t.Errorf("event %d seq %d after %d: not in order", i, ev.Seq, got[i-1].Seq)
				}
			}
			if tt.count > 0 && got[0].Seq != tt.first {
				t.Errorf("first seq = %d, want %d", got[0].Seq, tt.first)
			}
		})
	}
}

func TestReplayProgressAndFollow(t *testing.T) {
	js := setup(t, 4)
	var lastDone, lastTotal uint64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := 0
	err := replay.Run(ctx, js, replay.Options{Serial: "B", Follow: true}, func(replay.Msg) error {
		seen++
		if seen == 4 {
			cancel() // caught up: a follower stops only when told to
		}
		return nil
	}, func(done, total uint64) { lastDone, lastTotal = done, total })
	if err != nil {
		t.Fatalf("follow ended with %v, want nil after cancel", err)
	}
	if seen != 4 || lastDone != 4 || lastTotal != 4 {
		t.Errorf("seen %d, progress %d/%d; want 4, 4/4", seen, lastDone, lastTotal)
	}
}

func TestReplayBadOptions(t *testing.T) {
	js := setup(t, 1)
	for _, o := range []replay.Options{
		{Serial: "A", Since: time.Hour, FromSeq: 3},
		{Serial: "A", Since: -time.Second},
		{Serial: "bad.serial"},
		{Serial: "A", Kind: "nope"},
	} {
		_, err := replay.Count(context.Background(), js, o)
		if err == nil {
			t.Errorf("Count(%+v) = nil error, want one", o)
		}
		if o.Since != 0 && !errors.Is(err, replay.ErrBadOptions) {
			t.Errorf("Count(%+v) = %v, want ErrBadOptions", o, err)
		}
	}
}

// TestKnownAndConsumersDeleted checks that Known tells a stored serial
// from an unknown one and that Run and Count leave no consumer behind
// once their Linger has passed.
func TestKnownAndConsumersDeleted(t *testing.T) {
	js := setup(t, 3)
	ctx := context.Background()
	for serial, want := range map[string]bool{"A": true, "B": true, "NOPE": false} {
		got, err := replay.Known(ctx, js, serial)
		if err != nil || got != want {
			t.Errorf("Known(%s): got %v, %v, want %v", serial, got, err, want)
		}
	}
	// A linger of an hour: only the replay's own delete can remove the
	// consumers within the check below.
	if got := collect(t, js, replay.Options{Serial: "A", Linger: time.Hour}); len(got) != 3 {
		t.Fatalf("replayed %d events, want 3", len(got))
	}
	if n, err := replay.Count(ctx, js, replay.Options{Serial: "B", Linger: time.Hour}); err != nil || n != 3 {
		t.Fatalf("Count: got %d, %v, want 3", n, err)
	}
	st, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 3*time.Second, 50*time.Millisecond, func() error {
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Consumers != 0 {
			return fmt.Errorf("%d consumers left on %s, want 0", info.State.Consumers, streams.EventsStream)
		}
		return nil
	})
}
