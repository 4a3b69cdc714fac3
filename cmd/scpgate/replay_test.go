package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/streams"
)

// TestReplayCLI replays a stored controller (stdout: JSON lines only, no
// consumer left) and an unknown one (an error saying so).
func TestReplayCLI(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s))
	ctx := context.Background()
	if _, err := streams.Ensure(ctx, js, streams.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		ev := scpgate.Event{V: 1, ID: scpgate.EventID("R1", 1, uint32(i)), Controller: "R1", Kind: scpgate.KindAccess, BootEpoch: 1, Seq: uint32(i), Code: "x"}
		data, _ := json.Marshal(ev)
		subj, _ := streams.EventSubject("R1", scpgate.KindAccess)
		m := nats.NewMsg(subj)
		m.Data = data
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"NATS_URL=" + s.ClientURL()}

	stdout, stderr, code := runEnv(t, 30*time.Second, env, "replay", "--controller", "R1")
	if code != 0 {
		t.Fatalf("replay R1: exit code %d, stderr\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 5 {
		t.Fatalf("replay R1: got %d lines, want 5:\n%s", len(lines), stdout)
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Errorf("replay R1: stdout line is not JSON: %q", l)
		}
	}

	_, stderr, code = runEnv(t, 30*time.Second, env, "replay", "--controller", "NOPE")
	if code != 1 || !strings.Contains(stderr, "controller NOPE: no event of this controller is stored") {
		t.Errorf("replay NOPE: got exit code %d, stderr\n%s\nwant 1 and the unknown controller", code, stderr)
	}

	st, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	// The server removes the replays' consumers once they stop reading
	// (replay.DefaultLinger).
	eventually(t, "replay consumers removed", 30*time.Second, func() error {
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Consumers != 0 {
			return fmt.Errorf("%d consumers left after replay", info.State.Consumers)
		}
		return nil
	})
}
