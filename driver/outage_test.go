package driver_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/streams"
)

// TestNoLeaderLoggedOncePerOutage takes SCP_EVENTS away while five
// controllers send events (JetStream then answers every publish "no
// responders", as while the stream elects a leader), and brings it back:
// the outage is logged once when it starts and once with its duration
// when it ends, counted once, and every event is stored and acknowledged.
func TestNoLeaderLoggedOncePerOutage(t *testing.T) {
	e := newEnv(t)
	var logs natstest.Buffer
	d := e.startDriver("outage", func(o *driver.Options) {
		o.Log = zerolog.New(zerolog.MultiLevelWriter(&logs, zerolog.NewTestWriter(t))).Level(zerolog.InfoLevel)
	})
	var ctrls []*sim.Controller
	for i := range 5 {
		c := sim.NewController(simConfig(d.Addr().String(), fmt.Sprintf("OUT%d", i)))
		runController(t, c)
		ctrls = append(ctrls, c)
		c.Generate(10)
	}
	waitAcked(t, 10*time.Second, ctrls...)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.js.DeleteStream(ctx, streams.EventsStream); err != nil {
		t.Fatalf("delete stream: %v", err)
	}
	for _, c := range ctrls {
		c.Generate(50)
	}
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if st := d.Stats(); st.NoLeaderOutages != 1 || st.PublishErrors < 20 {
			return fmt.Errorf("stats %+v: want one outage and its failed publishes", st)
		}
		return nil
	})
	time.Sleep(time.Second) // the outage lasts: retries keep being refused
	if _, err := streams.Apply(ctx, e.js, testStreams()); err != nil {
		t.Fatalf("re-create streams: %v", err)
	}
	waitAcked(t, 20*time.Second, ctrls...)

	st := d.Stats()
	if st.NoLeaderOutages != 1 || st.NoLeaderSeconds < 0.9 {
		t.Errorf("stats: %d outages for %.1fs, want 1 for about 1s or more", st.NoLeaderOutages, st.NoLeaderSeconds)
	}
	out := logs.String()
	if n := strings.Count(out, "SCP_EVENTS has no leader (no stream took the event)"); n != 1 {
		t.Errorf("outage start logged %d times, want once", n)
	}
	if n := strings.Count(out, "SCP_EVENTS has no leader: over after"); n != 1 {
		t.Errorf("outage end logged %d times, want once", n)
	}
	if n := strings.Count(out, "publish failed; will republish"); n != 0 {
		t.Errorf("%d per-session publish warnings during the outage, want none", n)
	}
}
