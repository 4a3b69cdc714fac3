// Package sqlstore holds what the two SQL stores (sqlite and postgres)
// share: how their embedded migrations are found and ordered, the shape of
// the event history query, and the columns of a controller's state and
// its points. Each store keeps its own SQL dialect, driver and
// transactions; only the parts that must not drift apart live here.
package sqlstore

import (
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/scpgate/scpgate"
)

// Migration is one embedded schema change.
type Migration struct {
	Version int
	Name    string // file name, NNNN_name.sql
	SQL     string
}

// LoadMigrations returns the migrations under migrations/ in fsys, by
// version. Their files are named NNNN_name.sql; two files of one version
// are an error.
func LoadMigrations(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var out []Migration
	for _, n := range names {
		base := strings.TrimPrefix(n, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name is not NNNN_name.sql", base)
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", base, err)
		}
		out = append(out, Migration{Version: v, Name: base, SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", out[i-1].Name, out[i].Name, out[i].Version)
		}
	}
	return out, nil
}

// Placeholder returns the bind parameter of the n-th argument (from 1) in
// a store's dialect: "?" for SQLite, "$n" for PostgreSQL.
type Placeholder func(n int) string

// Question is the SQLite placeholder.
func Question(int) string { return "?" }

// Dollar is the PostgreSQL placeholder.
func Dollar(n int) string { return "$" + strconv.Itoa(n) }

// EventsQuery builds the SELECT of one page of the event history for a
// normalized q (see scpgate.EventQuery.Normalize) and its decoded cursor:
// the filters, the (time, id) order and a limit of one more than the
// page, so that the caller knows whether a next page exists. doc is the
// expression that selects an event's JSON document as text.
func EventsQuery(q *scpgate.EventQuery, cur *scpgate.Cursor, doc string, ph Placeholder) (string, []any) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return ph(len(args))
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
	b.WriteString("SELECT " + doc + " FROM events")
	if len(where) > 0 {
		b.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	b.WriteString(" ORDER BY time_ns " + dir + ", id " + dir + " LIMIT " + arg(q.Limit+1))
	return b.String(), args
}

// ControllerColumns is the select list of a controllers row that
// ControllerRow scans.
const ControllerColumns = `last_seen_ns, online, session, reason,
	p_event, p_epoch, p_seq, p_time_ns, p_stream, p_rev,
	model, firmware, remote, i_event, i_epoch, i_seq, i_time_ns, i_stream, i_rev`

// ControllerRow receives a controllers row selected with
// ControllerColumns.
type ControllerRow struct {
	lastSeen, pTime, iTime       int64
	online                       bool
	pEvent, iEvent               string
	pEpoch, pSeq, iEpoch, iSeq   int64
	pStream, pRev, iStream, iRev int64
}

// Dest returns the scan destinations of the row, in ControllerColumns
// order; the text columns go straight into c.
func (r *ControllerRow) Dest(c *scpgate.ControllerState) []any {
	return []any{&r.lastSeen, &r.online, &c.Session, &c.Reason,
		&r.pEvent, &r.pEpoch, &r.pSeq, &r.pTime, &r.pStream, &r.pRev,
		&c.Model, &c.Firmware, &c.Remote,
		&r.iEvent, &r.iEpoch, &r.iSeq, &r.iTime, &r.iStream, &r.iRev}
}

// Apply copies the scanned row into c.
func (r *ControllerRow) Apply(c *scpgate.ControllerState) {
	c.Online = r.online
	c.LastSeen = FromNS(r.lastSeen)
	if r.pEvent != "" {
		c.PresenceAt = scpgate.Mark{Event: r.pEvent, BootEpoch: uint32(r.pEpoch), Seq: uint32(r.pSeq),
			StreamSeq: uint64(r.pStream), SessionRev: uint64(r.pRev), Time: FromNS(r.pTime)}
	}
	if r.iEvent != "" {
		c.InfoAt = scpgate.Mark{Event: r.iEvent, BootEpoch: uint32(r.iEpoch), Seq: uint32(r.iSeq),
			StreamSeq: uint64(r.iStream), SessionRev: uint64(r.iRev), Time: FromNS(r.iTime)}
	}
}

// PointColumns is the select list of a point_state row that PointRow
// scans.
const PointColumns = `type, number, aspect, code, event, boot_epoch, seq, time_ns, stream_seq`

// PointRow receives a point_state row selected with PointColumns.
type PointRow struct {
	u                           scpgate.PointUpdate
	num, epoch, seq, ns, stream int64
}

// Dest returns the scan destinations of the row, in PointColumns order.
func (r *PointRow) Dest() []any {
	return []any{&r.u.Type, &r.num, &r.u.Aspect, &r.u.Code, &r.u.At.Event, &r.epoch, &r.seq, &r.ns, &r.stream}
}

// Update returns the scanned row as a point update.
func (r *PointRow) Update() scpgate.PointUpdate {
	u := r.u
	u.Number, u.At.BootEpoch, u.At.Seq, u.At.Time = uint16(r.num), uint32(r.epoch), uint32(r.seq), FromNS(r.ns)
	u.At.StreamSeq = uint64(r.stream)
	return u
}

// PointNewer is the SQL condition under which a point_state row (alias
// old) is replaced by the proposed one (alias new): the rule of
// scpgate.Mark.After. Both dialects accept it.
func PointNewer(newT, old string) string {
	return `(` + newT + `.boot_epoch = ` + old + `.boot_epoch AND ` + newT + `.seq > ` + old + `.seq)
		OR (` + newT + `.boot_epoch <> ` + old + `.boot_epoch AND (` + newT + `.stream_seq, ` + newT + `.boot_epoch) > (` + old + `.stream_seq, ` + old + `.boot_epoch))`
}

// PresenceNewer is the SQL condition under which the presence register
// of a controllers row (alias c) is replaced by the proposed one (alias u,
// with columns p_rev, p_rank, p_time_ns, p_event): the rule of
// scpgate.PresenceAfter. collate is appended to u.p_event (PostgreSQL
// needs COLLATE "C" to compare ids bytewise).
func PresenceNewer(collate string) string {
	return `c.p_event = '' OR u.p_rev > c.p_rev OR (u.p_rev = c.p_rev AND (
		(u.p_rev > 0 AND (u.p_rank, u.p_time_ns, u.p_event` + collate + `) > (c.p_rank, c.p_time_ns, c.p_event))
		OR (u.p_rev = 0 AND (u.p_time_ns, u.p_rank, u.p_event` + collate + `) > (c.p_time_ns, c.p_rank, c.p_event))))`
}

// InfoNewer is the SQL condition under which model, firmware and remote
// of a controllers row (alias c) are replaced by those of the proposed
// online event (alias u): scpgate.PresenceAfter between two online events.
func InfoNewer(collate string) string {
	return `c.i_event = '' OR u.i_rev > c.i_rev OR (u.i_rev = c.i_rev AND (u.i_time_ns, u.i_event` + collate + `) > (c.i_time_ns, c.i_event))`
}

// Rows is what ReadPoints needs of a result set: *sql.Rows and pgx.Rows
// both have it.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ReadPoints applies every point_state row of rows (selected with
// PointColumns) to c, the state of controller serial.
func ReadPoints(rows Rows, c *scpgate.ControllerState) error {
	for rows.Next() {
		var p PointRow
		if err := rows.Scan(p.Dest()...); err != nil {
			return fmt.Errorf("scan point of %s: %w", c.Serial, err)
		}
		c.ApplyPoint(p.Update())
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read points of %s: %w", c.Serial, err)
	}
	return nil
}

// UnixNS returns t in Unix nanoseconds, 0 for the zero time.
func UnixNS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromNS is the inverse of UnixNS: 0 is the zero time, others UTC.
func FromNS(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
