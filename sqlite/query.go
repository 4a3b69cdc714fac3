package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

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
	if q.Controller != "" {
		where = append(where, "controller = ?")
		args = append(args, q.Controller)
	}
	if q.Kind != "" {
		where = append(where, "kind = ?")
		args = append(args, string(q.Kind))
	}
	if !q.Since.IsZero() {
		where = append(where, "time_ns >= ?")
		args = append(args, q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		where = append(where, "time_ns < ?")
		args = append(args, q.Until.UnixNano())
	}
	dir, cmp := "ASC", ">"
	if q.Order == scpgate.OrderDesc {
		dir, cmp = "DESC", "<"
	}
	if cur != nil {
		where = append(where, "(time_ns, id) "+cmp+" (?, ?)")
		args = append(args, cur.TimeNS, cur.ID)
	}
	var b strings.Builder
	b.WriteString("SELECT doc FROM events")
	if len(where) > 0 {
		b.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	b.WriteString(" ORDER BY time_ns " + dir + ", id " + dir + " LIMIT ?")
	args = append(args, q.Limit+1)

	rows, err := s.r.QueryContext(ctx, b.String(), args...)
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
	var (
		lastSeen, pTime, iTime     int64
		online                     bool
		pEvent, iEvent             string
		pEpoch, pSeq, iEpoch, iSeq int64
	)
	err = tx.QueryRowContext(ctx, `SELECT last_seen_ns, online, session, reason,
		p_event, p_epoch, p_seq, p_time_ns, model, firmware, remote, i_event, i_epoch, i_seq, i_time_ns
		FROM controllers WHERE serial = ?`, serial).Scan(&lastSeen, &online, &c.Session, &c.Reason,
		&pEvent, &pEpoch, &pSeq, &pTime, &c.Model, &c.Firmware, &c.Remote, &iEvent, &iEpoch, &iSeq, &iTime)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("controller %s: %w", serial, scpgate.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read controller %s: %w", serial, err)
	}
	c.Online = online
	c.LastSeen = fromNS(lastSeen)
	if pEvent != "" {
		c.PresenceAt = scpgate.Mark{Event: pEvent, BootEpoch: uint32(pEpoch), Seq: uint32(pSeq), Time: fromNS(pTime)}
	}
	if iEvent != "" {
		c.InfoAt = scpgate.Mark{Event: iEvent, BootEpoch: uint32(iEpoch), Seq: uint32(iSeq), Time: fromNS(iTime)}
	}
	rows, err := tx.QueryContext(ctx, `SELECT type, number, aspect, code, event, boot_epoch, seq, time_ns
		FROM point_state WHERE controller = ? ORDER BY type, number, aspect`, serial)
	if err != nil {
		return nil, fmt.Errorf("read points of %s: %w", serial, err)
	}
	defer rows.Close()
	for rows.Next() {
		var u scpgate.PointUpdate
		var num, epoch, seq, t int64
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

// fromNS is the inverse of unixNS: 0 is the zero time, others UTC.
func fromNS(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
