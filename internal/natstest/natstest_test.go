package natstest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate/internal/natstest"
)

func TestServerPublishAndRestart(t *testing.T) {
	opts := natstest.Options(t)
	s := natstest.RunServerWith(t, opts)
	nc := natstest.Connect(t, s, nats.ReconnectWait(20*time.Millisecond))
	js := natstest.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	ack, err := js.Publish(ctx, "t.a", []byte("hello"))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if ack.Sequence != 1 {
		t.Fatalf("got sequence %d, want 1", ack.Sequence)
	}
	port := opts.Port
	if port <= 0 {
		t.Fatalf("got port %d after start, want the resolved port", port)
	}

	// Restart on the same store and port: the message survives and the
	// client reconnects by itself.
	s.Shutdown()
	s.WaitForShutdown()
	s2 := natstest.RunServerWith(t, opts)
	if opts.Port != port {
		t.Fatalf("got port %d after restart, want %d", opts.Port, port)
	}
	if s2.ClientURL() != s.ClientURL() {
		t.Fatalf("got url %s after restart, want %s", s2.ClientURL(), s.ClientURL())
	}
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if !nc.IsConnected() {
			return errors.New("client not reconnected")
		}
		return nil
	})
	natstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, err := js.Stream(ctx, "T")
		if err != nil {
			return err
		}
		msg, err := st.GetLastMsgForSubject(ctx, "t.a")
		if err != nil {
			return err
		}
		if string(msg.Data) != "hello" {
			return errors.New("got " + string(msg.Data) + ", want hello")
		}
		return nil
	})
}
