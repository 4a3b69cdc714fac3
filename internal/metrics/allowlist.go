package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scpgate/scpgate/internal/auth"
)

// RegisterAllowList adds the metrics of the controller allow-list:
//
//	scpgate_driver_allow_list_serials            serials on the list
//	scpgate_driver_allow_list_loads_total{result} loads of the file: ok or error
func RegisterAllowList(reg prometheus.Registerer, l *auth.AllowList) error {
	size := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "driver_allow_list_serials",
		Help: "Controller serials on the allow-list.",
	}, func() float64 { return float64(l.Len()) })
	if err := reg.Register(size); err != nil {
		return err
	}
	for _, r := range []string{"ok", "error"} {
		loads := prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: Namespace, Name: "driver_allow_list_loads_total",
			Help:        "Loads of the allow-list file, by result.",
			ConstLabels: prometheus.Labels{"result": r},
		}, func() float64 {
			ok, failed := l.Loads()
			if r == "ok" {
				return float64(ok)
			}
			return float64(failed)
		})
		if err := reg.Register(loads); err != nil {
			return err
		}
	}
	return nil
}
