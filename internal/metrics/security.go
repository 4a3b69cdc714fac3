package metrics

import "github.com/prometheus/client_golang/prometheus"

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
