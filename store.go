package scpgate

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Store is the event history: every event and command result ingest has
// consumed, and the current state derived from them. Implementations are
// package sqlite (embedded, the default) and package postgres; package
// storetest holds the conformance suite both pass.
//
// A Store is safe for concurrent use, and several processes may share one
// (PostgreSQL): writes are idempotent and state never moves back.
type Store interface {
	// WriteBatch stores events and results in one transaction. An event or
	// result whose id is already stored is skipped, so a batch may be
	// written any number of times. Current state is updated by the events
	// newly stored, only where they are newer than what it holds (see
	// ControllerState.Apply). inserted counts the events and results newly
	// stored. Invalid input fails the whole batch with ErrInvalidEvent or
	// ErrInvalidResult. On success it sets Event.Inserted on each event it
	// newly stored and clears it on the others.
	WriteBatch(ctx context.Context, events []Event, results []Result) (inserted int, err error)

	// QueryEvents returns one page of events matching q, ordered by event
	// time then id. A malformed q returns a *QueryError.
	QueryEvents(ctx context.Context, q EventQuery) (EventPage, error)

	// ControllerState returns the current state of one controller, or
	// ErrNotFound when no event of it was stored.
	ControllerState(ctx context.Context, serial string) (*ControllerState, error)

	// ResultByID returns the stored result of a command, or ErrNotFound.
	ResultByID(ctx context.Context, id string) (*Result, error)

	// Close releases the store's connections.
	Close() error
}

// SerialWriter is implemented by a Store that writes one batch at a time
// however many callers it has (SQLite: one writer connection). Callers
// that would write several batches at once write one instead: the
// batches would queue for the store, and each would be smaller.
type SerialWriter interface {
	SerialWrites()
}

// ErrNotFound is returned by a Store when the controller or result asked
// for is not stored.
var ErrNotFound = errors.New("not found")

// ErrInvalidEvent is returned (wrapped) by CheckEvent and WriteBatch for an
// event that cannot be stored: no id, no controller, unknown kind, no time,
// or an id that is not EventID of its controller, boot epoch and seq.
var ErrInvalidEvent = errors.New("invalid event")

// ErrInvalidResult is returned (wrapped) by CheckResult and WriteBatch for a
// result without id, controller or status.
var ErrInvalidResult = errors.New("invalid result")

// CheckEvent reports why ev cannot be stored, or nil. The error wraps
// ErrInvalidEvent.
func CheckEvent(ev *Event) error {
	switch {
	case ev.ID == "":
		return fmt.Errorf("%w: empty id", ErrInvalidEvent)
	case ev.Controller == "":
		return fmt.Errorf("%w %s: empty controller", ErrInvalidEvent, ev.ID)
	case !ev.Kind.Valid():
		return fmt.Errorf("%w %s: unknown kind %q", ErrInvalidEvent, ev.ID, ev.Kind)
	case ev.Time.IsZero():
		return fmt.Errorf("%w %s: no time", ErrInvalidEvent, ev.ID)
	case ev.Kind == KindPresence && ev.Code != "online" && ev.Code != "offline":
		return fmt.Errorf("%w %s: presence code %q, want online or offline", ErrInvalidEvent, ev.ID, ev.Code)
	case ev.Kind != KindPresence && ev.ID != EventID(ev.Controller, ev.BootEpoch, ev.Seq):
		return fmt.Errorf("%w %s: id is not <controller>.<boot epoch>.<seq> (%s)", ErrInvalidEvent, ev.ID,
			EventID(ev.Controller, ev.BootEpoch, ev.Seq))
	}
	return nil
}

