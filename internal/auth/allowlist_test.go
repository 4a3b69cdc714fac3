package auth_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/auth"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
)

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAllowListReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "allow")
	writeFile(t, path, "# fleet\nA1\n  B2  # lobby\n\nbad serial!\n")
	l, err := auth.LoadAllowList(path, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	for serial, want := range map[string]bool{"A1": true, "B2": true, "C3": false, "bad serial!": false, "": false} {
		if got := l.Allowed(serial); got != want {
			t.Errorf("Allowed(%q) = %v, want %v", serial, got, want)
		}
	}
	if l.Len() != 2 {
		t.Errorf("Len %d, want 2", l.Len())
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { l.Watch(ctx, 10*time.Millisecond) })
	defer func() { cancel(); wg.Wait() }()
	writeFile(t, path, "A1\nC3\nD4\n")
	natstest.CheckFor(t, 3*time.Second, 10*time.Millisecond, func() error {
		if !l.Allowed("C3") || l.Allowed("B2") {
			return fmt.Errorf("change not picked up: C3 %v, B2 %v", l.Allowed("C3"), l.Allowed("B2"))
		}
		return nil
	})
	// A file that cannot be read keeps the previous list.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := l.Reload(); err == nil {
		t.Error("Reload of a missing file succeeded")
	}
	if !l.Allowed("D4") {
		t.Error("a failed reload dropped the list")
	}
	if ok, failed := l.Loads(); ok < 2 || failed != 1 {
		t.Errorf("Loads: %d ok, %d failed", ok, failed)
	}
	if _, err := auth.LoadAllowList(path, testLog(t)); err == nil {
		t.Error("LoadAllowList of a missing file succeeded")
	}
}

// TestAllowListAdmission: a driver with the allow-list as Admit refuses an
// unlisted controller with not_allowed (counted), and serves it once the
// file lists it.
func TestAllowListAdmission(t *testing.T) {
	path := filepath.Join(t.TempDir(), "allow")
	writeFile(t, path, "LISTED\n")
	l, err := auth.LoadAllowList(path, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { l.Watch(ctx, 10*time.Millisecond) })

	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s, nats.MaxReconnects(-1))
	d, err := driver.New(driver.Options{ID: "allow", Listen: "127.0.0.1:0", NATS: nc, Admit: l.Allowed, Log: testLog(t), ReconnectAfterMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	run := func(serial string) *sim.Controller {
		c := sim.NewController(sim.Config{Target: d.Addr().String(), Serial: serial, Backoff: sim.BackoffConfig{Min: 20 * time.Millisecond, Max: 100 * time.Millisecond}})
		wg.Go(func() { _ = c.Run(ctx) })
		return c
	}
	listed, unlisted := run("LISTED"), run("UNLISTED")
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		switch {
		case listed.Stats().Sessions == 0:
			return fmt.Errorf("listed controller not served")
		case unlisted.Stats().Rejected == 0 || d.Stats().Rejected(scpbridge.RejectNotAllowed) == 0:
			return fmt.Errorf("unlisted controller not refused (rejects %v)", d.Stats().Rejects)
		}
		return nil
	})
	if unlisted.Stats().Sessions != 0 {
		t.Fatal("unlisted controller got a session")
	}
	writeFile(t, path, "LISTED\nUNLISTED\n# added\n")
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if unlisted.Stats().Sessions == 0 {
			return fmt.Errorf("controller added to the list still not served")
		}
		return nil
	})
}
