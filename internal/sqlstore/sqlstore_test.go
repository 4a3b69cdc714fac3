package sqlstore_test

import (
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/internal/sqlstore"
)

func TestLoadMigrations(t *testing.T) {
	ms, err := sqlstore.LoadMigrations(fstest.MapFS{
		"migrations/0002_state.sql":  {Data: []byte("B")},
		"migrations/0001_events.sql": {Data: []byte("A")},
		"migrations/README":          {Data: []byte("not a migration")},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []sqlstore.Migration{{1, "0001_events.sql", "A"}, {2, "0002_state.sql", "B"}}
	if !reflect.DeepEqual(ms, want) {
		t.Fatalf("migrations = %+v, want %+v", ms, want)
	}

	for name, fsys := range map[string]fstest.MapFS{
		"not NNNN_name.sql":  {"migrations/events.sql": {Data: []byte("A")}},
		"share version":      {"migrations/0001_a.sql": {}, "migrations/1_b.sql": {}},
		"not NNNN_name.sql ": {"migrations/0000_zero.sql": {}},
	} {
		if _, err := sqlstore.LoadMigrations(fsys); err == nil || !strings.Contains(err.Error(), strings.TrimSpace(name)) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestEventsQuery(t *testing.T) {
	since := time.Unix(100, 0)
	q := scpgate.EventQuery{Controller: "C1", Kind: scpgate.KindDoor, Since: since, Order: scpgate.OrderDesc, Limit: 10}
	cur := &scpgate.Cursor{Order: scpgate.OrderDesc, TimeNS: 7, ID: "x"}

	sql, args := sqlstore.EventsQuery(&q, cur, "doc::text", sqlstore.Dollar)
	wantSQL := "SELECT doc::text FROM events WHERE controller = $1 AND kind = $2 AND time_ns >= $3" +
		" AND (time_ns, id) < ($4, $5) ORDER BY time_ns DESC, id DESC LIMIT $6"
	if sql != wantSQL {
		t.Errorf("postgres:\n got %s\nwant %s", sql, wantSQL)
	}
	wantArgs := []any{"C1", "door", since.UnixNano(), int64(7), "x", 11}
	if !reflect.DeepEqual(args, wantArgs) {
		t.Errorf("args = %#v, want %#v", args, wantArgs)
	}

	sql, args = sqlstore.EventsQuery(&scpgate.EventQuery{Order: scpgate.OrderAsc, Limit: 5}, nil, "doc", sqlstore.Question)
	if want := "SELECT doc FROM events ORDER BY time_ns ASC, id ASC LIMIT ?"; sql != want || !reflect.DeepEqual(args, []any{6}) {
		t.Errorf("sqlite: %s %v, want %s [6]", sql, args, want)
	}
}

func TestNS(t *testing.T) {
	if sqlstore.UnixNS(time.Time{}) != 0 || !sqlstore.FromNS(0).IsZero() {
		t.Fatal("zero time does not map to 0 and back")
	}
	at := time.Date(2026, 11, 26, 10, 0, 0, 123, time.FixedZone("x", 3600))
	if got := sqlstore.FromNS(sqlstore.UnixNS(at)); !got.Equal(at) || got.Location() != time.UTC {
		t.Fatalf("round trip of %v = %v", at, got)
	}
}
