package httpapi

import (
	"net/http"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// NATSNotConnected is the /readyz reason of every role while its NATS
// connection is down.
const NATSNotConnected = "NATS not connected"

// ReadyFunc says whether a role is ready: reason is empty when it is,
// else why not; body holds fields the /readyz answer carries either way
// (nil: none).
type ReadyFunc func() (reason string, body map[string]any)

// Healthz answers GET /healthz: 200 {"status": "ok"} while the process
// serves HTTP.
func Healthz(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Readyz returns the handler of GET /readyz: 200 with ready's body and
// "status": "ok" when ready gives no reason, else 503 with "status":
// "unavailable" and the reason.
func Readyz(ready ReadyFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		reason, body := ready()
		if body == nil {
			body = map[string]any{}
		}
		if reason == "" {
			body["status"] = "ok"
			WriteJSON(w, http.StatusOK, body)
			return
		}
		body["status"], body["reason"] = "unavailable", reason
		WriteJSON(w, http.StatusServiceUnavailable, body)
	}
}

// HandleHealth registers GET /healthz and GET /readyz (from ready) on mux.
func HandleHealth(mux *http.ServeMux, ready ReadyFunc) {
	mux.HandleFunc("GET /healthz", Healthz)
	mux.Handle("GET /readyz", Readyz(ready))
}

// NATSReady is the readiness of a role that needs only its NATS
// connection: ready while nc is connected.
func NATSReady(nc *nats.Conn) ReadyFunc {
	return func() (string, map[string]any) {
		if nc == nil || !nc.IsConnected() {
			return NATSNotConnected, nil
		}
		return "", nil
	}
}

// Starting is the HTTP handler of a role that listens before it has
// reached NATS: /healthz answers 200, anything else 503 with the reason
// ("NATS not connected", or "starting" once connected). Set installs the
// role's real handler.
type Starting struct {
	nc   atomic.Pointer[nats.Conn]
	real atomic.Pointer[http.Handler]
}

// SetConn gives the handler the connection whose state /readyz reports.
func (s *Starting) SetConn(nc *nats.Conn) { s.nc.Store(nc) }

// Set makes h answer every request from now on.
func (s *Starting) Set(h http.Handler) { s.real.Store(&h) }

// ServeHTTP implements http.Handler.
func (s *Starting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := s.real.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	if r.URL.Path == "/healthz" {
		Healthz(w, r)
		return
	}
	reason := "starting"
	if nc := s.nc.Load(); nc == nil || !nc.IsConnected() {
		reason = NATSNotConnected
	}
	WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": reason})
}
