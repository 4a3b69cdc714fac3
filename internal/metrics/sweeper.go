package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scpgate/scpgate/commander"
)

// SweeperSource is what RegisterSweeper reads; *commander.Sweeper is one.
type SweeperSource interface {
	Stats() commander.SweepStats
}

// RegisterSweeper adds the metrics of a commander's sweeper of expired
// commands, read at every scrape:
//
//	scpgate_commander_sweeps_total                   completed sweeps of SCP_COMMANDS
//	scpgate_commander_swept_commands_total{outcome}  commands the sweeper ended: expired,
//	                                                 unanswered (failed), republished (already final)
//	scpgate_commander_sweep_lost_total               compare-and-set races lost to a driver or another sweeper
//	scpgate_commander_sweep_errors_total             failed sweeps and commands (retried on the next sweep)
func RegisterSweeper(reg prometheus.Registerer, src SweeperSource) error {
	counters := []struct {
		name, help, outcome string
		get                 func(commander.SweepStats) uint64
	}{
		{"commander_sweeps_total", "Completed sweeps of SCP_COMMANDS for expired commands.", "", func(s commander.SweepStats) uint64 { return s.Sweeps }},
		{"commander_swept_commands_total", "Commands the sweeper ended, by outcome.", "expired", func(s commander.SweepStats) uint64 { return s.Expired }},
		{"commander_swept_commands_total", "Commands the sweeper ended, by outcome.", "unanswered", func(s commander.SweepStats) uint64 { return s.Unanswered }},
		{"commander_swept_commands_total", "Commands the sweeper ended, by outcome.", "republished", func(s commander.SweepStats) uint64 { return s.Republished }},
		{"commander_sweep_lost_total", "Compare-and-set races the sweeper lost to a driver or another sweeper.", "", func(s commander.SweepStats) uint64 { return s.Lost }},
		{"commander_sweep_errors_total", "Failed sweeps and commands of the sweeper (retried).", "", func(s commander.SweepStats) uint64 { return s.Errors }},
	}
	for _, c := range counters {
		opts := prometheus.CounterOpts{Namespace: Namespace, Name: c.name, Help: c.help}
		if c.outcome != "" {
			opts.ConstLabels = prometheus.Labels{"outcome": c.outcome}
		}
		get := c.get
		if err := reg.Register(prometheus.NewCounterFunc(opts, func() float64 { return float64(get(src.Stats())) })); err != nil {
			return err
		}
	}
	return nil
}
