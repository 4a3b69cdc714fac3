package ingest

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/internal/httpapi"
	"github.com/scpgate/scpgate/schema"
	"github.com/scpgate/scpgate/streams"
)

// Handler returns the query API over the service's store:
//
//	GET /v1/events?controller=&kind=&since=&until=&limit=&after=&order=asc|desc
//	GET /v1/controllers/{serial}/events?kind=&since=&until=&limit=&after=&order=
//	GET /v1/controllers/{serial}/state
//	GET /v1/results/{id}
//	GET /openapi.json    the OpenAPI document (package schema)
//
// since and until are RFC 3339 times (since inclusive, until exclusive);
// limit is 1 to 1000 (default 100); a page's "next" is passed as after to
// get the following page. Errors are JSON {"error": "...", "code": "..."}
// (package httpapi): 400 bad_request for a bad parameter, 404 not_found for
// an unknown controller, result or endpoint, 500 internal otherwise.
func (s *Service) Handler() http.Handler {
	return NewHandler(s.opts.Store, s.log)
}

// NewHandler returns the query API (see Service.Handler) over any store.
func NewHandler(store scpgate.Store, log zerolog.Logger) http.Handler {
	a := &api{store: store, log: log}
	mux := http.NewServeMux()
	for _, r := range a.routes() {
		mux.HandleFunc(r.pattern, r.fn)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteError(w, httpapi.Errorf(httpapi.CodeNotFound, nil, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// Routes returns the patterns the query API serves, for checks against
// the OpenAPI document.
func Routes() []string {
	var a *api
	var out []string
	for _, r := range a.routes() {
		out = append(out, r.pattern)
	}
	return out
}

type route struct {
	pattern string
	fn      http.HandlerFunc
}

func (a *api) routes() []route {
	return []route{
		{"GET /v1/events", a.events},
		{"GET /v1/controllers/{serial}/events", a.events},
		{"GET /v1/controllers/{serial}/state", a.state},
		{"GET /v1/results/{id}", a.result},
		{"GET /openapi.json", openAPI},
	}
}

// openAPI answers the bundled OpenAPI document.
func openAPI(w http.ResponseWriter, _ *http.Request) {
	b, err := schema.OpenAPI()
	if err != nil {
		httpapi.WriteError(w, httpapi.Errorf(httpapi.CodeInternal, err, "openapi document: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

type api struct {
	store scpgate.Store
	log   zerolog.Logger
}

// eventParams are the query parameters of the event endpoints.
var eventParams = map[string]bool{
	"controller": true, "kind": true, "since": true, "until": true, "limit": true, "after": true, "order": true,
}

func (a *api) events(w http.ResponseWriter, r *http.Request) {
	q, err := parseEventQuery(r)
	if err != nil {
		httpapi.WriteError(w, httpapi.Errorf(httpapi.CodeBadRequest, err, "%s", err))
		return
	}
	page, err := a.store.QueryEvents(r.Context(), q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, page)
}

// parseEventQuery reads the event query of r; its errors are
// *scpgate.QueryError.
func parseEventQuery(r *http.Request) (scpgate.EventQuery, error) {
	vals := r.URL.Query()
	for k, v := range vals {
		if !eventParams[k] {
			return scpgate.EventQuery{}, &scpgate.QueryError{Param: k, Reason: "unknown parameter"}
		}
		if len(v) > 1 {
			return scpgate.EventQuery{}, &scpgate.QueryError{Param: k, Reason: "given more than once"}
		}
	}
	q := scpgate.EventQuery{
		Controller: vals.Get("controller"),
		Kind:       scpgate.Kind(vals.Get("kind")),
		After:      vals.Get("after"),
		Order:      scpgate.Order(vals.Get("order")),
	}
	if serial := r.PathValue("serial"); serial != "" {
		if vals.Has("controller") {
			return q, &scpgate.QueryError{Param: "controller", Reason: "the controller is in the path"}
		}
		q.Controller = serial
	}
	if q.Controller != "" {
		if err := streams.ValidSerial(q.Controller); err != nil {
			return q, &scpgate.QueryError{Param: "controller", Reason: err.Error()}
		}
	}
	var err error
	if q.Since, err = parseTime(vals, "since"); err != nil {
		return q, err
	}
	if q.Until, err = parseTime(vals, "until"); err != nil {
		return q, err
	}
	if v := vals.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > scpgate.MaxQueryLimit {
			return q, &scpgate.QueryError{Param: "limit", Reason: strconv.Quote(v) + " is not a number from 1 to " + strconv.Itoa(scpgate.MaxQueryLimit)}
		}
		q.Limit = n
	}
	if _, err := q.Normalize(); err != nil {
		return q, err
	}
	return q, nil
}

func parseTime(vals map[string][]string, name string) (time.Time, error) {
	v := ""
	if s := vals[name]; len(s) > 0 {
		v = s[0]
	}
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil && strings.Contains(v, " ") {
		// An unescaped "+01:00" offset arrives as " 01:00".
		t, err = time.Parse(time.RFC3339Nano, strings.ReplaceAll(v, " ", "+"))
	}
	if err != nil {
		return time.Time{}, &scpgate.QueryError{Param: name, Reason: strconv.Quote(v) + " is not an RFC 3339 time such as 2026-01-02T15:04:05Z"}
	}
	return t, nil
}

func (a *api) state(w http.ResponseWriter, r *http.Request) {
	serial := r.PathValue("serial")
	if err := streams.ValidSerial(serial); err != nil {
		httpapi.WriteError(w, httpapi.Errorf(httpapi.CodeBadRequest, err, "%s", err))
		return
	}
	st, err := a.store.ControllerState(r.Context(), serial)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, st)
}

func (a *api) result(w http.ResponseWriter, r *http.Request) {
	res, err := a.store.ResultByID(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, res)
}

// fail answers a store error: 400 bad_request for a bad query, 404
// not_found, 500 internal (logged) otherwise.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var qe *scpgate.QueryError
	switch {
	case errors.As(err, &qe):
		httpapi.WriteError(w, httpapi.Errorf(httpapi.CodeBadRequest, err, "%s", qe))
	case errors.Is(err, scpgate.ErrNotFound):
		httpapi.WriteError(w, httpapi.Errorf(httpapi.CodeNotFound, err, "%s", err))
	case r.Context().Err() != nil:
		// the client went away; nothing to answer
	default:
		a.log.Error().Err(err).Str("path", r.URL.Path).Msg("query failed")
		httpapi.WriteError(w, httpapi.Errorf(httpapi.CodeInternal, err, "internal error"))
	}
}
