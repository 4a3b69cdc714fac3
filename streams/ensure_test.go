package streams_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/streams"
)

func setup(t *testing.T) (jetstream.JetStream, context.Context) {
	t.Helper()
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return js, ctx
}

func TestEnsureIdempotentAndUpdates(t *testing.T) {
	js, ctx := setup(t)
	cfg := streams.DefaultConfig()
	h, err := streams.Ensure(ctx, js, cfg)
	if err != nil {
		t.Fatalf("first Ensure: %v", err)
	}
	if h.Events == nil || h.Commands == nil || h.Results == nil || h.Sessions == nil || h.Cursors == nil || h.State == nil {
		t.Fatalf("got handles %+v, want all set", h)
	}
	if _, err := streams.Ensure(ctx, js, cfg); err != nil {
		t.Fatalf("second Ensure with the same config: %v", err)
	}

	info, err := h.Commands.Info(ctx)
	if err != nil {
		t.Fatalf("commands info: %v", err)
	}
	c := info.Config
	if c.MaxMsgsPerSubject != cfg.CommandQueueCap || c.Discard != jetstream.DiscardNew || !c.DiscardNewPerSubject ||
		!c.AllowMsgTTL || !c.AllowDirect || c.Duplicates != 2*time.Hour || c.Storage != jetstream.FileStorage {
		t.Errorf("got commands config %+v, want cap %d, DiscardNew per subject, TTL, direct, 2h window, file", c, cfg.CommandQueueCap)
	}
	for _, b := range []jetstream.KeyValue{h.Sessions, h.Cursors, h.State} {
		st, err := b.Status(ctx)
		if err != nil {
			t.Fatalf("bucket %s status: %v", b.Bucket(), err)
		}
		if st.History() != 1 {
			t.Errorf("bucket %s: got history %d, want 1", b.Bucket(), st.History())
		}
	}

	// A changed MaxAge is applied to the existing stream.
	cfg.EventsMaxAge = 48 * time.Hour
	cfg.DuplicateWindow = time.Hour
	h, err = streams.Ensure(ctx, js, cfg)
	if err != nil {
		t.Fatalf("Ensure with changed config: %v", err)
	}
	info, err = h.Events.Info(ctx)
	if err != nil {
		t.Fatalf("events info: %v", err)
	}
	if info.Config.MaxAge != 48*time.Hour || info.Config.Duplicates != time.Hour || !info.Config.AllowDirect {
		t.Errorf("got events MaxAge %s, Duplicates %s, AllowDirect %v; want 48h, 1h, true",
			info.Config.MaxAge, info.Config.Duplicates, info.Config.AllowDirect)
	}
}

func TestEnsureRejectsInvalidConfig(t *testing.T) {
	js, ctx := setup(t)
	cfg := streams.DefaultConfig()
	cfg.CommandQueueCap = 0
	if _, err := streams.Ensure(ctx, js, cfg); !errors.Is(err, streams.ErrInvalidConfig) {
		t.Fatalf("got %v, want ErrInvalidConfig", err)
	}
}

func TestDuplicateWindowCappedAtMaxAge(t *testing.T) {
	cfg := streams.DefaultConfig()
	cfg.CommandsMaxAge = time.Minute
	if got := streams.CommandsStreamConfig(cfg).Duplicates; got != time.Minute {
		t.Fatalf("got duplicate window %s, want 1m (the max age)", got)
	}
}

func TestCommandQueueCapPerSubject(t *testing.T) {
	js, ctx := setup(t)
	cfg := streams.DefaultConfig()
	cfg.CommandQueueCap = 3
	if _, err := streams.Ensure(ctx, js, cfg); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	full, _ := streams.CommandSubject("FULL")
	other, _ := streams.CommandSubject("OTHER")
	for i := range cfg.CommandQueueCap {
		if _, err := js.Publish(ctx, full, []byte(fmt.Sprint(i)), jetstream.WithMsgID(fmt.Sprintf("c%d", i))); err != nil {
			t.Fatalf("publish command %d: %v", i, err)
		}
	}
	_, err := js.Publish(ctx, full, []byte("one too many"), jetstream.WithMsgID("over"))
	if !streams.IsQueueFull(err) {
		t.Fatalf("publish command %d on a full queue: got %v, want a queue-full error", cfg.CommandQueueCap+1, err)
	}
	if _, err := js.Publish(ctx, other, []byte("fits"), jetstream.WithMsgID("other")); err != nil {
		t.Fatalf("publish to another controller: got %v, want accepted", err)
	}
	if streams.IsQueueFull(errors.New("maximum messages per subject exceeded")) {
		t.Errorf("IsQueueFull of a plain error: got true, want false")
	}
	// The queued commands are untouched: the oldest is still there.
	st, err := js.Stream(ctx, streams.CommandsStream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	msg, err := st.GetMsg(ctx, 1)
	if err != nil || string(msg.Data) != "0" {
		t.Fatalf("first command: got %v, %v; want \"0\"", msg, err)
	}
}

func TestDuplicateEventAbsorbed(t *testing.T) {
	js, ctx := setup(t)
	h, err := streams.Ensure(ctx, js, streams.DefaultConfig())
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	subj, _ := streams.EventSubject("S1", scpgate.KindAccess)
	id := scpgate.EventID("S1", 7, 42)
	first, err := js.Publish(ctx, subj, []byte(`{"seq":42}`), jetstream.WithMsgID(id))
	if err != nil {
		t.Fatalf("first publish: %v", err)
	}
	again, err := js.Publish(ctx, subj, []byte(`{"seq":42}`), jetstream.WithMsgID(id))
	if err != nil {
		t.Fatalf("second publish: %v", err)
	}
	if !again.Duplicate || again.Sequence != first.Sequence {
		t.Fatalf("got ack %+v for the re-send, want a duplicate of sequence %d", again, first.Sequence)
	}
	info, err := h.Events.Info(ctx)
	if err != nil {
		t.Fatalf("events info: %v", err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("got %d stored events, want 1", info.State.Msgs)
	}
}
