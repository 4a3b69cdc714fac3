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

	// Ensure never changes an existing stream: a changed MaxAge and
	// window are refused, naming each setting.
	cfg.EventsMaxAge = 48 * time.Hour
	cfg.DuplicateWindow = time.Hour
	_, err = streams.Ensure(ctx, js, cfg)
	var me *streams.MismatchError
	if !errors.Is(err, streams.ErrConfigMismatch) || !errors.As(err, &me) {
		t.Fatalf("Ensure with changed config: got %v, want a MismatchError", err)
	}
	want := map[string]bool{"SCP_EVENTS max_age": true, "SCP_EVENTS duplicate_window": true,
		"SCP_COMMANDS duplicate_window": true, "SCP_RESULTS duplicate_window": true}
	for _, m := range me.Mismatches {
		if !want[m.Stream+" "+m.Setting] {
			t.Errorf("unexpected mismatch %+v", m)
		}
		delete(want, m.Stream+" "+m.Setting)
	}
	if len(want) > 0 {
		t.Errorf("mismatches not reported: %v (got %+v)", want, me.Mismatches)
	}
	if info, _ := h.Events.Info(ctx); info.Config.MaxAge != cfg.EventsMaxAge && info.Config.MaxAge != 30*24*time.Hour {
		t.Errorf("events MaxAge changed by Ensure: %s", info.Config.MaxAge)
	}

	// Apply changes it; Ensure then agrees.
	if h, err = streams.Apply(ctx, js, cfg); err != nil {
		t.Fatalf("Apply with changed config: %v", err)
	}
	info, err = h.Events.Info(ctx)
	if err != nil {
		t.Fatalf("events info: %v", err)
	}
	if info.Config.MaxAge != 48*time.Hour || info.Config.Duplicates != time.Hour || !info.Config.AllowDirect ||
		info.Config.MaxBytes != cfg.EventsMaxBytes || info.Config.Discard != jetstream.DiscardOld {
		t.Errorf("got events MaxAge %s, Duplicates %s, AllowDirect %v, MaxBytes %d, Discard %s; want 48h, 1h, true, %d, DiscardOld",
			info.Config.MaxAge, info.Config.Duplicates, info.Config.AllowDirect, info.Config.MaxBytes, info.Config.Discard, cfg.EventsMaxBytes)
	}
	if _, err := streams.Ensure(ctx, js, cfg); err != nil {
		t.Fatalf("Ensure after Apply: %v", err)
	}
}

// TestEnsureConcurrentCreate runs Ensure from several clients at once on
// a fresh server: each creates or opens the same streams, none fails.
func TestEnsureConcurrentCreate(t *testing.T) {
	s := natstest.RunServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := make(chan error, 6)
	for range cap(errs) {
		js := natstest.JetStream(t, natstest.Connect(t, s))
		go func() {
			_, err := streams.Ensure(ctx, js, streams.DefaultConfig())
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Ensure: %v", err)
		}
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
