// Package vendornode_test runs the Node.js vendor example against the
// whole system, as the NATS user vendor under deploy/nats/auth.conf.
package vendornode_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/internal/systest"
	"github.com/scpgate/scpgate/streams"
)

// summary is the last line the example prints.
type summary struct {
	Controllers []string `json:"controllers"`
	Events      struct {
		Read       int            `json:"read"`
		Handled    int            `json:"handled"`
		Unique     int            `json:"unique"`
		Duplicates int            `json:"duplicates"`
		Stream     uint64         `json:"stream"`
		ByKind     map[string]int `json:"by_kind"`
	} `json:"events"`
	Commands []struct {
		ID, Controller, Type, Status, Key string
	} `json:"commands"`
	Results map[string]struct {
		Status, Reason, Finished string
	} `json:"results"`
	Refused string                     `json:"refused"`
	State   map[string]json.RawMessage `json:"state"`
}

// nodeDir prepares the example's packages: the node_modules there, or
// npm ci.
func nodeDir(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("SCPGATE_TEST_REQUIRE_NODE") == "1" {
			t.Fatal("node is not installed and SCPGATE_TEST_REQUIRE_NODE=1")
		}
		t.Skip("node is not installed (set SCPGATE_TEST_REQUIRE_NODE=1 to require it)")
	}
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@nats-io", "jetstream")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
	return dir
}

// runNode runs the example with env added and returns its summary (nil
// when it exits with a code) and the exit code.
func runNode(t *testing.T, dir string, env ...string) (*summary, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "vendor.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("node vendor.mjs:\n%s", stderr.String())
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return nil, exit.ExitCode()
	}
	if err != nil {
		t.Fatalf("node vendor.mjs: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var s summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		t.Fatalf("summary: %v\n%s", err, stdout.String())
	}
	return &s, 0
}

