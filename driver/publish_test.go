package driver_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sim"
)

// ackGate is a TCP proxy to a NATS server whose server-to-client
// direction can be held: what the client publishes reaches the server and
// is stored, but the PubAcks wait.
type ackGate struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	open   *sync.Cond
	held   bool
}

func newAckGate(t *testing.T, target string) *ackGate {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("gate listen: %v", err)
	}
	g := &ackGate{ln: ln, target: target}
	g.open = sync.NewCond(&g.mu)
	t.Cleanup(func() { ln.Close(); g.hold(false) })
	go g.serve()
	return g
}

func (g *ackGate) url() string { return "nats://" + g.ln.Addr().String() }

func (g *ackGate) hold(held bool) {
	g.mu.Lock()
	g.held = held
	g.mu.Unlock()
	g.open.Broadcast()
}

func (g *ackGate) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", g.target)
		if err != nil {
			c.Close()
			continue
		}
		go func() { _, _ = io.Copy(s, c); s.Close() }()
		go func() {
			defer c.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Read(buf)
				g.mu.Lock()
				for g.held {
					g.open.Wait()
				}
				g.mu.Unlock()
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// TestPubAckTimeoutRepublishes: the PubAcks of a burst are held back past
// the publish timeout. The publishes time out, are sent again with the
// same message ids, and the late PubAcks of the attempts given up confirm
// nothing (they are counted as stale): every event is stored exactly once
// and acknowledged once the PubAcks flow again.
func TestPubAckTimeoutRepublishes(t *testing.T) {
	e := newEnv(t)
	gate := newAckGate(t, e.srv.Addr().String())
	nc, err := nats.Connect(gate.url(), nats.Name("gated"), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect through the gate: %v", err)
	}
	t.Cleanup(nc.Close)
	d, err := driver.New(driver.Options{
		ID: "d1", Listen: "127.0.0.1:0", NATS: nc, Streams: testStreams(), Timing: testTiming,
		Log: testLogger(t), PublishTimeout: 100 * time.Millisecond, RetryBackoffMax: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("new driver: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatalf("start driver: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })

	const count, each = 5, 100
	f := sim.NewFleet(sim.FleetConfig{Controller: simConfig(d.Addr().String(), ""), Count: count, Ramp: 1000})
	runFleet(t, f)
	ctrls := f.Controllers()
	waitSessions(t, d, count)

	gate.hold(true)
	for _, c := range ctrls {
		c.Generate(each)
	}
	// Every publish times out at least once while the PubAcks are held.
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if st := d.Stats(); st.EventsReceived != count*each || st.PublishErrors < count*each {
			return fmt.Errorf("received %d, publish errors %d", st.EventsReceived, st.PublishErrors)
		}
		return nil
	})
	if st := d.Stats(); st.EventsAcked != 0 || st.EventsPublished != 0 {
		t.Fatalf("published %d, acked %d while no PubAck could arrive", st.EventsPublished, st.EventsAcked)
	}
	gate.hold(false)
	waitAcked(t, 30*time.Second, ctrls...)

	checkExactlyOnce(t, readEvents(t, e.js), ctrls...)
	st := d.Stats()
	t.Logf("publish errors %d, republished %d, stale PubAcks %d, duplicates %d",
		st.PublishErrors, st.Republished, st.StalePubAcks, st.EventsDuplicate)
	if st.Republished == 0 || st.StalePubAcks == 0 || st.EventsDuplicate == 0 {
		t.Errorf("republished %d, stale PubAcks %d, duplicates %d: want each above 0",
			st.Republished, st.StalePubAcks, st.EventsDuplicate)
	}
	if st.EventsAcked != count*each {
		t.Errorf("acked %d, want %d", st.EventsAcked, count*each)
	}
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := d.Stats().Inflight; n != 0 {
			return fmt.Errorf("inflight %d after everything was acked", n)
		}
		return nil
	})
}
