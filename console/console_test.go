package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commands"
	"github.com/scpgate/scpgate/console"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/streams"
)

func testLog(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

// get answers GET path on h with its status and body.
func get(t *testing.T, base, path string) (int, string, http.Header) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestFleet runs a real driver with one simulated controller, a
// controller ingest knew but that is gone, and an ingest consumer
// behind, and reads the fleet view: the driver with its sessions, who
// holds the online controller, the offline one with why, the streams, the
// lag; searches by serial and by status.
func TestFleet(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	js := natstest.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := streams.Ensure(ctx, js, streams.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	d, err := driver.New(driver.Options{ID: "d1", Listen: "127.0.0.1:0", NATS: nc, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	ctrl := sim.NewController(sim.Config{Target: d.Addr().String(), Serial: "ONLINE1", Rate: 20, Seed: 1,
		Backoff: sim.BackoffConfig{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}})
	wg.Go(func() { _ = ctrl.Run(runCtx) })

	gone := `{"serial":"GONE7","online":false,"reason":"timeout","last_seen":"2026-01-02T03:04:05Z","remote":"10.0.0.7:4000"}`
	if _, err := h.State.Put(ctx, ingest.ControllerKey("GONE7"), []byte(gone)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.State.Put(ctx, ingest.PointKey("GONE7", "door", 1), []byte(`{"door":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, streams.EventsStream, jetstream.ConsumerConfig{
		Durable: ingest.DefaultDurable, FilterSubject: streams.EventsAll, AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatal(err)
	}

	mux := http.NewServeMux()
	console.New(console.Options{NC: nc, CacheFor: time.Nanosecond, Log: testLog(t)}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var f console.Fleet
	fleet := func(query string) error {
		code, body, _ := get(t, srv.URL, "/console/api/fleet"+query)
		if code != http.StatusOK {
			return fmt.Errorf("fleet%s: %d %s", query, code, body)
		}
		f = console.Fleet{}
		return json.Unmarshal([]byte(body), &f)
	}
	natstest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		if err := fleet(""); err != nil {
			return err
		}
		if len(f.Drivers) != 1 || f.Drivers[0].ID != "d1" || f.Drivers[0].Sessions != 1 || f.Drivers[0].ControllerAddr != d.Addr().String() {
			return fmt.Errorf("drivers %+v, want d1 at %s with 1 session", f.Drivers, d.Addr())
		}
		if f.Online != 1 || f.Offline != 1 || f.Matched != 2 || len(f.Controllers) != 2 {
			return fmt.Errorf("online %d, offline %d, matched %d, controllers %+v; want 1, 1, 2", f.Online, f.Offline, f.Matched, f.Controllers)
		}
		if len(f.Ingest) == 0 || f.Ingest[0].Stream != streams.EventsStream || f.Ingest[0].Pending == 0 {
			return fmt.Errorf("ingest lag %+v, want events pending", f.Ingest)
		}
		return nil
	})
	g, o := f.Controllers[0], f.Controllers[1]
	if g.Serial != "GONE7" || g.Online || g.Reason != "timeout" || g.Remote != "10.0.0.7:4000" || g.LastSeen.IsZero() {
		t.Errorf("offline controller %+v, want GONE7 offline after timeout", g)
	}
	if o.Serial != "ONLINE1" || !o.Online || o.Driver != "d1" || o.Remote == "" || o.Since.IsZero() {
		t.Errorf("online controller %+v, want ONLINE1 held by d1", o)
	}
	if len(f.Streams) != 3 || f.Streams[0].Name != streams.EventsStream || f.Streams[0].Messages == 0 {
		t.Errorf("streams %+v, want the three with events stored", f.Streams)
	}
	if len(f.Errors) != 1 || !strings.Contains(f.Errors[0], streams.ResultsStream) {
		t.Errorf("errors %q, want only the missing consumer on %s", f.Errors, streams.ResultsStream)
	}

	for query, want := range map[string][]string{
		"?q=gone":                   {"GONE7"},
		"?q=LINE1&status=online":    {"ONLINE1"},
		"?status=offline":           {"GONE7"},
		"?q=online1&status=offline": {},
		"?limit=1":                  {"GONE7"},
	} {
		if err := fleet(query); err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, c := range f.Controllers {
			got = append(got, c.Serial)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("fleet%s: got %v, want %v", query, got, want)
		}
	}
	for _, query := range []string{"?limit=0", "?limit=x", "?status=idle"} {
		if code, body, _ := get(t, srv.URL, "/console/api/fleet"+query); code != http.StatusBadRequest {
			t.Errorf("fleet%s: got %d %s, want 400", query, code, body)
		}
	}
}

// TestRecentCommands lists a controller's status records, newest first,
// and no other controller's.
func TestRecentCommands(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	js := natstest.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := streams.Ensure(ctx, js, streams.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range []commands.Record{
		{ID: "C1.1", Controller: "C1", Type: scpgate.CmdIDRequest, Status: scpgate.StatusOK, Seq: 1},
		{ID: "C1.7", Controller: "C1", Type: scpgate.CmdMomentaryUnlock, Status: scpgate.StatusNAK, Reason: "out_of_range", Seq: 7},
		{ID: "C10.3", Controller: "C10", Type: scpgate.CmdReset, Status: scpgate.StatusOK, Seq: 3},
	} {
		b, _ := json.Marshal(rec)
		if _, err := h.CommandStatus.Put(ctx, rec.ID, b); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	console.New(console.Options{NC: nc, Log: testLog(t)}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for query, want := range map[string]string{
		"C1/commands":         "[C1.7 nak C1.1 ok]",
		"C1/commands?limit=1": "[C1.7 nak]",
		"C10/commands":        "[C10.3 ok]",
		"C2/commands":         "[]",
	} {
		code, body, _ := get(t, srv.URL, "/console/api/controllers/"+query)
		var list console.CommandList
		if err := json.Unmarshal([]byte(body), &list); err != nil || code != http.StatusOK {
			t.Fatalf("%s: %d %s", query, code, body)
		}
		got := []string{}
		for _, r := range list.Commands {
			got = append(got, r.ID, string(r.Status))
		}
		if fmt.Sprint(got) != want {
			t.Errorf("%s: got %v, want %s", query, got, want)
		}
	}
	for _, query := range []string{"C1/commands?limit=0", "bad%20serial/commands"} {
		if code, body, _ := get(t, srv.URL, "/console/api/controllers/"+query); code != http.StatusBadRequest {
			t.Errorf("%s: got %d %s, want 400", query, code, body)
		}
	}
}

// TestPages serves the embedded pages with their types and a redirect from
// /, without reaching NATS.
func TestPages(t *testing.T) {
	mux := http.NewServeMux()
	console.New(console.Options{}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for path, want := range map[string]string{
		"/console/":              "text/html",
		"/console/app.js":        "text/javascript",
		"/console/style.css":     "text/css",
		"/console/fleet.js":      "text/javascript",
		"/console/controller.js": "text/javascript",
	} {
		code, body, hdr := get(t, srv.URL, path)
		if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), want) || body == "" {
			t.Errorf("GET %s: %d %q (%d bytes), want 200 %s", path, code, hdr.Get("Content-Type"), len(body), want)
		}
		if hdr.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no Content-Security-Policy", path)
		}
	}
	if code, _, hdr := get(t, srv.URL, "/"); code != http.StatusFound || hdr.Get("Location") != console.Prefix {
		t.Errorf("GET /: %d to %q, want a redirect to %s", code, hdr.Get("Location"), console.Prefix)
	}
	if code, _, _ := get(t, srv.URL, "/console/nothing.js"); code != http.StatusNotFound {
		t.Errorf("GET /console/nothing.js: %d, want 404", code)
	}
}
