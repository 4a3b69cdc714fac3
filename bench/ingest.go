package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/postgres"
	"github.com/scpgate/scpgate/sqlite"
)

// Targets of issue 15 for reading a backlog, in rows/s, on two free
// cores.
const (
	targetIngestSQLite   = 30_000
	targetIngestPostgres = 60_000
)

// ingestControllers is the number of controllers the ingest events come
// from.
const ingestControllers = 1000

// runIngest measures, for SQLite and (when a DSN is given) PostgreSQL,
// how fast ingest empties a stream into an empty store, and how far it
// lags behind a steady event rate.
func runIngest(ctx context.Context, e *env, p Params, r *Result) error {
	dir, err := os.MkdirTemp("", "scpgate-bench-ingest-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(filepath.Join(dir, "bench.db"))
	if err != nil {
		return err
	}
	err = ingestStore(ctx, e, p, r, "sqlite", st)
	st.Close()
	if err != nil {
		return err
	}
	if p.Postgres == "" {
		r.note("PostgreSQL skipped: no --postgres and no SCPGATE_TEST_POSTGRES_DSN")
	} else {
		dsn, drop, err := pgSchema(ctx, p.Postgres, "scpgate_bench_"+e.run)
		if err != nil {
			return err
		}
		defer drop()
		pg, err := postgres.Open(ctx, dsn)
		if err != nil {
			return err
		}
		err = ingestStore(ctx, e, p, r, "postgres", pg)
		pg.Close()
		if err != nil {
			return err
		}
		for _, n := range ingestInstanceCounts {
			if err := ingestInstances(ctx, e, p, r, n); err != nil {
				return err
			}
		}
		r.note("instances: 1, 2 and 4 ingest services, each with its own connection pool, share a new durable consumer and read the whole of SCP_EVENTS (the same backlog each time) into a new schema; they run in this process and share its CPU (and the machine's) with NATS and PostgreSQL")
	}
	r.note("rows/s: %s events of %s controllers are published first; then a new durable consumer reads all of SCP_EVENTS (the row names its size: the second store also reads what the first one's run published) into an empty store (ingest's defaults: batches of %s, no scp_state updates), timed to the last row written", formatValue(float64(p.Events)), formatValue(ingestControllers), formatValue(ingest.DefaultBatch))
	r.note("CPU per 1,000 rows: CPU time used while the backlog was read, by this process (ingest, and NATS unless --nats) and by the processes named postgres on this machine (all of them: other users of the server count too), per 1,000 rows; less sensitive than rows/s to what else runs on the machine")
	r.note("lag: events published at %s/s for %s while ingest runs; pending = published - written, sampled every 100 ms; seconds behind = ingest's own measure (age of the oldest unacknowledged message)", formatValue(p.Rate), p.Duration)
	return nil
}

// ingestStore runs both measurements on one store.
func ingestStore(ctx context.Context, e *env, p Params, r *Result, name string, st scpgate.Store) error {
	// Fill the stream, then let a fresh consumer empty it.
	spec := rawSpec{Controllers: ingestControllers, Prefix: "I" + e.run + name[:1], Count: p.Events, Epoch: uint32(time.Now().Unix())}
	e.log.Info().Str("store", name).Int("events", p.Events).Msg("ingest: filling the stream")
	if _, err := rawPublish(ctx, e.nc, spec); err != nil {
		return err
	}
	info, err := e.h.Events.Info(ctx)
	if err != nil {
		return fmt.Errorf("events stream info: %w", err)
	}
	backlog := info.State.Msgs
	svc, err := ingest.New(ingest.Options{JS: e.js, Store: st, Durable: "scpgate-bench-" + name + "-" + e.run,
		LagInterval: 500 * time.Millisecond, Log: e.log.With().Str("role", "ingest").Logger()})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	written := func() uint64 { s := svc.Stats(); return s.Events + s.Duplicates + s.Invalid }
	cpu := startIngestCPU()
	start := time.Now()
	wg.Go(func() {
		if err := svc.Run(runCtx); err != nil {
			e.log.Error().Err(err).Msg("ingest stopped")
		}
	})
	if _, _, err := countUntil(ctx, 20*time.Millisecond, int(backlog), func() (uint64, error) { return written(), nil }); err != nil {
		return fmt.Errorf("%s: consume backlog: %w", name, err)
	}
	elapsed := time.Since(start)
	self, pg := cpu.used()
	goal := float64(targetIngestSQLite)
	if name == "postgres" {
		goal = targetIngestPostgres
	}
	r.atLeast(name+": rows/s (backlog of "+formatValue(float64(backlog))+")", float64(backlog)/elapsed.Seconds(), "rows/s", goal)
	r.add(name+": CPU per 1,000 rows, this process", float64(self.Microseconds())/float64(backlog), "ms")
	if name == "postgres" {
		r.add(name+": CPU per 1,000 rows, local PostgreSQL processes", float64(pg.Microseconds())/float64(backlog), "ms")
	}

	// Lag at a steady rate.
	e.log.Info().Str("store", name).Float64("rate", p.Rate).Dur("duration", p.Duration).Msg("ingest: lag at a steady rate")
	base := written()
	count := int(p.Rate * p.Duration.Seconds())
	spec = rawSpec{Controllers: ingestControllers, Prefix: "L" + e.run + name[:1], Count: count, Rate: p.Rate, Epoch: uint32(time.Now().Unix())}
	pubDone := make(chan error, 1)
	pubStart := time.Now()
	go func() { _, err := rawPublish(ctx, e.nc, spec); pubDone <- err }()
	var maxPending, sumPending float64
	var samples int
	var maxBehind float64
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for publishing := true; publishing; {
		select {
		case err := <-pubDone:
			if err != nil {
				return err
			}
			publishing = false
		case <-t.C:
			published := p.Rate * time.Since(pubStart).Seconds()
			pending := max(0, min(published, float64(count))-float64(written()-base))
			maxPending = max(maxPending, pending)
			sumPending += pending
			samples++
			if l := svc.Lag(); l.Events.Updated.After(pubStart) { // not a measure of the backlog before
				maxBehind = max(maxBehind, l.SecondsBehind)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	catchStart := time.Now()
	if _, _, err := countUntil(ctx, 20*time.Millisecond, count, func() (uint64, error) { return written() - base, nil }); err != nil {
		return fmt.Errorf("%s: catch up: %w", name, err)
	}
	r.add(name+": lag at "+formatValue(p.Rate)+" events/s, mean", sumPending/float64(max(samples, 1)), "events")
	r.add(name+": lag at "+formatValue(p.Rate)+" events/s, max", maxPending, "events")
	r.add(name+": seconds behind, max", maxBehind, "s")
	r.add(name+": caught up after the last publish", time.Since(catchStart).Seconds(), "s")
	return nil
}

// pgSchema creates schema in the database of dsn and returns a DSN whose
// search_path is that schema, and a function that drops it.
func pgSchema(ctx context.Context, dsn, schema string) (string, func(), error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	schema += "_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", nil, fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("create schema %s: %w", schema, err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, dsn); err == nil {
			_, _ = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(ctx)
		}
	}
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " search_path=" + schema, drop, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		drop()
		return "", nil, fmt.Errorf("parse postgres dsn: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}
