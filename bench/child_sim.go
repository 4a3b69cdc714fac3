package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"time"

	"github.com/scpgate/scpgate/sim"
)

// simArgs are the flags of a sim child.
type simArgs struct {
	target, prefix, localAddr string
	controllers, first        int
	logCapacity               int
	ramp, rate                float64
	latency                   bool
}

func (a simArgs) args(logLevel string) []string {
	out := []string{roleSim, "--log-level", logLevel, "--target", a.target, "--prefix", a.prefix,
		"--controllers", fmt.Sprint(a.controllers), "--first", fmt.Sprint(a.first),
		"--log-capacity", fmt.Sprint(a.logCapacity), "--ramp", fmt.Sprint(a.ramp), "--rate", fmt.Sprint(a.rate)}
	if a.localAddr != "" {
		out = append(out, "--local-addr", a.localAddr)
	}
	if a.latency {
		out = append(out, "--latency")
	}
	return out
}

// simReport is a sim child's answer to "report".
type simReport struct {
	Report   sim.Report            `json:"report"`
	Sessions uint64                `json:"sessions"` // sessions established, all controllers, since start
	Latency  sim.HistogramSnapshot `json:"latency"`  // with --latency: transaction written to its ack
	Pending  int                   `json:"pending"`  // scheduled follow-ups
}

// add sums o into r.
func (r *simReport) add(o simReport) {
	r.Report.Add(o.Report)
	r.Sessions += o.Sessions
	r.Latency.Merge(o.Latency)
	r.Pending += o.Pending
}

// simChild runs a slice of the fleet. Its controllers start on "connect";
// "generate" logs N transactions in each, "rate" sets the event mix,
// "report" sums their stats, "wait-acked" waits until nothing is
// unacknowledged.
func simChild(fs *flag.FlagSet) func(context.Context, *childServer) error {
	var a simArgs
	fs.StringVar(&a.target, "target", "", "host:port of the driver")
	fs.StringVar(&a.prefix, "prefix", sim.DefaultSerialPrefix, "serial prefix")
	fs.StringVar(&a.localAddr, "local-addr", "", "source IP to dial from")
	fs.IntVar(&a.controllers, "controllers", 1, "controllers in this process")
	fs.IntVar(&a.first, "first", 0, "index of the first controller")
	fs.IntVar(&a.logCapacity, "log-capacity", sim.DefaultLogCapacity, "transaction log capacity")
	fs.Float64Var(&a.ramp, "ramp", 20000, "controllers started per second")
	fs.Float64Var(&a.rate, "rate", 0, "transactions per second per controller")
	fs.BoolVar(&a.latency, "latency", false, "measure transaction-to-ack latency")
	return func(ctx context.Context, srv *childServer) error {
		var hist *sim.Histogram
		if a.latency {
			hist = new(sim.Histogram)
		}
		fleet := sim.NewFleet(sim.FleetConfig{
			Controller: sim.Config{
				Target: a.target, LogCapacity: a.logCapacity, Rate: a.rate, LocalAddr: a.localAddr,
				Log: srv.log, AckLatency: hist,
			},
			Count: a.controllers, SerialPrefix: a.prefix, FirstIndex: a.first, Ramp: a.ramp,
		})
		runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
		var wg sync.WaitGroup
		started := false
		defer func() {
			stop()
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				srv.log.Warn().Msg("controllers did not stop within 10s")
			}
		}()
		return srv.serve(ctx, struct{}{}, func(ctx context.Context, r childReq) (any, error) {
			switch r.Op {
			case "connect":
				if started {
					return nil, errors.New("already connected")
				}
				started = true
				wg.Go(func() {
					if err := fleet.Run(runCtx); err != nil {
						srv.log.Error().Err(err).Msg("fleet stopped")
					}
				})
				return nil, nil
			case "generate":
				for _, c := range fleet.Controllers() {
					c.Generate(r.N)
				}
				return nil, nil
			case "rate":
				fleet.SetRate(r.Rate)
				return nil, nil
			case "latency-reset":
				if hist != nil {
					hist.Reset()
				}
				return nil, nil
			case "report":
				return reportOf(fleet, hist), nil
			case "wait-acked":
				wctx, cancel := context.WithTimeout(ctx, r.Timeout)
				defer cancel()
				return reportOf(fleet, hist), fleet.WaitAcked(wctx)
			}
			return nil, fmt.Errorf("unknown op %q", r.Op)
		})
	}
}

func reportOf(f *sim.Fleet, hist *sim.Histogram) simReport {
	var r simReport
	for _, c := range f.Controllers() {
		st := c.Stats()
		r.Report.AddStats(st)
		r.Sessions += st.Sessions
		r.Pending += c.Pending()
	}
	if hist != nil {
		r.Latency = hist.Snapshot()
	}
	return r
}
