package console

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/internal/httpapi"
)

// IngestRoutes are the routes of the ingest query API that the
// controller page reads (state and events), for a server that serves the
// console without serving that API itself (the commander).
var IngestRoutes = []string{
	"GET /v1/controllers/{serial}/state",
	"GET /v1/controllers/{serial}/events",
	"GET /v1/events",
}

// RegisterIngestProxy adds IngestRoutes to mux, each passed on to the
// ingest HTTP API at base (http://ingest:8081, say) with the request's
// Authorization header: the token is checked here with the same rules
// (auth.IngestRules) and again by ingest.
func RegisterIngestProxy(mux *http.ServeMux, base string, log zerolog.Logger) error {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("console ingest URL %q: want http(s)://host:port", base)
	}
	p := httputil.NewSingleHostReverseProxy(u)
	p.Transport = &http.Transport{
		Proxy:                 nil,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
	}
	p.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		log.Warn().Err(err).Str("path", r.URL.Path).Str("ingest", u.Host).Msg("console: ingest API unreachable")
		httpapi.WriteJSON(w, http.StatusBadGateway, httpapi.ErrorBody{Error: "ingest API unreachable: " + err.Error(), Code: httpapi.CodeUnavailable})
	}
	for _, route := range IngestRoutes {
		mux.Handle(route, p)
	}
	return nil
}
