package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HTTP counts the requests of one HTTP server.
type HTTP struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTP registers, for the HTTP server of service (commander, ingest,
// driver, dev):
//
//	scpgate_http_requests_total{service,route,code}        requests by route and status code
//	scpgate_http_request_duration_seconds{service,route}   time to answer
//
// route is the ServeMux pattern that served the request ("POST
// /v1/controllers/{serial}/commands"), or "other" when none matched, so
// the label set stays bounded.
func NewHTTP(reg prometheus.Registerer, service string) (*HTTP, error) {
	h := &HTTP{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace:   Namespace,
			Name:        "http_requests_total",
			Help:        "HTTP requests by route and status code.",
			ConstLabels: prometheus.Labels{"service": service},
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace:   Namespace,
			Name:        "http_request_duration_seconds",
			Help:        "Time to answer HTTP requests, by route.",
			ConstLabels: prometheus.Labels{"service": service},
			Buckets:     []float64{0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 60},
		}, []string{"route"}),
	}
	if err := reg.Register(h.requests); err != nil {
		return nil, err
	}
	if err := reg.Register(h.duration); err != nil {
		return nil, err
	}
	return h, nil
}

// Wrap returns next, counted. It must be the outermost handler, so that
// the pattern set by the ServeMux inside is visible once it returns.
func (h *HTTP) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "other"
		}
		h.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		h.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes a flush on, for handlers that stream.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
