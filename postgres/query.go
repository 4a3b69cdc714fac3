package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/internal/sqlstore"
)

// QueryEvents implements scpgate.Store.
func (s *Store) QueryEvents(ctx context.Context, q scpgate.EventQuery) (scpgate.EventPage, error) {
	cur, err := q.Normalize()
	if err != nil {
		return scpgate.EventPage{}, err
	}
	query, args := sqlstore.EventsQuery(&q, cur, "doc::text", sqlstore.Dollar)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return scpgate.EventPage{}, fmt.Errorf("query events: %w", err)
	}
	docs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return scpgate.EventPage{}, fmt.Errorf("read events: %w", err)
	}
	more := len(docs) > q.Limit
	if more {
		docs = docs[:q.Limit]
	}
	page := scpgate.EventPage{Events: make([]scpgate.Event, len(docs))}
	for i, doc := range docs {
		if err := json.Unmarshal([]byte(doc), &page.Events[i]); err != nil {
			return scpgate.EventPage{}, fmt.Errorf("decode stored event: %w", err)
		}
	}
	if more {
		page.Next = scpgate.CursorAfter(&page.Events[len(page.Events)-1], q.Order).String()
	}
	return page, nil
}

// ControllerState implements scpgate.Store. It reads the controller and
// its points in one snapshot.
func (s *Store) ControllerState(ctx context.Context, serial string) (*scpgate.ControllerState, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin state read: %w", err)
	}
	defer tx.Rollback(ctx)
	c := &scpgate.ControllerState{Serial: serial}
	var row sqlstore.ControllerRow
	err = tx.QueryRow(ctx, `SELECT `+sqlstore.ControllerColumns+` FROM controllers WHERE serial = $1`, serial).Scan(row.Dest(c)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("controller %s: %w", serial, scpgate.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read controller %s: %w", serial, err)
	}
	row.Apply(c)
	rows, err := tx.Query(ctx, `SELECT `+sqlstore.PointColumns+`
		FROM point_state WHERE controller = $1 ORDER BY type, number, aspect`, serial)
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
	err := s.pool.QueryRow(ctx, `SELECT doc::text FROM results WHERE id = $1`, id).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
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
