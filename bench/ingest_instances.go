package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/postgres"
)

// ingestInstanceCounts are the numbers of ingest services that share one
// consumer in the instance rows.
var ingestInstanceCounts = []int{1, 2, 4}

// ingestInstances measures n ingest services sharing one new durable
// consumer as they read the whole of SCP_EVENTS into a new, empty
// PostgreSQL schema, each with its own connection pool as separate
// processes would have. They run in this process, so they share its CPU
// with NATS: the figure shows whether the shared consumer and the
// database let instances add up, not what n machines would do.
func ingestInstances(ctx context.Context, e *env, p Params, r *Result, n int) error {
	dsn, drop, err := pgSchema(ctx, p.Postgres, "scpgate_bench_"+e.run+"_x"+strconv.Itoa(n))
	if err != nil {
		return err
	}
	defer drop()
	info, err := e.h.Events.Info(ctx)
	if err != nil {
		return fmt.Errorf("events stream info: %w", err)
	}
	backlog := info.State.Msgs
	svcs := make([]*ingest.Service, n)
	for i := range svcs {
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			return err
		}
		defer st.Close()
		svcs[i], err = ingest.New(ingest.Options{JS: e.js, Store: st, Durable: "scpgate-bench-pg" + strconv.Itoa(n) + "-" + e.run,
			Log: e.log.With().Str("role", "ingest").Int("instance", i).Logger()})
		if err != nil {
			return err
		}
	}
	written := func() uint64 {
		var sum uint64
		for _, s := range svcs {
			st := s.Stats()
			sum += st.Events + st.Duplicates + st.Invalid
		}
		return sum
	}
	e.log.Info().Int("instances", n).Uint64("backlog", backlog).Msg("ingest: instances sharing the consumer")
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	cpu := startIngestCPU()
	start := time.Now()
	for _, s := range svcs {
		wg.Go(func() {
			if err := s.Run(runCtx); err != nil {
				e.log.Error().Err(err).Msg("ingest stopped")
			}
		})
	}
	if _, _, err := countUntil(ctx, 20*time.Millisecond, int(backlog), func() (uint64, error) { return written(), nil }); err != nil {
		return fmt.Errorf("postgres, %d instances: consume backlog: %w", n, err)
	}
	elapsed := time.Since(start)
	self, pg := cpu.used()
	label := "postgres, " + strconv.Itoa(n) + " instances on one consumer"
	if n == 1 {
		label = "postgres, 1 instance on one consumer"
	}
	r.add(label+": rows/s (backlog of "+formatValue(float64(backlog))+")", float64(backlog)/elapsed.Seconds(), "rows/s")
	r.add(label+": CPU per 1,000 rows, this process", float64(self.Microseconds())/float64(backlog), "ms")
	r.add(label+": CPU per 1,000 rows, local PostgreSQL processes", float64(pg.Microseconds())/float64(backlog), "ms")
	return nil
}
