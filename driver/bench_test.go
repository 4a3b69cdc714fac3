package driver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/streams"
)

func benchTx() *scpbridge.Transaction {
	return &scpbridge.Transaction{Seq: 123456, TimeMS: time.Now().UnixMilli(), SourceType: scpbridge.SourceReader,
		SourceNum: 1, Type: scpbridge.TranAccess, Code: scpbridge.AccessGranted, Card: 8123456, Facility: 105}
}

// BenchmarkEncodeEvent: one transaction to its JSON document, as the read
// loop does it.
func BenchmarkEncodeEvent(b *testing.B) {
	tx := benchTx()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		ev := driver.TransactionEvent("PANEL-0042", 1773480000, tx, now, "driver-a1b2c3")
		if _, err := driver.EncodeEvent(&ev); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEncodeEventAllocs bounds the allocations of encoding one event.
func TestEncodeEventAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	tx := benchTx()
	now := time.Now()
	n := testing.AllocsPerRun(200, func() {
		ev := driver.TransactionEvent("PANEL-0042", 1773480000, tx, now, "driver-a1b2c3")
		_, _ = driver.EncodeEvent(&ev)
	})
	if n > 8 {
		t.Errorf("encoding one event allocates %.0f times, want at most 8", n)
	}
}

// benchEnv is a JetStream server with the streams ensured, reused by the
// end-to-end benchmarks so that both measure against the same server.
func benchEnv(b *testing.B) *env {
	e := newEnv(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := streams.Ensure(ctx, e.js, testStreams()); err != nil {
		b.Fatalf("ensure: %v", err)
	}
	return e
}

// BenchmarkEndToEnd: simulated controllers send transactions through the
// driver into JetStream; an op is one transaction stored and acknowledged
// to its controller. Compare events/s with BenchmarkRawPublish.
func BenchmarkEndToEnd(b *testing.B) {
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprintf("controllers=%d", n), func(b *testing.B) {
			e := benchEnv(b)
			d := e.startDriver("bench", func(o *driver.Options) { o.Log = o.Log.Level(5) })
			cfg := simConfig(d.Addr().String(), "")
			cfg.LogCapacity = b.N + 1000 // hold everything generated: nothing overwritten
			f := sim.NewFleet(sim.FleetConfig{Controller: cfg, Count: n, Ramp: 10000})
			runFleet(b, f)
			ctrls := f.Controllers()
			natstest.CheckFor(b, 10*time.Second, 5*time.Millisecond, func() error {
				if d.Stats().Sessions != n {
					return fmt.Errorf("sessions not up")
				}
				return nil
			})
			b.ResetTimer()
			per := b.N / n
			for i, c := range ctrls {
				if i == 0 {
					c.Generate(b.N - per*(n-1))
				} else {
					c.Generate(per)
				}
			}
			waitAcked(b, time.Minute, ctrls...)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkRawPublish: the same documents published straight to JetStream
// from one goroutine with PublishMsgAsync and message ids, waiting for
// every PubAck: the ceiling the driver is measured against.
func BenchmarkRawPublish(b *testing.B) {
	e := benchEnv(b)
	nc := natstest.Connect(b, e.srv)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	tx := benchTx()
	subject, _ := streams.EventSubject("RAW1", scpgate.KindAccess)
	b.ResetTimer()
	for i := range b.N {
		tx.Seq = uint32(i + 1)
		ev := driver.TransactionEvent("RAW1", 1, tx, time.Now(), "bench")
		data, _ := driver.EncodeEvent(&ev)
		m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{ev.ID}}}
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishes not acknowledged")
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