// EventDoc returns the JSON document a store keeps for ev: ev.Doc when
// set, else ev encoded.
func EventDoc(ev *Event) ([]byte, error) {
	if ev.Doc != nil {
		return ev.Doc, nil
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	return b, nil
}

// CheckResult reports why r cannot be stored, or nil. The error wraps
// ErrInvalidResult.
func CheckResult(r *Result) error {
	switch {
	case r.ID == "":
		return fmt.Errorf("%w: empty id", ErrInvalidResult)
	case r.Controller == "":
		return fmt.Errorf("%w %s: empty controller", ErrInvalidResult, r.ID)
	case r.Status == "":
		return fmt.Errorf("%w %s: empty status", ErrInvalidResult, r.ID)
	}
	return nil
}

// CheckBatch checks every event and result of a batch before a store
// writes any of it: the first that cannot be stored is the error.
func CheckBatch(events []Event, results []Result) error {
	for i := range events {
		if err := CheckEvent(&events[i]); err != nil {
			return err
		}
	}
	for i := range results {
		if err := CheckResult(&results[i]); err != nil {
			return err
		}
	}
	return nil
}

// Order is the direction of an event query.
type Order string

// Query orders.
const (
	OrderAsc  Order = "asc"  // oldest first (the default)
	OrderDesc Order = "desc" // newest first
)

// Query limits.
const (
	DefaultQueryLimit = 100  // page size when EventQuery.Limit is 0
	MaxQueryLimit     = 1000 // largest page size accepted
)

// EventQuery selects events. Zero fields do not filter.
type EventQuery struct {
	Controller string    `json:"controller,omitempty"`
	Kind       Kind      `json:"kind,omitempty"`
	Since      time.Time `json:"since,omitzero"` // event time >= Since
	Until      time.Time `json:"until,omitzero"` // event time < Until
	Limit      int       `json:"limit,omitempty"`
	After      string    `json:"after,omitempty"` // the Next of the previous page
	Order      Order     `json:"order,omitempty"`
}

// EventPage is one page of a query. Next is empty on the last page;
// otherwise it is passed as EventQuery.After, with the same filters and
// order, to get the next page.
type EventPage struct {
	Events []Event `json:"events"`
	Next   string  `json:"next,omitempty"`
}

// QueryError is a malformed query: the HTTP API answers it with 400.
type QueryError struct {
	Param  string // the query parameter at fault
	Reason string
}

// Error implements error.
func (e *QueryError) Error() string {
	return "bad query parameter " + e.Param + ": " + e.Reason
}

// Cursor is a position in the (time, id) order of events.
type Cursor struct {
	Order  Order
	TimeNS int64 // event time, Unix nanoseconds
	ID     string
}

// CursorAfter returns the cursor just past ev in order o.
func CursorAfter(ev *Event, o Order) Cursor {
	return Cursor{Order: o, TimeNS: ev.Time.UnixNano(), ID: ev.ID}
}

// String encodes c as the opaque text of EventPage.Next.
func (c Cursor) String() string {
	dir := "a"
	if c.Order == OrderDesc {
		dir = "d"
	}
	raw := dir + ":" + strconv.FormatInt(c.TimeNS, 10) + ":" + c.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// ParseCursor decodes the text of EventPage.Next.
func ParseCursor(s string) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, errors.New("not a cursor returned as next")
	}
	parts := strings.SplitN(string(raw), ":", 3)
	if len(parts) != 3 || parts[2] == "" {
		return Cursor{}, errors.New("not a cursor returned as next")
	}
	var c Cursor
	switch parts[0] {
	case "a":
		c.Order = OrderAsc
	case "d":
		c.Order = OrderDesc
	default:
		return Cursor{}, errors.New("not a cursor returned as next")
	}
	if c.TimeNS, err = strconv.ParseInt(parts[1], 10, 64); err != nil {
		return Cursor{}, errors.New("not a cursor returned as next")
	}
	c.ID = parts[2]
	return c, nil
}

// Normalize checks q, fills its defaults (Limit, Order) and decodes its
// cursor (nil when After is empty). Stores call it first; its errors are
// *QueryError.
func (q *EventQuery) Normalize() (*Cursor, error) {
	if q.Order == "" {
		q.Order = OrderAsc
	}
	if q.Order != OrderAsc && q.Order != OrderDesc {
		return nil, &QueryError{"order", fmt.Sprintf("%q, want asc or desc", q.Order)}
	}
	if q.Limit == 0 {
		q.Limit = DefaultQueryLimit
	}
	if q.Limit < 0 || q.Limit > MaxQueryLimit {
		return nil, &QueryError{"limit", fmt.Sprintf("%d, want 1 to %d", q.Limit, MaxQueryLimit)}
	}
	if q.Kind != "" && !q.Kind.Valid() {
		return nil, &QueryError{"kind", fmt.Sprintf("unknown kind %q", q.Kind)}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return nil, &QueryError{"until", "must be after since"}
	}
	for _, t := range []struct {
		name string
		v    time.Time
	}{{"since", q.Since}, {"until", q.Until}} {
		if !t.v.IsZero() && (t.v.Year() < 1678 || t.v.Year() > 2261) {
			return nil, &QueryError{t.name, "out of range (years 1678 to 2261)"}
		}
	}
	if q.After == "" {
		return nil, nil
	}
	c, err := ParseCursor(q.After)
	if err != nil {
		return nil, &QueryError{"after", err.Error()}
	}
	if c.Order != q.Order {
		return nil, &QueryError{"after", "cursor of a query in the other order"}
	}
	return &c, nil
}
