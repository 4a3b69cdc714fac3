package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/internal/sqlstore"
)

// QueryEvents implements scpgate.Store.
func (s *Store) QueryEvents(ctx context.Context, q scpgate.EventQuery) (scpgate.EventPage, error) {
	cur, err := q.Normalize()
	if err != nil {
		return scpgate.EventPage{}, err
	}
	query, args := sqlstore.EventsQuery(&q, cur, "doc", sqlstore.Question)
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return scpgate.EventPage{}, fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	page := scpgate.EventPage{Events: make([]scpgate.Event, 0, min(q.Limit, 64))}
	more := false
	for rows.Next() {
		if len(page.Events) == q.Limit {
			more = true
			break
		}
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return scpgate.EventPage{}, fmt.Errorf("scan event: %w", err)
		}
		var ev scpgate.Event
		if err := json.Unmarshal([]byte(doc), &ev); err != nil {
			return scpgate.EventPage{}, fmt.Errorf("decode stored event: %w", err)
		}
		page.Events = append(page.Events, ev)
	}
	if err := rows.Err(); err != nil {
		return scpgate.EventPage{}, fmt.Errorf("read events: %w", err)
	}
	if more {
		page.Next = scpgate.CursorAfter(&page.Events[len(page.Events)-1], q.Order).String()
	}
	return page, nil
}

// ControllerState implements scpgate.Store.
func (s *Store) ControllerState(ctx context.Context, serial string) (*scpgate.ControllerState, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin state read: %w", err)
	}
	defer tx.Rollback()
	c := &scpgate.ControllerState{Serial: serial}
	var row sqlstore.ControllerRow
	err = tx.QueryRowContext(ctx, `SELECT `+sqlstore.ControllerColumns+` FROM controllers WHERE serial = ?`, serial).Scan(row.Dest(c)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("controller %s: %w", serial, scpgate.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read controller %s: %w", serial, err)
	}
	row.Apply(c)
	rows, err := tx.QueryContext(ctx, `SELECT `+sqlstore.PointColumns+`
		FROM point_state WHERE controller = ? ORDER BY type, number, aspect`, serial)
	if err != nil {
		return nil, fmt.Errorf("read points of %s: %w", serial, err)
	}
	defer rows.Close()
	if err := sqlstore.ReadPoints(rows, c); err != nil {
		return nil, err
	}
	return c, nil
}

// ResultByID implements scpgate.Store.
func (s *Store) ResultByID(ctx context.Context, id string) (*scpgate.Result, error) {
	var doc string
	err := s.r.QueryRowContext(ctx, `SELECT doc FROM results WHERE id = ?`, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("result %s: %w", id, scpgate.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read result %s: %w", id, err)
	}
	var r scpgate.Result
	if err := json.Unmarshal([]byte(doc), &r); err != nil {
		return nil, fmt.Errorf("decode stored result %s: %w", id, err)
	}
	return &r, nil
}
