package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/scpgate/scpgate/internal/backoff"
)

// Targets of the connections scenario.
const (
	targetSessions       = 19_000 // one driver, up to the open-file cap
	targetConnectRate    = 4_000  // new sessions per second
	targetBytesPerIdle   = 8 << 10
	connectionsSettle    = 5 * time.Second // after the ramp, before measuring memory
	connectionsSettleQck = time.Second
)

// runConnections ramps p.Controllers controllers into one driver and
// measures the connect rate, the driver's RSS per idle session and its CPU
// at idle (heartbeats only).
func runConnections(ctx context.Context, e *env, p Params, r *Result) error {
	n := p.Controllers
	target := e.o.Target
	var d *driverProc
	var rss0 int64
	if target == "" {
		// The driver command as deployed, alone, before the bench's own.
		if err := measureEmptyDriver(ctx, e, r); err != nil {
			return err
		}
		var err error
		if d, err = e.startDriver(ctx, "conn-1", "127.0.0.1:0", false); err != nil {
			return err
		}
		target = d.ready.Listen
		// The empty driver: streams ensured, listening, watchers running,
		// its RSS settled (as for the empty driver row).
		if rss0, _, err = settledRSS(ctx, d.pid); err != nil {
			return err
		}
	}
	f, err := e.startFleet(ctx, fleetSpec{target: target, prefix: "C" + e.run + "x", controllers: n, ramp: p.Ramp, logCapacity: 64})
	if err != nil {
		return err
	}
	e.log.Info().Int("controllers", n).Str("target", target).Int("procs", len(f.kids)).Float64("ramp", p.Ramp).Msg("connecting")

	// Connect rate: from the first dial to the last session established,
	// as the driver counts them (or the fleet, without a driver of ours).
	established := func() (int, error) {
		if d != nil {
			st, err := d.stats(ctx)
			return st.Driver.Sessions, err
		}
		rep, err := f.report(ctx)
		return rep.Report.Connected, err
	}
	overflows := listenOverflows()
	start := time.Now()
	if err := f.connect(ctx); err != nil {
		return err
	}
	var up int
	rampCtx, cancel := context.WithTimeout(ctx, time.Duration(float64(n)/p.Ramp*float64(time.Second))+2*time.Minute)
	defer cancel()
	err = poll(rampCtx, 20*time.Millisecond, func() (bool, error) {
		var err error
		up, err = established()
		return up >= n, err
	})
	elapsed := time.Since(start)
	r.add("controllers", float64(n), "")
	if err != nil {
		r.add("sessions established", float64(up), "")
		return fmt.Errorf("ramp: %d of %d sessions after %s: %w", up, n, elapsed.Round(time.Millisecond), err)
	}
	if n >= targetSessions {
		r.atLeast("sessions established", float64(up), "", targetSessions)
	} else {
		r.add("sessions established", float64(up), "")
	}
	r.atLeast("connect rate", float64(n)/elapsed.Seconds(), "sessions/s", targetConnectRate)
	r.add("ramp time", elapsed.Seconds(), "s")
	if after := listenOverflows(); overflows >= 0 && after > overflows {
		r.note("the kernel dropped %d connects on a full listen queue during the ramp (clients retry after a second): the driver's accept loop fell behind", after-overflows)
	}

	settle := connectionsSettle
	if e.o.Quick {
		settle = connectionsSettleQck
	}
	if err := backoff.Sleep(ctx, settle); err != nil {
		return err
	}
	if d == nil {
		r.note("driver started outside the bench (--target): its memory and CPU are not measured")
		return connectionsFleetNotes(ctx, f, r)
	}
	cpu, err := cpuPercent(d.pid, p.Window, func(w time.Duration) error { return backoff.Sleep(ctx, w) })
	if err != nil {
		return err
	}
	rssN, err := rssBytes(d.pid)
	if err != nil {
		return err
	}
	st, err := d.stats(ctx)
	if err != nil {
		return err
	}
	if st.Driver.Sessions != n {
		r.note("%d sessions at the end of the idle window, %d expected", st.Driver.Sessions, n)
	}
	r.atMost("driver RSS per idle session", float64(rssN-rss0)/float64(n), "bytes", targetBytesPerIdle)
	r.add("driver RSS, empty", float64(rss0)/(1<<20), "MiB")
	r.add(fmt.Sprintf("driver RSS, %d idle sessions", n), float64(rssN)/(1<<20), "MiB")
	r.add("driver CPU at idle", cpu, "% of a core")
	r.add("heap in use per session", float64(st.HeapInuse)/float64(n), "bytes")
	r.add("goroutine stacks per session", float64(st.StackInuse)/float64(n), "bytes")
	r.add("goroutines per session", float64(st.Goroutines)/float64(n), "")
	var gc driverStats
	if err := d.call(ctx, time.Minute, childReq{Op: "gc"}, &gc); err != nil {
		return err
	}
	r.add("driver RSS per idle session after GC", float64(gc.RSS-rss0)/float64(n), "bytes")
	r.note("RSS per idle session = (VmRSS with %d idle sessions - VmRSS of the empty driver) / %d, read %s after the ramp and a %s CPU window; heartbeat %s",
		n, n, settle, p.Window, defaultHeartbeat)
	r.note("the 'after GC' row is read after runtime.GC and debug.FreeOSMemory in the driver; heap and stack rows are Go runtime figures after the window")
	r.note(KnownFleetNote)
	return connectionsFleetNotes(ctx, f, r)
}

// connectionsFleetNotes notes what the fleet saw go wrong, if anything.
func connectionsFleetNotes(ctx context.Context, f *fleet, r *Result) error {
	rep, err := f.report(ctx)
	if err != nil {
		return err
	}
	if rep.Report.Reconnects > 0 || rep.Report.Rejected > 0 {
		r.note("the fleet reconnected %d times and was rejected %d times", rep.Report.Reconnects, rep.Report.Rejected)
	}
	if rep.Report.Connected != rep.Report.Controllers {
		return fmt.Errorf("%w: %d of %d controllers connected at the end", errIncomplete, rep.Report.Connected, rep.Report.Controllers)
	}
	return nil
}
