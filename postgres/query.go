package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/scpgate/scpgate"
)

// QueryEvents implements scpgate.Store.
func (s *Store) QueryEvents(ctx context.Context, q scpgate.EventQuery) (scpgate.EventPage, error) {
	cur, err := q.Normalize()
	if err != nil {
		return scpgate.EventPage{}, err
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.Controller != "" {
		where = append(where, "controller = "+arg(q.Controller))
	}
	if q.Kind != "" {
		where = append(where, "kind = "+arg(string(q.Kind)))
	}
	if !q.Since.IsZero() {
		where = append(where, "time_ns >= "+arg(q.Since.UnixNano()))
	}
	if !q.Until.IsZero() {
		where = append(where, "time_ns < "+arg(q.Until.UnixNano()))
	}
	dir, cmp := "ASC", ">"
	if q.Order == scpgate.OrderDesc {
		dir, cmp = "DESC", "<"
	}
	if cur != nil {
		where = append(where, "(time_ns, id) "+cmp+" ("+arg(cur.TimeNS)+", "+arg(cur.ID)+")")
	}
	var b strings.Builder
	b.WriteString("SELECT doc::text FROM events")
	if len(where) > 0 {
		b.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	b.WriteString(" ORDER BY time_ns " + dir + ", id " + dir + " LIMIT " + arg(q.Limit+1))

	rows, err := s.pool.Query(ctx, b.String(), args...)
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
	var (
		lastSeen, pTime, iTime     int64
		pEvent, iEvent             string
		pEpoch, pSeq, iEpoch, iSeq int64
	)
	err = tx.QueryRow(ctx, `SELECT last_seen_ns, online, session, reason,
		p_event, p_epoch, p_seq, p_time_ns, model, firmware, remote, i_event, i_epoch, i_seq, i_time_ns
		FROM controllers WHERE serial = $1`, serial).Scan(&lastSeen, &c.Online, &c.Session, &c.Reason,
		&pEvent, &pEpoch, &pSeq, &pTime, &c.Model, &c.Firmware, &c.Remote, &iEvent, &iEpoch, &iSeq, &iTime)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("controller %s: %w", serial, scpgate.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read controller %s: %w", serial, err)
	}
	c.LastSeen = fromNS(lastSeen)
	if pEvent != "" {
		c.PresenceAt = scpgate.Mark{Event: pEvent, BootEpoch: uint32(pEpoch), Seq: uint32(pSeq), Time: fromNS(pTime)}
	}
	if iEvent != "" {
		c.InfoAt = scpgate.Mark{Event: iEvent, BootEpoch: uint32(iEpoch), Seq: uint32(iSeq), Time: fromNS(iTime)}
	}
	rows, err := tx.Query(ctx, `SELECT type, number, aspect, code, event, boot_epoch, seq, time_ns
		FROM point_state WHERE controller = $1 ORDER BY type, number, aspect`, serial)
	if err != nil {
		return nil, fmt.Errorf("read points of %s: %w", serial, err)
	}
	defer rows.Close()
	for rows.Next() {
		var u scpgate.PointUpdate
		var num int32
		var epoch, seq, t int64
		if err := rows.Scan(&u.Type, &num, &u.Aspect, &u.Code, &u.At.Event, &epoch, &seq, &t); err != nil {
			return nil, fmt.Errorf("scan point of %s: %w", serial, err)
		}
		u.Number, u.At.BootEpoch, u.At.Seq, u.At.Time = uint16(num), uint32(epoch), uint32(seq), fromNS(t)
		c.ApplyPoint(u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read points of %s: %w", serial, err)
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
