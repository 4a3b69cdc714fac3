package ingest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/schema/schematest"
	"github.com/scpgate/scpgate/storetest"
)

// apiServer serves the query API over a store holding events and rs.
func apiServer(t *testing.T, events []scpgate.Event, rs []scpgate.Result) *httptest.Server {
	store := backends[0].open(t, backends[0].db(t))
	if _, err := store.WriteBatch(context.Background(), events, rs); err != nil {
		t.Fatalf("write: %v", err)
	}
	srv := httptest.NewServer(schematest.DocumentedOnly(t, ingest.NewHandler(store, zerolog.New(zerolog.NewTestWriter(t)))))
	t.Cleanup(srv.Close)
	return srv
}

// get fetches path and decodes the JSON answer into v; it returns the
// status code.
func get(t *testing.T, srv *httptest.Server, path string, v any) int {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: content type %q, want application/json", path, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decode: %v", path, err)
	}
	return resp.StatusCode
}

// pages reads every page of an event endpoint.
func pages(t *testing.T, srv *httptest.Server, path string) []scpgate.Event {
	t.Helper()
	var out []scpgate.Event
	next := ""
	for range 10000 {
		p := path
		if next != "" {
			p += "&after=" + url.QueryEscape(next)
		}
		var page scpgate.EventPage
		if code := get(t, srv, p, &page); code != http.StatusOK {
			t.Fatalf("GET %s: status %d", p, code)
		}
		out = append(out, page.Events...)
		if next = page.Next; next == "" {
			return out
		}
	}
	t.Fatalf("GET %s: no last page", path)
	return nil
}

func TestHTTPQueries(t *testing.T) {
	events := storetest.History(9, 3, 80)
	rs := results(3)
	srv := apiServer(t, events, rs)
	sorted := storetest.Sorted(events)

	storetest.SameEvents(t, "all, 7 per page", pages(t, srv, "/v1/events?limit=7"), sorted)

	var doors []scpgate.Event
	for _, ev := range sorted {
		if ev.Controller == storetest.Serial(1) && ev.Kind == scpgate.KindDoor {
			doors = append([]scpgate.Event{ev}, doors...) // newest first
		}
	}
	storetest.SameEvents(t, "doors of one controller, newest first",
		pages(t, srv, "/v1/events?controller="+storetest.Serial(1)+"&kind=door&order=desc&limit=3"), doors)
	storetest.SameEvents(t, "the same by the controller path",
		pages(t, srv, "/v1/controllers/"+storetest.Serial(1)+"/events?kind=door&order=desc&limit=4"), doors)

	since, until := sorted[10].Time, sorted[50].Time
	var window []scpgate.Event
	for _, ev := range sorted {
		if !ev.Time.Before(since) && ev.Time.Before(until) {
			window = append(window, ev)
		}
	}
	q := url.Values{"since": {since.Format("2006-01-02T15:04:05.999999999Z07:00")}, "until": {until.Format("2006-01-02T15:04:05.999999999Z07:00")}, "limit": {"6"}}
	storetest.SameEvents(t, "time window", pages(t, srv, "/v1/events?"+q.Encode()), window)

	// An unescaped + in an offset is read as a space; it is accepted.
	plus := since.In(time.FixedZone("", 3600)).Format("2006-01-02T15:04:05.999999999-07:00")
	storetest.SameEvents(t, "unescaped offset", pages(t, srv, "/v1/events?limit=500&until="+until.Format(time.RFC3339Nano)+"&since="+plus), window)

	var st scpgate.ControllerState
	if code := get(t, srv, "/v1/controllers/"+storetest.Serial(2)+"/state", &st); code != http.StatusOK {
		t.Fatalf("state: status %d", code)
	}
	if got, want := storetest.JSON(st), storetest.JSON(storetest.Expected(events)[storetest.Serial(2)]); got != want {
		t.Fatalf("state:\n got %s\nwant %s", got, want)
	}
	var r scpgate.Result
	if code := get(t, srv, "/v1/results/"+rs[1].ID, &r); code != http.StatusOK || r.ID != rs[1].ID {
		t.Fatalf("result: status %d, id %q", code, r.ID)
	}
}

// TestHTTPErrors checks each refused query: its status, a message naming
// what is wrong and the code of the shared error model.
func TestHTTPErrors(t *testing.T) {
	srv := apiServer(t, storetest.History(10, 1, 20), nil)
	var page scpgate.EventPage
	get(t, srv, "/v1/events?limit=2&order=desc", &page)
	tests := []struct {
		path, want string
		code       int
	}{
		{"/v1/events?limit=0", "limit", 400},
		{"/v1/events?limit=ten", "limit", 400},
		{"/v1/events?limit=5000", "limit", 400},
		{"/v1/events?since=yesterday", "since", 400},
		{"/v1/events?until=2026-13-01T00:00:00Z", "until", 400},
		{"/v1/events?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "until", 400},
		{"/v1/events?kind=doors", "kind", 400},
		{"/v1/events?order=up", "order", 400},
		{"/v1/events?after=garbage", "after", 400},
		{"/v1/events?after=" + url.QueryEscape(page.Next), "after", 400}, // a desc cursor, asc query
		{"/v1/events?controler=SC00000", "controler", 400},
		{"/v1/events?kind=door&kind=input", "kind", 400},
		{"/v1/events?controller=bad.serial", "controller", 400},
		{"/v1/controllers/SC00000/events?controller=SC00000", "controller", 400},
		{"/v1/controllers/bad.serial/state", "serial", 400},
		{"/v1/controllers/NOPE/state", "not found", 404},
		{"/v1/results/nope", "not found", 404},
		{"/v1/nothing", "no such endpoint", 404},
	}
	for _, tt := range tests {
		var body map[string]string
		code := get(t, srv, tt.path, &body)
		if code != tt.code || !strings.Contains(body["error"], tt.want) {
			t.Errorf("GET %s: got %d %q, want %d with %q", tt.path, code, body["error"], tt.code, tt.want)
		}
		// The error shape is the commander's (api.json#/$defs/error).
		wantCode := map[int]string{400: "bad_request", 404: "not_found"}[tt.code]
		if body["code"] != wantCode || len(body) != 2 {
			t.Errorf("GET %s: body %v, want error and code %q only", tt.path, body, wantCode)
		}
	}
}
