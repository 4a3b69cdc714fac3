package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/internal/sqlstore"
)

// eventChunk is the number of events one multi-row INSERT stores: one
// statement per row cost as much in the driver's per-statement work
// (binding, the interrupt watch, database/sql) as in SQLite's B-trees.
const eventChunk = 64

// eventCols is the number of columns (parameters) of one event row.
const eventCols = 11

const (
	insertEventSQL = `INSERT INTO events
		(id, controller, kind, boot_epoch, seq, time_ns, received_ns, code, source_type, source_number, doc)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`

	insertResultSQL = `INSERT INTO results
		(id, controller, type, status, seq, created_ns, finished_ns, doc)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`

	lastSeenSQL = `INSERT INTO controllers (serial, last_seen_ns) VALUES (?, ?)
		ON CONFLICT (serial) DO UPDATE SET last_seen_ns = max(last_seen_ns, excluded.last_seen_ns)`
)

// The state updates share their ordering rules with package postgres.
var (
	// presenceSQL replaces the presence register when the new event is
	// later (scpgate.PresenceAfter); the row exists (lastSeenSQL ran first).
	presenceSQL = `UPDATE controllers AS c SET online = u.online, session = u.session, reason = u.reason,
			p_event = u.p_event, p_epoch = u.p_epoch, p_seq = u.p_seq, p_time_ns = u.p_time_ns,
			p_rank = u.p_rank, p_stream = u.p_stream, p_rev = u.p_rev
		FROM (SELECT ? AS serial, ? AS online, ? AS session, ? AS reason, ? AS p_event, ? AS p_epoch, ? AS p_seq,
			? AS p_time_ns, ? AS p_rank, ? AS p_stream, ? AS p_rev) AS u
		WHERE c.serial = u.serial AND (` + sqlstore.PresenceNewer("") + `)`

	// infoSQL replaces model, firmware and remote when the online event is
	// later (scpgate.PresenceAfter).
	infoSQL = `UPDATE controllers AS c SET model = u.model, firmware = u.firmware, remote = u.remote,
			i_event = u.i_event, i_epoch = u.i_epoch, i_seq = u.i_seq, i_time_ns = u.i_time_ns,
			i_stream = u.i_stream, i_rev = u.i_rev
		FROM (SELECT ? AS serial, ? AS model, ? AS firmware, ? AS remote, ? AS i_event, ? AS i_epoch, ? AS i_seq,
			? AS i_time_ns, ? AS i_stream, ? AS i_rev) AS u
		WHERE c.serial = u.serial AND (` + sqlstore.InfoNewer("") + `)`

	// pointSQL replaces a point value when the new event is later
	// (scpgate.Mark.After).
	pointSQL = `INSERT INTO point_state AS p
		(controller, type, number, aspect, code, event, boot_epoch, seq, time_ns, stream_seq)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (controller, type, number, aspect) DO UPDATE SET
			code = excluded.code, event = excluded.event, boot_epoch = excluded.boot_epoch,
			seq = excluded.seq, time_ns = excluded.time_ns, stream_seq = excluded.stream_seq
		WHERE ` + sqlstore.PointNewer("excluded", "p")
)

// insertEventsSQL stores eventChunk events in one statement and returns
// the ids of those it stored: none for an id stored before, or earlier in
// the same statement. OR IGNORE rather than ON CONFLICT (id) DO NOTHING
// spares SQLite a statement journal per statement; the two differ only
// for NOT NULL columns, which every checked event fills (CheckBatch).
var insertEventsSQL = func() string {
	row := "(?" + strings.Repeat(", ?", eventCols-1) + ")"
	return `INSERT OR IGNORE INTO events
		(id, controller, kind, boot_epoch, seq, time_ns, received_ns, code, source_type, source_number, doc)
		VALUES ` + row + strings.Repeat(", "+row, eventChunk-1) + `
		RETURNING id`
}()

// writeStatements are the statements WriteBatch runs, prepared once on
// the writer connection by Open.
func writeStatements() []string {
	return []string{insertEventSQL, insertEventsSQL, insertResultSQL, lastSeenSQL, presenceSQL, infoSQL, pointSQL}
}

