package main

import (
	"net/http"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// startingHandler is the HTTP handler of a service that listens before it
// has reached NATS: /healthz answers 200, /readyz 503 with the reason
// ("NATS not connected", or "starting" once connected), anything else 503.
// Set installs the service's real handler.
type startingHandler struct {
	nc   atomic.Pointer[nats.Conn]
	real atomic.Pointer[http.Handler]
}

// SetConn gives the handler the connection whose state /readyz reports.
func (s *startingHandler) SetConn(nc *nats.Conn) { s.nc.Store(nc) }

// Set makes h answer every request from now on.
func (s *startingHandler) Set(h http.Handler) { s.real.Store(&h) }

// ServeHTTP implements http.Handler.
func (s *startingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := s.real.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	reason := "starting"
	if nc := s.nc.Load(); nc == nil || !nc.IsConnected() {
		reason = natsNotConnected
	}
	if r.URL.Path == "/healthz" {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": reason})
}

// natsNotConnected is the /readyz reason of every role while its NATS
// connection is down.
const natsNotConnected = "NATS not connected"
