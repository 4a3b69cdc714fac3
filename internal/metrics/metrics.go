// Package metrics exposes the counters of scpgate's services to Prometheus
// on /metrics. Collectors read the services' own Stats snapshots at scrape
// time, so the hot paths carry no extra instrumentation; the one exception
// is the publish latency histogram of the driver.
package metrics

import (
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every scpgate metric.
const Namespace = "scpgate"

// NewRegistry returns a registry holding the Go runtime and process
// collectors and scpgate_build_info; the services' collectors are added
// to it.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), newBuildInfo())
	return reg
}

// Handler serves the metrics of g in the Prometheus exposition format.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// desc returns the description of metric scpgate_<name>.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

// counter and gauge emit one sample of d.
func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// natsCollector reports the state of a service's NATS connection.
type natsCollector struct {
	nc                                          *nats.Conn
	connected, reconnects, inMsgs, outMsgs, pnd *prometheus.Desc
}

// RegisterNATS adds the metrics of the NATS connection nc:
// scpgate_nats_connected, scpgate_nats_reconnects_total,
// scpgate_nats_in_msgs_total, scpgate_nats_out_msgs_total.
func RegisterNATS(reg prometheus.Registerer, nc *nats.Conn) error {
	return reg.Register(&natsCollector{
		nc:         nc,
		connected:  desc("nats_connected", "1 while the NATS connection is up, else 0."),
		reconnects: desc("nats_reconnects_total", "Reconnections to NATS."),
		inMsgs:     desc("nats_in_msgs_total", "Messages received from NATS."),
		outMsgs:    desc("nats_out_msgs_total", "Messages sent to NATS."),
		pnd:        desc("nats_pending_bytes", "Bytes buffered for NATS while disconnected or not yet flushed."),
	})
}

func (c *natsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.connected
	ch <- c.reconnects
	ch <- c.inMsgs
	ch <- c.outMsgs
	ch <- c.pnd
}

func (c *natsCollector) Collect(ch chan<- prometheus.Metric) {
	up := 0.0
	if c.nc.IsConnected() {
		up = 1
	}
	st := c.nc.Stats()
	gauge(ch, c.connected, up)
	counter(ch, c.reconnects, st.Reconnects)
	counter(ch, c.inMsgs, st.InMsgs)
	counter(ch, c.outMsgs, st.OutMsgs)
	pending, _ := c.nc.Buffered()
	gauge(ch, c.pnd, float64(pending))
}
