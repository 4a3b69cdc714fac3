package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
)

// Commander holds the metrics of the command API beyond the HTTP server's
// own (scpgate_http_requests_total{service="commander",route,code}).
type Commander struct {
	submit *prometheus.HistogramVec
}

// NewCommander registers, for the commander:
//
//	scpgate_commander_submit_duration_seconds{code,wait}   time to answer a submission over HTTP
//	scpgate_commander_nats_requests_total{endpoint}        requests of the NATS micro service
//	scpgate_commander_nats_errors_total{endpoint}          of which answered with an error
//	scpgate_commander_nats_processing_seconds_total{endpoint}
//
// wait is "true" for submissions that asked to wait for their result
// (?wait=), whose time includes the controller's answer. svc, the NATS
// micro service of the commander, may be nil (no NATS metrics).
func NewCommander(reg prometheus.Registerer, svc micro.Service) (*Commander, error) {
	c := &Commander{submit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "commander_submit_duration_seconds",
		Help:    "Time to answer a command submission over HTTP, by status code and whether it waited for the result.",
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30, 60},
	}, []string{"code", "wait"})}
	if err := reg.Register(c.submit); err != nil {
		return nil, err
	}
	if svc != nil {
		if err := reg.Register(&microCollector{
			svc:      svc,
			requests: desc("commander_nats_requests_total", "Requests to the commander's NATS micro service, by endpoint.", "endpoint"),
			errors:   desc("commander_nats_errors_total", "Requests to the commander's NATS micro service answered with an error, by endpoint.", "endpoint"),
			proc:     desc("commander_nats_processing_seconds_total", "Time spent answering the commander's NATS micro service, by endpoint.", "endpoint"),
		}); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Wrap returns next with command submissions (POST .../commands) timed.
// Like HTTP.Wrap it must be outside the ServeMux that sets the pattern.
func (c *Commander) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/commands") {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		wait := strconv.FormatBool(r.URL.Query().Get("wait") != "")
		c.submit.WithLabelValues(strconv.Itoa(sw.code), wait).Observe(time.Since(start).Seconds())
	})
}

// microCollector reads the statistics of a micro service at scrape time.
type microCollector struct {
	svc                    micro.Service
	requests, errors, proc *prometheus.Desc
}

func (c *microCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.errors
	ch <- c.proc
}

func (c *microCollector) Collect(ch chan<- prometheus.Metric) {
	for _, ep := range c.svc.Stats().Endpoints {
		counter(ch, c.requests, uint64(ep.NumRequests), ep.Name)
		counter(ch, c.errors, uint64(ep.NumErrors), ep.Name)
		ch <- prometheus.MustNewConstMetric(c.proc, prometheus.CounterValue, ep.ProcessingTime.Seconds(), ep.Name)
	}
}
