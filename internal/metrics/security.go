package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scpgate/scpgate/ingest"
)

// driverSecurityCollector exports the driver's counters of what peers
// tried with serials (RegisterDriver adds it):
//
//	scpgate_driver_takeovers_total          sessions closed because a newer session of their serial began
//	scpgate_driver_takeovers_refused_total  certless sessions refused for a serial that presented a certificate before
//	scpgate_driver_presence_held_total      sessions of unknown serials whose presence waited for its turn
//	scpgate_driver_presence_never_total     of which ended before it: no presence event
//	scpgate_driver_bad_secrets_total        hellos refused for a missing or wrong shared secret
type driverSecurityCollector struct {
	src                                         DriverSource
	takeovers, refused, held, never, badSecrets *prometheus.Desc
}

func newDriverSecurityCollector(src DriverSource) *driverSecurityCollector {
	return &driverSecurityCollector{
		src:        src,
		takeovers:  desc("driver_takeovers_total", "Sessions closed because a newer session of their serial began, here or on another driver."),
		refused:    desc("driver_takeovers_refused_total", "Sessions without a client certificate refused for a serial that presented one before."),
		held:       desc("driver_presence_held_total", "Sessions of never-seen serials whose presence waited for the new-serial rate."),
		never:      desc("driver_presence_never_total", "Held sessions that ended before their turn: no presence event."),
		badSecrets: desc("driver_bad_secrets_total", "Hellos refused for a missing or wrong shared secret."),
	}
}

func (c *driverSecurityCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.takeovers, c.refused, c.held, c.never, c.badSecrets} {
		ch <- d
	}
}

func (c *driverSecurityCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	counter(ch, c.takeovers, st.Takeovers)
	counter(ch, c.refused, st.TakeoversRefused)
	counter(ch, c.held, st.PresenceHeld)
	counter(ch, c.never, st.PresenceNever)
	counter(ch, c.badSecrets, st.BadSecrets)
}

// IngestHealthSource is an ingest that checks its durable consumers;
// *ingest.Service is one.
type IngestHealthSource interface {
	Health() ingest.Health
}

var _ IngestHealthSource = (*ingest.Service)(nil)

// RegisterIngestHealth adds the health of ingest's durable consumers:
//
//	scpgate_ingest_consumers_ready          1 when both durable consumers are as ingest made them
//	scpgate_ingest_consumer_repairs_total   consumers found deleted or retargeted and set right
func RegisterIngestHealth(reg prometheus.Registerer, src IngestHealthSource) error {
	return reg.Register(&ingestHealthCollector{
		src:     src,
		ready:   desc("ingest_consumers_ready", "1 when ingest's durable consumers exist with their own filter, else 0."),
		repairs: desc("ingest_consumer_repairs_total", "Durable consumers found deleted or retargeted and created again."),
	})
}

type ingestHealthCollector struct {
	src            IngestHealthSource
	ready, repairs *prometheus.Desc
}

func (c *ingestHealthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.ready
	ch <- c.repairs
}

func (c *ingestHealthCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.src.Health()
	ready := 0.0
	if h.Ready() {
		ready = 1
	}
	gauge(ch, c.ready, ready)
	counter(ch, c.repairs, h.Repairs)
}
