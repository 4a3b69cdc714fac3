package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/scpgate/scpgate/driver"
)

// targetStormRatio is the share of the raw publish rate a storm must
// reach (issue 15 raised it from 0.7).
const targetStormRatio = 0.9

// runStorm: p.Controllers controllers, each holding p.Buffered
// transactions, connect at once to one driver; the time until all are
// stored is compared with raw publishing of as many messages. Then a
// second driver joins on the same port (SO_REUSEPORT, as drivers share a
// load balancer), the first is frozen while every controller logs
// p.Buffered more (which stay unacknowledged in their logs), and is
// killed: the controllers reconnect to the survivor at once. The server's
// duplicate table grows with every message stored and its cost per
// message with it, so each storm is compared with the mean of a raw run
// just before and one just after it, a baseline in the same state (the
// run between the storms serves both).
func runStorm(ctx context.Context, e *env, p Params, r *Result) error {
	if e.o.Target != "" {
		return errors.New("storm starts and kills its own drivers: --target is not supported")
	}
	k, b := p.Controllers, p.Buffered
	total := k * b
	r.add("controllers", float64(k), "")
	r.add("buffered per controller", float64(b), "")
	rc, err := e.rawChild(ctx)
	if err != nil {
		return err
	}
	// raw publishes the storm's events straight to JetStream (label names
	// its subjects); it returns the whole-run rate and the CPU used by the
	// bench process and the publisher.
	raw := func(label string) (rawRun, error) {
		e.log.Info().Int("events", total).Int("controllers", k).Str("run", label).Msg("raw JetStream publishing")
		meter := startCPU(os.Getpid(), rc.pid)
		stopProf := e.phaseProfile("storm-raw-" + label)
		res, err := e.raw(ctx, rc, rawSpec{Controllers: k, Prefix: fmt.Sprintf("R%sx%s", e.run, label), Count: total,
			MaxPending: driver.DefaultMaxInflightTotal})
		stopProf()
		if err != nil {
			return rawRun{}, err
		}
		return rawRun{rate: res.Rate, used: meter.used()}, nil
	}

	d1, err := e.startDriver(ctx, "storm-1", "127.0.0.1:0", true)
	if err != nil {
		return err
	}
	target := d1.ready.Listen
	f, err := e.startFleet(ctx, fleetSpec{target: target, prefix: "S" + e.run + "x", controllers: k, ramp: p.Ramp, logCapacity: b + 1000})
	if err != nil {
		return err
	}
	if err := f.generate(ctx, b); err != nil { // logged offline: all buffered
		return err
	}

	// Phase 1: connect at once, between two raw runs.
	rawBefore1, err := raw("1")
	if err != nil {
		return err
	}
	e.log.Info().Int("controllers", k).Int("buffered", b).Msg("storm 1: connecting at once")
	stored0, err := e.storedTransactions(ctx)
	if err != nil {
		return err
	}
	meter := startCPU(e.stormPids(d1, f)...)
	stopProf := e.phaseProfile("storm-1")
	start := time.Now()
	if err := f.connect(ctx); err != nil {
		return err
	}
	if err := stormWait(ctx, f, total, start, r, "storm 1"); err != nil {
		return err
	}
	took := time.Since(start)
	stopProf()
	used := meter.used()
	stored1, err := e.storedTransactions(ctx)
	if err != nil {
		return err
	}
	// The raw run after storm 1 is also the one before storm 2.
	rawBetween, err := raw("2")
	if err != nil {
		return err
	}
	raw1 := stormBaseline(r, "storm 1", total, rawBefore1, rawBetween)
	r.add("storm 1: all stored in", took.Seconds(), "s")
	r.add("storm 1: stored", float64(total)/took.Seconds(), "events/s")
	r.atLeast("storm 1: stored / raw", float64(total)/took.Seconds()/raw1, "", targetStormRatio)
	stormCheck(r, "storm 1", int64(stored1-stored0), int64(total))
	stormCPU(r, "storm 1: CPU per 1,000 events", total, []string{"NATS server (bench process)", "driver", "simulated fleet"}, fleetSum(used))
	if st, err := d1.stats(ctx); err == nil && st.Driver.PublishErrors > 0 {
		r.note("storm 1: the driver republished %d events after %d failed publishes", st.Driver.Republished, st.Driver.PublishErrors)
	}

	// Phase 2: a second driver joins, the first is frozen, buffers fill,
	// the first is killed.
	if stored1, err = e.storedTransactions(ctx); err != nil { // the raw events added since
		return err
	}
	d2, err := e.startDriver(ctx, "storm-2", target, true)
	if err != nil {
		return err
	}
	if err := d1.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("stop driver 1: %w", err)
	}
	if err := poll(ctx, 5*time.Millisecond, func() (bool, error) {
		st, _, err := procStat(d1.pid)
		return st == 'T', err
	}); err != nil {
		return fmt.Errorf("wait for driver 1 to stop: %w", err)
	}
	if err := f.generate(ctx, b); err != nil {
		return err
	}
	e.log.Info().Int("controllers", k).Int("buffered", b).Msg("storm 2: killing driver 1")
	meter = startCPU(e.stormPids(d2, f)...)
	stopProf = e.phaseProfile("storm-2")
	start = time.Now()
	d1.kill()
	if err := stormWait(ctx, f, 2*total, start, r, "storm 2"); err != nil {
		return err
	}
	took = time.Since(start)
	stopProf()
	used = meter.used()
	stored2, err := e.storedTransactions(ctx)
	if err != nil {
		return err
	}
	rawAfter2, err := raw("3")
	if err != nil {
		return err
	}
	rc.stop(10 * time.Second)
	raw2 := stormBaseline(r, "storm 2", total, rawBetween, rawAfter2)
	r.add("storm 2: all stored in", took.Seconds(), "s")
	r.add("storm 2: stored", float64(total)/took.Seconds(), "events/s")
	r.atLeast("storm 2: stored / raw", float64(total)/took.Seconds()/raw2, "", targetStormRatio)
	stormCheck(r, "storm 2", int64(stored2-stored1), int64(total))
	stormCPU(r, "storm 2: CPU per 1,000 events", total, []string{"NATS server (bench process)", "driver", "simulated fleet"}, fleetSum(used))
	st, err := d2.stats(ctx)
	if err != nil {
		return err
	}
	if st.Driver.Sessions != k {
		r.note("driver 2 holds %d sessions after storm 2, %d expected", st.Driver.Sessions, k)
	}
	if st.Driver.PublishErrors > 0 {
		r.note("storm 2: driver 2 republished %d events after %d failed publishes", st.Driver.Republished, st.Driver.PublishErrors)
	}
	if st.Driver.EventsDuplicate > 0 {
		r.note("storm 2: JetStream absorbed %d events sent twice", st.Driver.EventsDuplicate)
	}
	r.note("storm 1: %s controllers log %s transactions each while offline, then all start within %.2f s (the sim's ramp); timed from the first dial to the last ack (every ack follows a PubAck)", formatValue(float64(k)), formatValue(float64(b)), float64(k)/p.Ramp)
	r.note("storm 2: driver 2 joins driver 1's port (SO_REUSEPORT); driver 1 is frozen (SIGSTOP), every controller logs %s more, driver 1 is killed (SIGKILL); timed from the kill to the last ack", formatValue(float64(b)))
	r.note("raw: just before and just after each storm (the run between the storms serves both), the same number of events, of the same mix and size, over as many controllers' subjects, from one connection of a process of its own (PublishMsgAsync with message ids, at most as many pending as the driver's in-flight budget), whole-run rate; a storm is compared with the mean of its two runs, as the server's cost per event grows with what it holds")
	r.note("lost = expected - stored transaction events when short; duplicates = stored - expected when over (counted in SCP_EVENTS by subject, presence excluded)")
	r.note(KnownFleetNote)
	return nil
}

