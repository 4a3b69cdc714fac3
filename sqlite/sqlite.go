// Package sqlite is the embedded scpgate.Store: one SQLite file in WAL
// mode (modernc.org/sqlite, no cgo). It is the default store of
// `scpgate dev` and of a single ingest instance; several ingest processes
// sharing one history use package postgres instead.
//
// Writes go through one connection (SQLite has one writer at a time) in
// IMMEDIATE transactions, one per batch, with statements prepared once;
// synchronous=NORMAL: a commit survives a crash of the process, and may be
// lost with the last ones before a power loss (ingest then writes it
// again from the stream, see docs/operations.md). Reads use a small pool of read-only connections
// that WAL lets run beside the writer. The schema is created and migrated by
// Open from migrations embedded in the binary.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/internal/sqlstore"
)

var (
	_ scpgate.Store        = (*Store)(nil)
	_ scpgate.SerialWriter = (*Store)(nil)
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a connection waits for a lock held by another
// connection or process before failing with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// writerPragmas tune the writer connection for batches of thousands of
// rows: a 64 MiB page cache and 256 MiB of memory-mapped reads, so that
// index pages are not read again from the file for every row; a WAL
// checkpointed every 16,000 pages (64 MiB) instead of 1,000, so that a
// checkpoint writes each hot index page once for many batches (the WAL
// file is truncated back to 128 MiB after one); and temporary data (the
// statement journal of a multi-row INSERT) in memory.
const writerPragmas = "&_pragma=cache_size(-65536)&_pragma=mmap_size(268435456)" +
	"&_pragma=wal_autocheckpoint(16000)&_pragma=journal_size_limit(134217728)&_pragma=temp_store(MEMORY)"

// readConns is the number of read-only connections.
const readConns = 4

// Store is the SQLite scpgate.Store. Open it with Open.
type Store struct {
	w     *sql.DB              // one connection: the writer
	r     *sql.DB              // read-only connections
	stmts map[string]*sql.Stmt // write statements by SQL text, prepared on w
}

// ErrBadPath is returned by Open for a path it cannot pass to SQLite.
var ErrBadPath = errors.New("sqlite: bad database path")

// Open opens (creating if needed) the database at path, switches it to WAL
// mode and applies the migrations it lacks.
func Open(path string) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, ":memory:") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("%w: %q (want a plain file path)", ErrBadPath, path)
	}
	common := "_pragma=busy_timeout(" + strconv.Itoa(int(busyTimeout/time.Millisecond)) + ")" +
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)"
	w, err := sql.Open("sqlite", path+"?"+common+"&_pragma=journal_mode(WAL)&_txlock=immediate"+writerPragmas)
	if err != nil {
		return nil, fmt.Errorf("open sqlite writer %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := migrate(w); err != nil {
		w.Close()
		return nil, fmt.Errorf("migrate sqlite %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", path+"?"+common+"&_pragma=query_only(ON)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite readers %s: %w", path, err)
	}
	r.SetMaxOpenConns(readConns)
	r.SetMaxIdleConns(readConns)
	if err := r.Ping(); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("ping sqlite readers %s: %w", path, err)
	}
	s := &Store{w: w, r: r}
	if err := s.prepare(); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	return s, nil
}

// SerialWrites implements scpgate.SerialWriter: batches are written
// through one connection.
func (s *Store) SerialWrites() {}

// Close closes both connection pools.
func (s *Store) Close() error {
	var errs []error
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(append(errs, s.r.Close(), s.w.Close())...)
}

// migrate applies the missing migrations in one IMMEDIATE transaction, so
// two processes opening the same file do not both apply them.
func migrate(db *sql.DB) error {
	ms, err := sqlstore.LoadMigrations(migrations)
	if err != nil {
		return err
	}
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_ns INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("scan schema_migrations: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("apply %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_ns) VALUES (?, ?, ?)`,
			m.Version, m.Name, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("record %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
