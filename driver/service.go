package driver

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/micro"
)

// ServiceName is the name of the driver's NATS micro service: `nats micro
// info scpgate-driver` lists every driver with its id and controller port.
const ServiceName = "scpgate-driver"

// ServiceVersion is the version the micro service reports.
const ServiceVersion = "1.0.0"

// SessionsSubject returns the subject of the "sessions" endpoint of the
// driver with the given id: a request there returns the JSON list of the
// serials it holds.
func SessionsSubject(id string) string {
	return "scpgate.driver." + subjectToken(id) + ".sessions"
}

// subjectToken maps an id (a host name, say) to one subject token.
func subjectToken(id string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, id)
}

// startService registers the scpgate-driver micro service: info carries
// the driver id and controller port in its metadata, stats the driver's
// Stats as the sessions endpoint's data, and the sessions endpoint answers
// with the serials held.
func (d *Driver) startService() error {
	port := ""
	if a, ok := d.ln.Addr().(*net.TCPAddr); ok {
		port = strconv.Itoa(a.Port)
	}
	svc, err := micro.AddService(d.nc, micro.Config{
		Name:        ServiceName,
		Version:     ServiceVersion,
		Description: "scpgate controller driver",
		Metadata: map[string]string{
			"id":               d.opts.ID,
			"controller_addr":  d.ln.Addr().String(),
			"controller_port":  port,
			"sessions_subject": SessionsSubject(d.opts.ID),
		},
		StatsHandler: func(*micro.Endpoint) any { return d.Stats() },
	})
	if err != nil {
		return fmt.Errorf("driver: add micro service: %w", err)
	}
	err = svc.AddEndpoint("sessions", micro.HandlerFunc(func(r micro.Request) {
		_ = r.RespondJSON(d.serials())
	}), micro.WithEndpointSubject(SessionsSubject(d.opts.ID)), micro.WithEndpointQueueGroupDisabled())
	if err != nil {
		_ = svc.Stop()
		return fmt.Errorf("driver: add sessions endpoint: %w", err)
	}
	if err := d.addShedEndpoint(svc); err != nil {
		_ = svc.Stop()
		return err
	}
	d.svc = svc
	return nil
}

// Readiness is the body of /readyz.
type Readiness struct {
	Ready          bool   `json:"ready"`
	Reason         string `json:"reason,omitempty"`
	ID             string `json:"id"`
	NATSConnected  bool   `json:"nats_connected"`
	StreamsEnsured bool   `json:"streams_ensured"`
	Draining       bool   `json:"draining"`
	Sessions       int    `json:"sessions"`
}

// Ready reports whether the driver should receive new controllers: NATS
// connected, streams ensured, listening and not draining.
func (d *Driver) Ready() Readiness {
	r := Readiness{
		ID:             d.opts.ID,
		NATSConnected:  d.nc.IsConnected(),
		StreamsEnsured: d.ensured.Load(),
		Draining:       d.draining.Load(),
	}
	d.mu.Lock()
	r.Sessions = len(d.sessions)
	d.mu.Unlock()
	switch {
	case r.Draining:
		r.Reason = "draining"
	case !r.NATSConnected:
		r.Reason = "NATS not connected"
	case !r.StreamsEnsured:
		r.Reason = "streams not ensured"
	case d.ln == nil:
		r.Reason = "not listening"
	default:
		r.Ready = true
	}
	return r
}

// Handler returns the driver's HTTP handler: /healthz (200 while the
// process runs), /readyz (200 when Ready, else 503; JSON body either way)
// and /stats (Stats as JSON).
func (d *Driver) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "id": d.opts.ID})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		r := d.Ready()
		code := http.StatusOK
		if !r.Ready {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, r)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, d.Stats())
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
