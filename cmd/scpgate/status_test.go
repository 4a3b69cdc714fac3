//go:build !driveronly

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/sqlite"
	"github.com/scpgate/scpgate/streams"
)

func quietLog(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

// TestStatus runs two drivers with controllers and ingest on an embedded
// server and checks what `scpgate status` reports, as tables and JSON.
func TestStatus(t *testing.T) {
	log := quietLog(t)
	s := natstest.RunServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	runCtx, stop := context.WithCancel(ctx)
	defer func() { stop(); wg.Wait() }()

	ctrls := map[string][]string{"st-a": {"STA1", "STA2"}, "st-b": {"STB1"}}
	var all []*sim.Controller
	for id, serials := range ctrls {
		d, err := driver.New(driver.Options{ID: id, Listen: "127.0.0.1:0", NATS: natstest.Connect(t, s, nats.MaxReconnects(-1)), Log: log})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		for _, serial := range serials {
			c := sim.NewController(sim.Config{Target: d.Addr().String(), Serial: serial})
			wg.Go(func() { _ = c.Run(runCtx) })
			c.Generate(5)
			all = append(all, c)
		}
	}
	nc := natstest.Connect(t, s)
	js := natstest.JetStream(t, nc)
	if _, err := streams.Ensure(ctx, js, streams.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "st.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ing, err := ingest.New(ingest.Options{JS: js, Store: store, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { _ = ing.Run(runCtx) })
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		for _, c := range all {
			if st := c.Stats(); st.Acked != 5 {
				return fmt.Errorf("%s: acked %d of 5", c.Serial(), st.Acked)
			}
		}
		if n := ing.Stats().Events; n < 18 { // 15 transactions, 3 presence events
			return fmt.Errorf("ingest stored %d events", n)
		}
		return nil
	})

	st, err := collectStatus(ctx, nc, statusOptions{wait: 300 * time.Millisecond, controllers: true, durable: ingest.DefaultDurable})
	if err != nil {
		t.Fatalf("collect status: %v", err)
	}
	if len(st.Errors) != 0 {
		t.Errorf("errors: %v", st.Errors)
	}
	if len(st.Drivers) != 2 || st.Sessions != 3 {
		t.Fatalf("got %d drivers, %d sessions; want 2, 3: %+v", len(st.Drivers), st.Sessions, st.Drivers)
	}
	for _, d := range st.Drivers {
		want := ctrls[d.ID]
		if d.Sessions != len(want) || strings.Join(d.Controllers, ",") != strings.Join(want, ",") || d.ControllerPort == "" || d.EventsReceived != uint64(5*len(want)) {
			t.Errorf("driver %s: %+v; want controllers %v", d.ID, d, want)
		}
	}
	if len(st.Streams) != 3 || st.Streams[0].Name != streams.EventsStream || st.Streams[0].Messages < 18 || st.Streams[0].Bytes == 0 {
		t.Errorf("streams: %+v", st.Streams)
	}
	if len(st.Ingest) != 2 || st.Ingest[0].Stream != streams.EventsStream || st.Ingest[0].Consumer != ingest.DefaultDurable {
		t.Errorf("ingest lag: %+v", st.Ingest)
	}

	var out bytes.Buffer
	if err := printStatus(&out, st, true); err != nil {
		t.Fatalf("print: %v", err)
	}
	for _, want := range []string{"DRIVER", "st-a", "st-b", "2 driver(s), 3 session(s)", "SCP_EVENTS", "SCP_COMMANDS", "SCP_RESULTS",
		"scpgate-ingest", "CONTROLLER  DRIVER\nSTA1        st-a\nSTA2        st-a\nSTB1        st-b\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back Status
	if err := json.Unmarshal(b, &back); err != nil || back.Sessions != 3 || len(back.Drivers) != 2 || back.Drivers[0].Controllers == nil {
		t.Errorf("JSON round trip: %v, %s", err, b)
	}

	// One controller: its driver, since when, from where.
	cs, err := controllerStatus(ctx, js, "STB1")
	if err != nil {
		t.Fatalf("controller status: %v", err)
	}
	if !cs.Online || cs.Driver != "st-b" || cs.Remote == "" || cs.Since.IsZero() || cs.LastPresence == nil || cs.LastPresence.Code != "online" {
		t.Errorf("controller status of STB1: %+v, want online on st-b with remote, since and an online presence", cs)
	}
	out.Reset()
	if err := printControllerStatus(&out, cs, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"controller     STB1", "state          online", "driver         st-b", "remote         " + cs.Remote, "since "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("controller status lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := controllerStatus(ctx, js, "NOPE"); err == nil || !strings.Contains(err.Error(), "controller NOPE is unknown") {
		t.Errorf("status of an unknown controller: got %v, want it called unknown", err)
	}

	// Without drivers and without ingest: empty lists and the missing
	// consumer reported, not a failure.
	s2 := natstest.RunServer(t)
	st2, err := collectStatus(ctx, natstest.Connect(t, s2), statusOptions{wait: 100 * time.Millisecond, durable: ingest.DefaultDurable})
	if err != nil {
		t.Fatalf("status of an empty server: %v", err)
	}
	if len(st2.Drivers) != 0 || len(st2.Errors) == 0 {
		t.Errorf("empty server: %+v", st2)
	}
	if err := printStatus(&bytes.Buffer{}, st2, false); err == nil {
		t.Error("printStatus with errors returned nil")
	}
}

// TestControllerStatusOffline checks `status --controller` of a
// controller that was online and hung up: offline, with its last presence
// event and why its session ended.
func TestControllerStatusOffline(t *testing.T) {
	log := quietLog(t)
	s := natstest.RunServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := driver.New(driver.Options{ID: "st-off", Listen: "127.0.0.1:0", NATS: natstest.Connect(t, s, nats.MaxReconnects(-1)), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	js := natstest.JetStream(t, natstest.Connect(t, s))
	c := sim.NewController(sim.Config{Target: d.Addr().String(), Serial: "OFF1"})
	cctx, stopC := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(cctx) }()
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		cs, err := controllerStatus(ctx, js, "OFF1")
		if err != nil || !cs.Online || cs.Driver != "st-off" {
			return fmt.Errorf("status %+v, %v", cs, err)
		}
		return nil
	})
	stopC()
	<-done
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		cs, err := controllerStatus(ctx, js, "OFF1")
		if err != nil || cs.Online || cs.LastPresence == nil || cs.LastPresence.Code != "offline" || cs.LastPresence.Reason == "" {
			return fmt.Errorf("status %+v (last %+v), %v", cs, cs.LastPresence, err)
		}
		return nil
	})
	cs, _ := controllerStatus(ctx, js, "OFF1")
	var out bytes.Buffer
	if err := printControllerStatus(&out, cs, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"state          offline", "last presence  offline at ", "on st-off (" + cs.LastPresence.Reason + ")"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("controller status lacks %q:\n%s", want, out.String())
		}
	}
}
