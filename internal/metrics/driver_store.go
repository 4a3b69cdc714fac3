package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// driverStoreCollector reports how the driver's events fared at the
// stream: clamped times and SCP_EVENTS outages.
type driverStoreCollector struct {
	src                                  DriverSource
	timesClamped, noLeader, noLeaderSecs *prometheus.Desc
}

// registerDriverStore adds, read from src at every scrape:
//
//	scpgate_driver_times_clamped_total        transactions stored with time_clamped (time outside years 0..9999)
//	scpgate_driver_no_leader_outages_total    periods in which no stream took the driver's events (SCP_EVENTS without a leader)
//	scpgate_driver_no_leader_seconds_total    their total length, added when each ends
func registerDriverStore(reg prometheus.Registerer, src DriverSource) error {
	return reg.Register(&driverStoreCollector{
		src:          src,
		timesClamped: desc("driver_times_clamped_total", "Transactions whose time lay outside years 0..9999, stored with time_clamped."),
		noLeader:     desc("driver_no_leader_outages_total", "Periods in which no stream took the driver's events (SCP_EVENTS without a leader)."),
		noLeaderSecs: desc("driver_no_leader_seconds_total", "Total length of those periods, added when each ends."),
	})
}

func (c *driverStoreCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.timesClamped
	ch <- c.noLeader
	ch <- c.noLeaderSecs
}

func (c *driverStoreCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	counter(ch, c.timesClamped, st.TimesClamped)
	counter(ch, c.noLeader, st.NoLeaderOutages)
	ch <- prometheus.MustNewConstMetric(c.noLeaderSecs, prometheus.CounterValue, st.NoLeaderSeconds)
}
