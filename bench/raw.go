package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/streams"
)

// rawSpec describes a raw publish: Count events of the Generate mix, round
// robin over Controllers serials <Prefix><index>, each encoded as the
// driver encodes it and published with PublishMsgAsync and its message id,
// at most MaxPending awaiting their PubAck (nats.go's default, as the
// driver uses). Rate > 0 paces the publishes (events per second).
type rawSpec struct {
	Controllers int     `json:"controllers"`
	Prefix      string  `json:"prefix"`
	Count       int     `json:"count"`
	Rate        float64 `json:"rate,omitempty"`
	MaxPending  int     `json:"max_pending,omitempty"`
	Epoch       uint32  `json:"epoch"`
}

// rawResult is what a raw publish measured.
type rawResult struct {
	Count   int     `json:"count"`
	Acked   uint64  `json:"acked"`
	Errors  uint64  `json:"errors"`
	Seconds float64 `json:"seconds"` // first publish to last PubAck
	Rate    float64 `json:"rate"`    // Count / Seconds
	// Window is the rate between the 10% and 90% marks of acknowledged
	// messages: the sustained rate without start and tail.
	Window   float64 `json:"window"`
	AvgBytes float64 `json:"avg_bytes"` // mean payload size
}

// rawPublish runs spec on nc and waits for every PubAck.
func rawPublish(ctx context.Context, nc *nats.Conn, spec rawSpec) (rawResult, error) {
	var acked, failed atomic.Uint64
	maxPending := spec.MaxPending
	if maxPending <= 0 {
		maxPending = 4000
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(maxPending),
		jetstream.WithPublishAsyncAckHandler(func(jetstream.JetStream, *nats.Msg, *jetstream.PubAck) { acked.Add(1) }),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }),
	)
	if err != nil {
		return rawResult{}, fmt.Errorf("raw publish: jetstream: %w", err)
	}
	serials := make([]string, spec.Controllers)
	for i := range serials {
		serials[i] = fmt.Sprintf("%s%06d", spec.Prefix, i)
	}
	cfg := sim.Config{}.WithDefaults()
	res := rawResult{Count: spec.Count}
	marks := progressMarks(ctx, 5*time.Millisecond, func() uint64 { return acked.Load() }, uint64(spec.Count))
	var bytes int64
	start := time.Now()
	for j := 0; j < spec.Count; j++ {
		if spec.Rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(j) / spec.Rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		if j%1024 == 0 && ctx.Err() != nil {
			return res, ctx.Err()
		}
		c, i := j%spec.Controllers, j/spec.Controllers
		now := time.Now()
		tx := sim.Pattern(&cfg, uint64(i), uint32(i+1), now)
		ev := driver.TransactionEvent(serials[c], spec.Epoch, &tx, now, "bench-raw")
		data, err := driver.EncodeEvent(&ev)
		if err != nil {
			return res, fmt.Errorf("raw publish: encode event %d: %w", j, err)
		}
		subject, _ := streams.EventSubject(serials[c], ev.Kind)
		bytes += int64(len(data))
		m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{ev.ID}}}
		for {
			_, err = js.PublishMsgAsync(m)
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				break
			}
		}
		if err != nil {
			return res, fmt.Errorf("raw publish: publish event %d: %w", j, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return res, ctx.Err()
	}
	elapsed := time.Since(start)
	m := <-marks
	res.Acked, res.Errors = acked.Load(), failed.Load()
	res.Seconds = elapsed.Seconds()
	res.Rate = float64(spec.Count) / res.Seconds
	res.Window = m.rate(uint64(spec.Count))
	if spec.Count > 0 {
		res.AvgBytes = float64(bytes) / float64(spec.Count)
	}
	if res.Errors > 0 {
		return res, fmt.Errorf("raw publish: %d publishes failed", res.Errors)
	}
	return res, nil
}

// marks are the times a counter crossed 10% and 90% of its goal.
type marks struct {
	t10, t90 time.Time
}

// rate returns the rate between the marks (80% of total over their
// distance), or 0 when one is missing.
func (m marks) rate(total uint64) float64 {
	if m.t10.IsZero() || m.t90.IsZero() || !m.t90.After(m.t10) {
		return 0
	}
	return 0.8 * float64(total) / m.t90.Sub(m.t10).Seconds()
}

// progressMarks polls count every interval until it reaches total (or ctx
// ends) and then sends the times it crossed 10% and 90% of total.
func progressMarks(ctx context.Context, interval time.Duration, count func() uint64, total uint64) <-chan marks {
	ch := make(chan marks, 1)
	go func() {
		var m marks
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			n := count()
			now := time.Now()
			if m.t10.IsZero() && 10*n >= total {
				m.t10 = now
			}
			if m.t90.IsZero() && 10*n >= 9*total {
				m.t90 = now
			}
			if n >= total {
				ch <- m
				return
			}
			select {
			case <-ctx.Done():
				ch <- m
				return
			case <-t.C:
			}
		}
	}()
	return ch
}

// rawChild publishes straight to JetStream on "run": the baseline the
// driver is compared with, from a process of its own like the driver.
func rawChild(fs *flag.FlagSet) func(context.Context, *childServer) error {
	url := fs.String("nats", nats.DefaultURL, "NATS URL")
	return func(ctx context.Context, srv *childServer) error {
		nc, err := nats.Connect(*url, nats.Name("scpgate-bench-raw"), nats.MaxReconnects(-1))
		if err != nil {
			return fmt.Errorf("connect to %s: %w", *url, err)
		}
		defer nc.Close()
		return srv.serve(ctx, struct{}{}, func(ctx context.Context, r childReq) (any, error) {
			switch r.Op {
			case "run":
				if r.Raw == nil {
					return nil, errors.New("run: no spec")
				}
				return rawPublish(ctx, nc, *r.Raw)
			}
			return nil, fmt.Errorf("unknown op %q", r.Op)
		})
	}
}
