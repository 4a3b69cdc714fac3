package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/internal/backoff"
	"github.com/scpgate/scpgate/sim"
)

// targetCommandP99 is the round trip the 99th percentile must stay under.
const targetCommandP99 = 10 * time.Millisecond

// commandWait is the ?wait of every submission.
const commandWait = 5 * time.Second

// runCommands submits commands over HTTP with ?wait at a steady rate to
// random controllers of the fleet and measures the round trip from the
// scheduled submission to the response carrying the result.
func runCommands(ctx context.Context, e *env, p Params, r *Result) error {
	m := p.Controllers
	target := e.o.Target
	pids := []int{os.Getpid()}
	var drv *driverProc
	if target == "" {
		d, err := e.startDriver(ctx, "commands-1", "127.0.0.1:0", false)
		if err != nil {
			return err
		}
		drv = d
		target = d.ready.Listen
		pids = append(pids, d.pid)
	}
	f, err := e.startFleet(ctx, fleetSpec{target: target, prefix: "K" + e.run + "x", controllers: m, ramp: p.Ramp, logCapacity: 1000})
	if err != nil {
		return err
	}
	if err := f.connect(ctx); err != nil {
		return err
	}
	if err := waitConnected(ctx, f, m); err != nil {
		return err
	}
	// Let the driver finish what every new session starts with (presence,
	// the first look for pending commands).
	if err := backoff.Sleep(ctx, settleAfterRamp(e.o.Quick, m)); err != nil {
		return err
	}

	cmdr, err := commander.New(commander.Options{JS: e.js, NC: e.nc, Log: e.log.With().Str("role", "commander").Logger()})
	if err != nil {
		return err
	}
	defer cmdr.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("commander listen: %w", err)
	}
	hs := &http.Server{Handler: cmdr.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: commandWait + 10*time.Second, Transport: &http.Transport{
		MaxIdleConns: 2048, MaxIdleConnsPerHost: 2048, IdleConnTimeout: time.Minute,
	}}
	defer client.CloseIdleConnections()

	serial := func(i int) string { return sim.FleetConfig{SerialPrefix: "K" + e.run + "x"}.Serial(i) }
	warm := min(2*time.Second, p.Duration/4)
	e.log.Info().Float64("rate", p.Rate).Dur("duration", p.Duration).Int("controllers", m).Msg("commands: warming up")
	if _, err := submitAtRate(ctx, client, base, serial, m, p.Rate, warm); err != nil {
		return err
	}
	e.log.Info().Msg("commands: measuring")
	for _, k := range f.kids {
		pids = append(pids, k.pid)
	}
	meter := startCPU(pids...)
	start := time.Now()
	st, err := submitAtRate(ctx, client, base, serial, m, p.Rate, p.Duration)
	if err != nil {
		return err
	}
	used, wall := meter.used(), time.Since(start)
	r.add("controllers", float64(m), "")
	r.add("commands submitted", float64(st.sent), "")
	r.add("rate achieved", float64(st.sent)/p.Duration.Seconds(), "commands/s")
	r.add("results ok", float64(st.ok), "")
	r.add("failed or timed out", float64(st.failed), "")
	r.add("round trip p50", ms(st.lat.Quantile(0.50)), "ms")
	r.add("round trip p95", ms(st.lat.Quantile(0.95)), "ms")
	r.atMost("round trip p99", ms(st.lat.Quantile(0.99)), "ms", ms(targetCommandP99))
	r.add("round trip max", ms(st.lat.Quantile(1)), "ms")
	pct := func(d time.Duration) float64 { return 100 * d.Seconds() / wall.Seconds() }
	r.add("CPU, bench process (NATS server, commander, HTTP client)", pct(used[0]), "% of a core")
	var fleetCPU time.Duration
	for _, u := range used[len(pids)-len(f.kids):] {
		fleetCPU += u
	}
	if len(pids) > 1+len(f.kids) {
		r.add("CPU, driver", pct(used[1]), "% of a core")
	}
	r.add("CPU, simulated fleet", pct(fleetCPU), "% of a core")
	if drv != nil {
		addDriverCommandStats(ctx, drv, r)
	}
	r.note("POST /v1/controllers/{serial}/commands?wait=%s with a card_delete to a random controller, open loop at %s/s for %s after a %s warm-up; latency from the scheduled send to the response with the result", commandWait, formatValue(p.Rate), p.Duration, warm)
	r.note("commander and HTTP client in the bench process with the embedded NATS server; driver and fleet in child processes")
	if st.failed > 0 {
		r.note("%d commands failed; first error: %s", st.failed, st.firstErr)
	}
	return nil
}