// prepare prepares the write statements on the writer connection.
func (s *Store) prepare() error {
	s.stmts = map[string]*sql.Stmt{}
	for _, q := range writeStatements() {
		st, err := s.w.Prepare(q)
		if err != nil {
			return fmt.Errorf("prepare %.40s...: %w", q, err)
		}
		s.stmts[q] = st
	}
	return nil
}

// WriteBatch implements scpgate.Store: one IMMEDIATE transaction inserts
// the events and results it does not hold and updates the state of the
// controllers the new events belong to.
func (s *Store) WriteBatch(ctx context.Context, events []scpgate.Event, results []scpgate.Result) (int, error) {
	if err := scpgate.CheckBatch(events, results); err != nil {
		return 0, err
	}
	if len(events) == 0 && len(results) == 0 {
		return 0, nil
	}
	for i := range events {
		events[i].Inserted = false
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin write batch: %w", err)
	}
	defer tx.Rollback()
	fresh := make([]bool, len(events))
	inserted, states, err := s.insertEvents(ctx, tx, events, fresh)
	if err != nil {
		return 0, err
	}
	if err := s.writeStates(ctx, tx, states); err != nil {
		return 0, err
	}
	n, err := s.insertResults(ctx, tx, results)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit write batch: %w", err)
	}
	for i := range events {
		events[i].Inserted = fresh[i]
	}
	return inserted + n, nil
}

// insertEvents inserts events and returns how many were new (marking
// them in fresh) and the state the new ones set, per controller. Full
// chunks of eventChunk events go in one statement each, the rest one by
// one.
func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, events []scpgate.Event, fresh []bool) (int, map[string]*scpgate.ControllerState, error) {
	if len(events) == 0 {
		return 0, nil, nil
	}
	one := tx.StmtContext(ctx, s.stmts[insertEventSQL])
	defer one.Close()
	var many *sql.Stmt
	if len(events) >= eventChunk {
		many = tx.StmtContext(ctx, s.stmts[insertEventsSQL])
		defer many.Close()
	}
	args := make([]any, 0, eventChunk*eventCols)
	stored := map[string]bool{}
	i := 0
	for ; i+eventChunk <= len(events); i += eventChunk {
		chunk := events[i : i+eventChunk]
		args = args[:0]
		for j := range chunk {
			var err error
			if args, err = appendEventArgs(args, &chunk[j]); err != nil {
				return 0, nil, err
			}
		}
		clear(stored)
		if err := queryIDs(ctx, many, args, stored); err != nil {
			return 0, nil, fmt.Errorf("insert events %s...%s: %w", chunk[0].ID, chunk[len(chunk)-1].ID, err)
		}
		for j := range chunk {
			if stored[chunk[j].ID] {
				fresh[i+j] = true
				delete(stored, chunk[j].ID) // a second copy in the chunk was not stored
			}
		}
	}
	for ; i < len(events); i++ {
		var err error
		if args, err = appendEventArgs(args[:0], &events[i]); err != nil {
			return 0, nil, err
		}
		res, err := one.ExecContext(ctx, args...)
		if err != nil {
			return 0, nil, fmt.Errorf("insert event %s: %w", events[i].ID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			fresh[i] = true
		}
	}
	states := map[string]*scpgate.ControllerState{}
	inserted := 0
	for i := range events {
		if !fresh[i] {
			continue // stored before
		}
		ev := &events[i]
		inserted++
		st := states[ev.Controller]
		if st == nil {
			st = &scpgate.ControllerState{Serial: ev.Controller}
			states[ev.Controller] = st
		}
		st.Apply(ev)
	}
	return inserted, states, nil
}

// appendEventArgs appends the eventCols parameters of ev's row.
func appendEventArgs(args []any, ev *scpgate.Event) ([]any, error) {
	doc, err := scpgate.EventDoc(ev)
	if err != nil {
		return args, err
	}
	var srcType sql.NullString
	var srcNum sql.NullInt64
	if ev.Source != nil {
		srcType = sql.NullString{String: ev.Source.Type, Valid: true}
		srcNum = sql.NullInt64{Int64: int64(ev.Source.Number), Valid: true}
	}
	return append(args, ev.ID, ev.Controller, string(ev.Kind), int64(ev.BootEpoch), int64(ev.Seq),
		ev.Time.UnixNano(), sqlstore.UnixNS(ev.Received), ev.Code, srcType, srcNum, string(doc)), nil
}

// queryIDs runs stmt, which returns ids, and adds them to ids.
func queryIDs(ctx context.Context, stmt *sql.Stmt, args []any, ids map[string]bool) error {
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids[id] = true
	}
	return rows.Err()
}

