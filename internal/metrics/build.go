package metrics

import (
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// buildVersion is the release version reported by scpgate_build_info.
var buildVersion atomic.Pointer[string]

// SetVersion sets the version that scpgate_build_info reports (the
// binary's -ldflags version); NewRegistry registers the metric.
func SetVersion(v string) { buildVersion.Store(&v) }

// newBuildInfo returns scpgate_build_info{version,revision,goversion} 1.
func newBuildInfo() prometheus.Collector {
	version, revision := "dev", "unknown"
	if v := buildVersion.Load(); v != nil {
		version = *v
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help:        "Always 1; its labels name the version, VCS revision and Go version of the binary.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}

// certCollector reports the expiry of certificates.
type certCollector struct {
	d     *prometheus.Desc
	certs map[string]func() time.Time
}

// RegisterCertExpiry adds scpgate_tls_cert_expiry_timestamp_seconds{cert}:
// the expiry (Unix time) of each certificate of certs, keyed by what it
// is ("controller_server", "nats_client"), read at scrape time so that a
// reloaded certificate shows at once. A certificate whose expiry is the
// zero time is left out.
func RegisterCertExpiry(reg prometheus.Registerer, certs map[string]func() time.Time) error {
	return reg.Register(&certCollector{
		d:     desc("tls_cert_expiry_timestamp_seconds", "Expiry of a TLS certificate in use, as a Unix time.", "cert"),
		certs: certs,
	})
}

func (c *certCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.d }

func (c *certCollector) Collect(ch chan<- prometheus.Metric) {
	for name, f := range c.certs {
		if t := f(); !t.IsZero() {
			gauge(ch, c.d, float64(t.Unix()), name)
		}
	}
}