// TestVendorNodeExample runs examples/vendor-node as the vendor user:
// once crashing after 30 events without acknowledging the rest, then to
// the end. Every event in SCP_EVENTS must be handled exactly once across
// the two runs, every command it sent must have its result, and the state
// it read must be what scp_state holds.
func TestVendorNodeExample(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole system and node")
	}
	dir := nodeDir(t)
	sys := systest.Start(t, systest.Options{Controllers: 3})
	sys.Generate(t, 60)
	waitIngest(t, sys)

	seenFile := filepath.Join(t.TempDir(), "seen.json")
	env := []string{
		"NATS_URL=" + sys.Server.ClientURL(), "NATS_USER=vendor", "NATS_PASSWORD=" + systest.Password("vendor"),
		"VENDOR_DURABLE=vendor-example", "VENDOR_ACK_WAIT_MS=1000", "VENDOR_SEEN_FILE=" + seenFile,
		"VENDOR_TIMEOUT_MS=90000",
	}
	if _, code := runNode(t, dir, append(env, "VENDOR_CRASH_AFTER=30", "VENDOR_RUN_ID=crash")...); code != 3 {
		t.Fatalf("crashing run: exit code %d, want 3", code)
	}
	var handledBefore []string
	if b, err := os.ReadFile(seenFile); err != nil || json.Unmarshal(b, &handledBefore) != nil || len(handledBefore) != 30 {
		t.Fatalf("crashing run: %d ids handled (%v), want 30", len(handledBefore), err)
	}

	s, code := runNode(t, dir, append(env, "VENDOR_RUN_ID=full")...)
	if code != 0 || s == nil {
		t.Fatalf("run: exit code %d", code)
	}

	// Events: every one in the stream, once.
	ev := s.Events
	if uint64(ev.Unique) != ev.Stream || ev.Stream == 0 {
		t.Errorf("events: %d handled in all, the stream held %d; want all", ev.Unique, ev.Stream)
	}
	if ev.Handled+len(handledBefore) != ev.Unique || ev.Read != ev.Handled+ev.Duplicates {
		t.Errorf("events: handled %d now and %d before the crash, %d unique, %d read, %d duplicates skipped; an event was handled twice",
			ev.Handled, len(handledBefore), ev.Unique, ev.Read, ev.Duplicates)
	}
	if n := sys.StreamMsgs(t, streams.EventsStream); n < ev.Stream {
		t.Errorf("the stream holds %d events, fewer than the %d the example saw", n, ev.Stream)
	}
	if ev.Duplicates == 0 {
		t.Errorf("events: no duplicate skipped; the event handled but not acknowledged before the crash must come again")
	}
	for _, k := range []string{"access", "door"} {
		if ev.ByKind[k] == 0 {
			t.Errorf("events: none of kind %s (%v)", k, ev.ByKind)
		}
	}

	// Commands: each has its one final result.
	if len(s.Controllers) != 3 || len(s.Commands) != 5*3 {
		t.Fatalf("got %d controllers, %d commands; want 3 and 15", len(s.Controllers), len(s.Commands))
	}
	for _, c := range s.Commands {
		r, ok := s.Results[c.ID]
		switch {
		case !ok:
			t.Errorf("command %s (%s): no result", c.ID, c.Type)
		case c.Type == "door_mode" && (r.Status != "nak" || r.Reason != "out_of_range"):
			t.Errorf("command %s (door 99): got %s %s, want nak out_of_range", c.ID, r.Status, r.Reason)
		case c.Type != "door_mode" && r.Status != "ok":
			t.Errorf("command %s (%s): got %s %s, want ok", c.ID, c.Type, r.Status, r.Reason)
		}
	}
	if s.Refused != "bad_params" {
		t.Errorf("bad request: refused with %q, want bad_params", s.Refused)
	}

	// State: what it read is what scp_state holds (a point may have moved
	// on since, by a newer event).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := sys.Ops.KeyValue(ctx, streams.StateBucket)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range s.Controllers {
		if _, ok := s.State[c]; !ok {
			t.Errorf("state: the example read no value for %s", c)
		}
	}
	if len(s.State) <= len(s.Controllers) {
		t.Errorf("state: %d values read, want the points too", len(s.State))
	}
	for key, got := range s.State {
		compareState(t, ctx, kv, key, got)
	}
}

// compareState checks the value the example read for key against the
// bucket's value at the same revision.
func compareState(t *testing.T, ctx context.Context, kv jetstream.KeyValue, key string, got json.RawMessage) {
	t.Helper()
	var read struct {
		Revision uint64          `json:"revision"`
		Value    json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(got, &read); err != nil || read.Revision == 0 {
		t.Errorf("state %s: %s (%v)", key, got, err)
		return
	}
	e, err := kv.GetRevision(ctx, key, read.Revision)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		// scp_state keeps one value per key: a newer event replaced the
		// one read. It must then be newer, not missing.
		cur, cerr := kv.Get(ctx, key)
		if cerr != nil || cur.Revision() <= read.Revision {
			t.Errorf("state %s revision %d: not in the bucket, and its current value is %v (%v)", key, read.Revision, cur, cerr)
		}
		return
	}
	if err != nil {
		t.Errorf("state %s revision %d: %v", key, read.Revision, err)
		return
	}
	var a, b any
	_ = json.Unmarshal(read.Value, &a)
	_ = json.Unmarshal(e.Value(), &b)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("state %s revision %d: the example read %s, the bucket holds %s", key, read.Revision, read.Value, e.Value())
	}
}

// waitIngest waits until ingest stored every event of the stream, so the
// state the example reads is current.
func waitIngest(t *testing.T, sys *systest.System) {
	t.Helper()
	natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if got, want := sys.Ingest.Stats().Events, sys.StreamMsgs(t, streams.EventsStream); got < want {
			return fmt.Errorf("ingest stored %d of %d events", got, want)
		}
		return nil
	})
}
