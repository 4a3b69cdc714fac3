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

// streamInfoTimeout bounds the stream info requests of one scrape: a
// stream without a leader does not answer.
const streamInfoTimeout = 2 * time.Second

type streamsCollector struct {
	js                                      jetstream.JetStream
	bytes, maxBytes, fullness, msgs, failed *prometheus.Desc
	leader, current                         *prometheus.Desc
}

// RegisterStreams adds the size of scpgate's streams, asked of JetStream at
// every scrape (one stream info request per stream):
//
//	scpgate_stream_bytes{stream}           bytes stored
//	scpgate_stream_messages{stream}        messages stored
//	scpgate_stream_max_bytes{stream}       the stream's MaxBytes (streams that have one)
//	scpgate_stream_fullness_ratio{stream}  bytes / MaxBytes, 0 to 1 (streams that have one)
//	scpgate_stream_info_error{stream}      1 when the stream could not be read at this scrape
//	scpgate_stream_leader{stream}            1 when the stream answers with a leader, else 0
//	scpgate_stream_replicas_current{stream}  the leader plus the replicas that are current
//
// A stream without a leader stores nothing: drivers stop acknowledging
// (controllers keep their events) and commands cannot be queued; a stream
// that does not answer within the scrape counts as one without a leader.
// SCP_EVENTS discards its oldest events once full (docs/operations.md,
// "Guarantees and their limits"): deploy/prometheus/alerts.yml alerts on
// its fullness and on ingest's backlog before that backlog is discarded.
func RegisterStreams(reg prometheus.Registerer, nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("stream metrics: jetstream: %w", err)
	}
	return reg.Register(&streamsCollector{
		js:       js,
		bytes:    desc("stream_bytes", "Bytes stored in the stream.", "stream"),
		msgs:     desc("stream_messages", "Messages stored in the stream.", "stream"),
		maxBytes: desc("stream_max_bytes", "The stream's MaxBytes limit.", "stream"),
		fullness: desc("stream_fullness_ratio", "Bytes stored over MaxBytes (0 to 1); past 1 the oldest messages are discarded.", "stream"),
		failed:   desc("stream_info_error", "1 when the stream's info could not be read at this scrape, else 0.", "stream"),
		leader:   desc("stream_leader", "1 when the stream has a leader (answers its info request), else 0.", "stream"),
		current:  desc("stream_replicas_current", "The stream's leader plus its replicas that are current.", "stream"),
	})
}

func (c *streamsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.bytes, c.msgs, c.maxBytes, c.fullness, c.failed, c.leader, c.current} {
		ch <- d
	}
}

func (c *streamsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), streamInfoTimeout)
	defer cancel()
	for _, name := range []string{streams.EventsStream, streams.CommandsStream, streams.ResultsStream} {
		st, err := c.js.Stream(ctx, name)
		if err != nil {
			gauge(ch, c.failed, 1, name)
			gauge(ch, c.leader, 0, name)
			gauge(ch, c.current, 0, name)
			continue
		}
		gauge(ch, c.failed, 0, name)
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
		gauge(ch, c.bytes, float64(info.State.Bytes), name)
		gauge(ch, c.msgs, float64(info.State.Msgs), name)
		if mb := info.Config.MaxBytes; mb > 0 {
			gauge(ch, c.maxBytes, float64(mb), name)
			gauge(ch, c.fullness, Fullness(info.State.Bytes, mb), name)
		}
	}
}

// Fullness returns bytes over maxBytes, at most 1 (0 when there is no
// limit).
func Fullness(bytes uint64, maxBytes int64) float64 {
	if maxBytes <= 0 {
		return 0
	}
	return min(float64(bytes)/float64(maxBytes), 1)
}