// addDriverCommandStats adds the driver's command delivery counters that
// explain a latency figure. A driver that does not answer adds nothing: the
// figures above stand without them.
func addDriverCommandStats(ctx context.Context, d *driverProc, r *Result) {
	st, err := d.stats(ctx)
	if err != nil {
		return
	}
	c := st.Commands
	r.add("driver: commands taken from hints (no read)", float64(c.Hinted), "")
	r.add("driver: commands read from the stream", float64(c.Fetched), "")
	r.add("driver: command delivery errors", float64(c.Errors), "")
}

// settleAfterRamp is how long to wait after a fleet connected before
// measuring.
func settleAfterRamp(quick bool, n int) time.Duration {
	if quick {
		return 500 * time.Millisecond
	}
	return time.Duration(min(10_000, 2000+n/5)) * time.Millisecond
}

// commandStats sums one open-loop run.
type commandStats struct {
	sent, ok, failed uint64
	firstErr         string
	lat              sim.HistogramSnapshot
}

// submitAtRate submits commands at rate for d, each to a random one of n
// controllers, and waits for every answer.
func submitAtRate(ctx context.Context, client *http.Client, base string, serial func(int) string, n int, rate float64, d time.Duration) (commandStats, error) {
	var (
		hist      sim.Histogram
		ok, fails atomic.Uint64
		errOnce   sync.Once
		firstErr  string
		wg        sync.WaitGroup
	)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	count := int(rate * d.Seconds())
	start := time.Now()
	for i := range count {
		at := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if w := time.Until(at); w > 0 {
			if err := backoff.Sleep(ctx, w); err != nil {
				return commandStats{}, err
			}
		}
		s := serial(rng.IntN(n))
		card := 1 + rng.Uint64N(1_000_000)
		wg.Go(func() {
			err := submitOne(ctx, client, base, s, card)
			hist.Record(time.Since(at))
			if err != nil {
				fails.Add(1)
				errOnce.Do(func() { firstErr = err.Error() })
				return
			}
			ok.Add(1)
		})
	}
	wg.Wait()
	return commandStats{sent: uint64(count), ok: ok.Load(), failed: fails.Load(), firstErr: firstErr, lat: hist.Snapshot()}, ctx.Err()
}

// submitOne submits a card_delete with ?wait and checks that the answer
// carries an ok result.
func submitOne(ctx context.Context, client *http.Client, base, serial string, card uint64) error {
	body, _ := json.Marshal(commander.SubmitRequest{Type: scpgate.CmdCardDelete, Params: scpgate.CommandParams{Card: scpgate.CardNumber(card)}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/controllers/"+serial+"/commands?wait="+commandWait.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("submit to %s: %w", serial, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read answer of %s: %w", serial, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("submit to %s: %s: %s", serial, resp.Status, bytes.TrimSpace(b))
	}
	var sr commander.SubmitResponse
	if err := json.Unmarshal(b, &sr); err != nil {
		return fmt.Errorf("decode answer of %s: %w", serial, err)
	}
	if sr.Result == nil || sr.Result.Status != scpgate.StatusOK {
		return errors.New("command " + sr.ID + " ended " + string(sr.Status))
	}
	return nil
}
