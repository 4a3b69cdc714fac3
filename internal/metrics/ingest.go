package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/streams"
)

// IngestSource is what the ingest collector reads at scrape time;
// *ingest.Service is one.
type IngestSource interface {
	Stats() ingest.Stats
	Lag() ingest.Lag
}

var _ IngestSource = (*ingest.Service)(nil)

type ingestCollector struct {
	src                                              IngestSource
	events, results, duplicates, invalid, failures   *prometheus.Desc
	lagPending, lagSeconds, lagUpdated, lagErrorDesc *prometheus.Desc
}

// RegisterIngest adds the metrics of ingest, read from src at every
// scrape:
//
//	scpgate_ingest_events_written_total     events newly stored (rows written)
//	scpgate_ingest_results_written_total    command results newly stored
//	scpgate_ingest_duplicates_total         events and results delivered again and skipped
//	scpgate_ingest_invalid_total            messages that could not be decoded (terminated)
//	scpgate_ingest_failures_total           batches that failed and were delivered again
//	scpgate_ingest_lag_pending{stream}      messages not yet acknowledged by ingest
//	scpgate_ingest_lag_seconds{stream}      age of the oldest unacknowledged message
//	scpgate_ingest_lag_updated_timestamp_seconds{stream}  when the lag was last measured
//	scpgate_ingest_lag_error{stream}        1 when the last lag measurement failed
func RegisterIngest(reg prometheus.Registerer, src IngestSource) error {
	return reg.Register(&ingestCollector{
		src:          src,
		events:       desc("ingest_events_written_total", "Events newly stored."),
		results:      desc("ingest_results_written_total", "Command results newly stored."),
		duplicates:   desc("ingest_duplicates_total", "Events and results delivered again and skipped."),
		invalid:      desc("ingest_invalid_total", "Messages that could not be decoded and were terminated."),
		failures:     desc("ingest_failures_total", "Batches that failed to be written and were delivered again."),
		lagPending:   desc("ingest_lag_pending", "Messages of the stream not yet acknowledged by ingest.", "stream"),
		lagSeconds:   desc("ingest_lag_seconds", "Age of the oldest message ingest has not acknowledged.", "stream"),
		lagUpdated:   desc("ingest_lag_updated_timestamp_seconds", "When the lag was last measured (Unix time).", "stream"),
		lagErrorDesc: desc("ingest_lag_error", "1 when the last lag measurement failed, else 0.", "stream"),
	})
}

func (c *ingestCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.events, c.results, c.duplicates, c.invalid, c.failures,
		c.lagPending, c.lagSeconds, c.lagUpdated, c.lagErrorDesc} {
		ch <- d
	}
}

func (c *ingestCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	counter(ch, c.events, st.Events)
	counter(ch, c.results, st.Results)
	counter(ch, c.duplicates, st.Duplicates)
	counter(ch, c.invalid, st.Invalid)
	counter(ch, c.failures, st.Failures)
	lag := c.src.Lag()
	for _, l := range []struct {
		stream string
		lag    ingest.StreamLag
	}{{streams.EventsStream, lag.Events}, {streams.ResultsStream, lag.Results}} {
		gauge(ch, c.lagPending, float64(l.lag.Pending), l.stream)
		gauge(ch, c.lagSeconds, l.lag.SecondsBehind, l.stream)
		updated := 0.0
		if !l.lag.Updated.IsZero() {
			updated = float64(l.lag.Updated.UnixNano()) / 1e9
		}
		gauge(ch, c.lagUpdated, updated, l.stream)
		failed := 0.0
		if l.lag.Error != "" {
			failed = 1
		}
		gauge(ch, c.lagErrorDesc, failed, l.stream)
	}
}