// rawRun is one raw publish of a storm's baseline.
type rawRun struct {
	rate float64         // events/s, whole run
	used []time.Duration // CPU of the bench process and the publisher
}

// stormBaseline adds the rows of a storm's baseline, the raw runs before
// and after it, and returns its rate: their mean.
func stormBaseline(r *Result, what string, total int, before, after rawRun) float64 {
	rate := (before.rate + after.rate) / 2
	r.add(what+": raw JetStream publish", rate, "events/s")
	r.add(what+": raw JetStream publish, before", before.rate, "events/s")
	r.add(what+": raw JetStream publish, after", after.rate, "events/s")
	used := addDurations(addDurations(nil, before.used), after.used)
	stormCPU(r, what+": CPU per 1,000 events, raw", 2*total, []string{"NATS server (bench process)", "publisher"}, used)
	return rate
}

// stormPids lists the bench process, the driver and the fleet's children.
func (e *env) stormPids(d *driverProc, f *fleet) []int {
	pids := []int{os.Getpid(), d.pid}
	for _, k := range f.kids {
		pids = append(pids, k.pid)
	}
	return pids
}

// fleetSum folds the CPU times of the fleet's children (from index 2 on)
// into one.
func fleetSum(used []time.Duration) []time.Duration {
	out := append([]time.Duration(nil), used[:2]...)
	var sum time.Duration
	for _, u := range used[2:] {
		sum += u
	}
	return append(out, sum)
}

// stormCPU adds one row per process: CPU milliseconds per 1,000 events.
func stormCPU(r *Result, prefix string, total int, names []string, used []time.Duration) {
	for i, name := range names {
		r.add(prefix+": "+name, ms(used[i])/float64(total)*1000, "ms")
	}
}

// stormWait waits until the fleet has goal transactions acknowledged.
func stormWait(ctx context.Context, f *fleet, goal int, start time.Time, r *Result, what string) error {
	_, _, err := countUntil(ctx, 50*time.Millisecond, goal, func() (uint64, error) {
		rep, err := f.report(ctx)
		return rep.Report.Acked, err
	})
	if err != nil {
		return fmt.Errorf("%s after %s: %w", what, time.Since(start).Round(time.Millisecond), err)
	}
	rep, err := f.report(ctx)
	if err != nil {
		return err
	}
	if rep.Report.DroppedOverflow > 0 {
		r.note("%s: controllers overwrote %d unacknowledged transactions", what, rep.Report.DroppedOverflow)
	}
	return nil
}

// stormCheck adds the lost and duplicate rows: both must be zero.
func stormCheck(r *Result, what string, stored, expected int64) {
	lost, dup := max(expected-stored, 0), max(stored-expected, 0)
	r.atMost(what+": lost", float64(lost), "events", 0)
	r.atMost(what+": duplicates", float64(dup), "events", 0)
}
