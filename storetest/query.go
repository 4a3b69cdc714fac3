package storetest

import (
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
)

// filter returns the events of sorted that q selects, in q's order.
func filter(sorted []scpgate.Event, q scpgate.EventQuery) []scpgate.Event {
	var out []scpgate.Event
	for _, ev := range sorted {
		switch {
		case q.Controller != "" && ev.Controller != q.Controller,
			q.Kind != "" && ev.Kind != q.Kind,
			!q.Since.IsZero() && ev.Time.Before(q.Since),
			!q.Until.IsZero() && !ev.Time.Before(q.Until):
			continue
		}
		out = append(out, ev)
	}
	if q.Order == scpgate.OrderDesc {
		slices.Reverse(out)
	}
	return out
}

// tiedHistory is a history with several events at the same instant, so
// pages must break ties by id.
func tiedHistory() []scpgate.Event {
	events := History(6, 4, 60)
	for i := 10; i < 30; i++ {
		events[i].Time = events[10].Time // same instant, ids of one controller
	}
	at := events[100].Time
	for i := range events {
		if i%37 == 0 {
			events[i].Time = at // same instant, several controllers
		}
	}
	return events
}

func testPagination(t *testing.T, s scpgate.Store) {
	events := tiedHistory()
	write(t, s, events, nil)
	sorted := Sorted(events)
	for _, order := range []scpgate.Order{scpgate.OrderAsc, scpgate.OrderDesc, ""} {
		for _, limit := range []int{1, 7, 50, 240, 1000} {
			q := scpgate.EventQuery{Limit: limit, Order: order}
			got := All(t, s, q)
			SameEvents(t, "order "+string(order)+" limit "+itoa(limit), got, filter(sorted, q))
		}
	}
	// A page of exactly the remaining events has no next cursor.
	page, err := s.QueryEvents(ctx(t), scpgate.EventQuery{Limit: len(sorted)})
	if err != nil {
		t.Fatalf("query all: %v", err)
	}
	if len(page.Events) != len(sorted) || page.Next != "" {
		t.Fatalf("query with limit = count: got %d events, next %q; want %d and no next", len(page.Events), page.Next, len(sorted))
	}
	// Events written after a page was read appear on later pages.
	first, err := s.QueryEvents(ctx(t), scpgate.EventQuery{Limit: 5})
	if err != nil {
		t.Fatalf("first page: %v", err)
	}
	late := History(7, 1, 5)
	for i := range late {
		late[i].Controller = "LATE"
		late[i].ID = scpgate.EventID("LATE", late[i].BootEpoch, late[i].Seq)
		if late[i].Kind == scpgate.KindPresence {
			late[i].ID = "LATE.presence." + itoa(i)
		}
		late[i].Time = sorted[len(sorted)-1].Time.Add(time.Duration(i+1) * time.Second)
	}
	write(t, s, late, nil)
	rest := All(t, s, scpgate.EventQuery{Limit: 13, After: first.Next})
	SameEvents(t, "pages after a late write", append(first.Events, rest...), Sorted(append(slices.Clone(events), late...)))
}

func testFilters(t *testing.T, s scpgate.Store) {
	events := tiedHistory()
	write(t, s, events, nil)
	sorted := Sorted(events)
	mid := sorted[len(sorted)/2].Time
	queries := []scpgate.EventQuery{
		{Controller: Serial(1)},
		{Kind: scpgate.KindDoor},
		{Controller: Serial(2), Kind: scpgate.KindPresence},
		{Since: mid},
		{Until: mid},
		{Since: sorted[20].Time, Until: mid, Order: scpgate.OrderDesc},
		{Controller: Serial(3), Kind: scpgate.KindAccess, Since: sorted[5].Time, Until: sorted[200].Time},
		{Controller: "NOPE"},
	}
	for _, q := range queries {
		want := filter(sorted, q)
		for _, limit := range []int{3, 1000} {
			q.Limit = limit
			SameEvents(t, JSON(q), All(t, s, q), want)
		}
	}
}

func testBadQueries(t *testing.T, s scpgate.Store) {
	write(t, s, History(8, 1, 30), nil)
	page, err := s.QueryEvents(ctx(t), scpgate.EventQuery{Limit: 2, Order: scpgate.OrderDesc})
	if err != nil || page.Next == "" {
		t.Fatalf("desc page: next %q, err %v; want a next cursor", page.Next, err)
	}
	now := time.Now()
	bad := []struct {
		q     scpgate.EventQuery
		param string
	}{
		{scpgate.EventQuery{Limit: -1}, "limit"},
		{scpgate.EventQuery{Limit: scpgate.MaxQueryLimit + 1}, "limit"},
		{scpgate.EventQuery{Order: "sideways"}, "order"},
		{scpgate.EventQuery{Kind: "doors"}, "kind"},
		{scpgate.EventQuery{Since: now, Until: now}, "until"},
		{scpgate.EventQuery{Since: now, Until: now.Add(-time.Second)}, "until"},
		{scpgate.EventQuery{Since: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)}, "since"},
		{scpgate.EventQuery{After: "not a cursor!"}, "after"},
		{scpgate.EventQuery{After: "eDoxOmE"}, "after"},
		{scpgate.EventQuery{After: page.Next}, "after"}, // a desc cursor in an asc query
	}
	for _, b := range bad {
		_, err := s.QueryEvents(ctx(t), b.q)
		var qe *scpgate.QueryError
		if !errors.As(err, &qe) {
			t.Fatalf("query %s: got error %v, want a *scpgate.QueryError", JSON(b.q), err)
		}
		if qe.Param != b.param {
			t.Fatalf("query %s: error names %q (%v), want %q", JSON(b.q), qe.Param, qe, b.param)
		}
	}
}

func testNotFound(t *testing.T, s scpgate.Store) {
	write(t, s, History(9, 1, 3), []scpgate.Result{result(0, scpgate.StatusOK)})
	if _, err := s.ControllerState(ctx(t), "UNKNOWN"); !errors.Is(err, scpgate.ErrNotFound) {
		t.Fatalf("state of an unknown controller: got %v, want ErrNotFound", err)
	}
	if _, err := s.ResultByID(ctx(t), "no-such-command"); !errors.Is(err, scpgate.ErrNotFound) {
		t.Fatalf("unknown result: got %v, want ErrNotFound", err)
	}
	if _, err := s.ControllerState(ctx(t), Serial(0)); err != nil {
		t.Fatalf("state of a known controller: %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