// writeStates merges the state set by a batch into the stored state, each
// value only where the batch's is newer.
func (s *Store) writeStates(ctx context.Context, tx *sql.Tx, states map[string]*scpgate.ControllerState) error {
	if len(states) == 0 {
		return nil
	}
	serials := make([]string, 0, len(states))
	for s := range states {
		serials = append(serials, s)
	}
	slices.Sort(serials)
	stmts := map[string]*sql.Stmt{}
	for _, q := range []string{lastSeenSQL, presenceSQL, infoSQL, pointSQL} {
		st := tx.StmtContext(ctx, s.stmts[q])
		defer st.Close()
		stmts[q] = st
	}
	for _, serial := range serials {
		c := states[serial]
		if _, err := stmts[lastSeenSQL].ExecContext(ctx, serial, sqlstore.UnixNS(c.LastSeen)); err != nil {
			return fmt.Errorf("update last seen of %s: %w", serial, err)
		}
		if p := c.PresenceAt; !p.IsZero() {
			rank := scpgate.PresenceRank(c.Online)
			if _, err := stmts[presenceSQL].ExecContext(ctx, serial, c.Online, c.Session, c.Reason,
				p.Event, int64(p.BootEpoch), int64(p.Seq), p.Time.UnixNano(), rank,
				int64(p.StreamSeq), int64(p.SessionRev)); err != nil {
				return fmt.Errorf("update presence of %s: %w", serial, err)
			}
		}
		if m := c.InfoAt; !m.IsZero() {
			if _, err := stmts[infoSQL].ExecContext(ctx, serial, c.Model, c.Firmware, c.Remote,
				m.Event, int64(m.BootEpoch), int64(m.Seq), m.Time.UnixNano(),
				int64(m.StreamSeq), int64(m.SessionRev)); err != nil {
				return fmt.Errorf("update info of %s: %w", serial, err)
			}
		}
		for _, u := range c.Points() {
			if _, err := stmts[pointSQL].ExecContext(ctx, serial, u.Type, int64(u.Number), u.Aspect, u.Code,
				u.At.Event, int64(u.At.BootEpoch), int64(u.At.Seq), u.At.Time.UnixNano(), int64(u.At.StreamSeq)); err != nil {
				return fmt.Errorf("update %s %d of %s: %w", u.Type, u.Number, serial, err)
			}
		}
	}
	return nil
}

// insertResults inserts the results not stored yet and returns how many.
func (s *Store) insertResults(ctx context.Context, tx *sql.Tx, results []scpgate.Result) (int, error) {
	if len(results) == 0 {
		return 0, nil
	}
	stmt := tx.StmtContext(ctx, s.stmts[insertResultSQL])
	defer stmt.Close()
	inserted := 0
	for i := range results {
		r := &results[i]
		doc, err := json.Marshal(r)
		if err != nil {
			return 0, fmt.Errorf("encode result %s: %w", r.ID, err)
		}
		res, err := stmt.ExecContext(ctx, r.ID, r.Controller, string(r.Type), string(r.Status), int64(r.Seq),
			sqlstore.UnixNS(r.Created), sqlstore.UnixNS(r.Finished), string(doc))
		if err != nil {
			return 0, fmt.Errorf("insert result %s: %w", r.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			inserted++
		}
	}
	return inserted, nil
}
