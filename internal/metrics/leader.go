package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scpgate/scpgate/streams"
)

// leaderInfoTimeout bounds the stream info requests of one scrape: a
// stream without a leader does not answer.
const leaderInfoTimeout = 2 * time.Second

// leaderCollector reports whether scpgate's streams have a leader.
type leaderCollector struct {
	js              jetstream.JetStream
	leader, current *prometheus.Desc
}

// RegisterStreamLeaders adds, asked of JetStream at every scrape:
//
//	scpgate_stream_leader{stream}            1 when the stream answers with a leader, else 0
//	scpgate_stream_replicas_current{stream}  the leader plus the replicas that are current
//
// A stream without a leader stores nothing: drivers stop acknowledging
// (controllers keep their events) and commands cannot be queued.
func RegisterStreamLeaders(reg prometheus.Registerer, nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("stream leader metrics: jetstream: %w", err)
	}
	return reg.Register(&leaderCollector{
		js:      js,
		leader:  desc("stream_leader", "1 when the stream has a leader (answers its info request), else 0.", "stream"),
		current: desc("stream_replicas_current", "The stream's leader plus its replicas that are current.", "stream"),
	})
}

func (c *leaderCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.leader
	ch <- c.current
}

func (c *leaderCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), leaderInfoTimeout)
	defer cancel()
	for _, name := range []string{streams.EventsStream, streams.CommandsStream, streams.ResultsStream} {
		st, err := c.js.Stream(ctx, name)
		if err != nil {
			gauge(ch, c.leader, 0, name)
			gauge(ch, c.current, 0, name)
			continue
		}
		info := st.CachedInfo()
		leader, current := 1.0, 1.0
		if cl := info.Cluster; cl != nil {
			if cl.Leader == "" {
				leader, current = 0, 0
			}
			for _, p := range cl.Replicas {
				if p.Current && !p.Offline {
					current++
				}
			}
		}
		gauge(ch, c.leader, leader, name)
		gauge(ch, c.current, current, name)
	}
}
