package commander

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scpgate/scpgate/internal/httpapi"
	"github.com/scpgate/scpgate/internal/strictjson"
	"github.com/scpgate/scpgate/schema"
)

// MaxBodyBytes is the largest request body accepted (64 KiB).
const MaxBodyBytes = 64 << 10

// Handler returns the HTTP JSON API:
//
//	POST /v1/controllers/{serial}/commands[?wait=5s]
//	     body {type, params, ttl, idempotency_key}
//	     202 the command document (queued or sent), 200 with a final status
//	GET  /v1/commands/{id}            200 the command document
//	GET  /v1/controllers[?after=&limit=]  200 ControllerList
//	GET  /v1/controllers/{serial}     200 Controller
//	GET  /openapi.json                the OpenAPI document (package schema)
//
// Errors answer {"error": "...", "code": "..."} with Code.HTTPStatus.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range s.routes() {
		mux.HandleFunc(r.pattern, r.fn)
	}
	return mux
}

type route struct {
	pattern string
	fn      http.HandlerFunc
}

func (s *Service) routes() []route {
	return []route{
		{"POST /v1/controllers/{serial}/commands", s.httpSubmit},
		{"GET /v1/commands/{id}", s.httpGet},
		{"GET /v1/controllers", s.httpControllers},
		{"GET /v1/controllers/{serial}", s.httpController},
		{"GET /openapi.json", serveOpenAPI},
	}
}

// Routes returns the patterns Handler serves, for checks against the
// OpenAPI document.
func Routes() []string {
	var s *Service
	var out []string
	for _, r := range s.routes() {
		out = append(out, r.pattern)
	}
	return out
}

// serveOpenAPI answers the bundled OpenAPI document.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	b, err := schema.OpenAPI()
	if err != nil {
		httpapi.WriteError(w, apiErr(CodeInternal, err, "openapi document: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// checkQuery refuses a query parameter that is not one of allowed, or
// that is given twice: names are case-sensitive, like JSON keys.
func checkQuery(r *http.Request, allowed ...string) error {
	for k, v := range r.URL.Query() {
		if !slices.Contains(allowed, k) {
			return apiErr(CodeBadRequest, nil, "unknown query parameter %q", k)
		}
		if len(v) > 1 {
			return apiErr(CodeBadRequest, nil, "query parameter %q given more than once", k)
		}
	}
	return nil
}

func (s *Service) httpSubmit(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "wait"); err != nil {
		s.writeError(w, err)
		return
	}
	var req SubmitRequest
	if err := decodeBody(http.MaxBytesReader(w, r.Body, MaxBodyBytes), &req); err != nil {
		s.writeError(w, err)
		return
	}
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			s.writeError(w, apiErr(CodeBadRequest, err, "wait %q: not a duration like \"5s\"", v))
			return
		}
		req.Wait = d
	}
	resp, err := s.Submit(r.Context(), r.PathValue("serial"), req)
	if err != nil {
		s.writeError(w, err)
		return
	}
	status := http.StatusAccepted
	if resp.Result != nil {
		status = http.StatusOK
	}
	httpapi.WriteJSON(w, status, resp)
}

func (s *Service) httpGet(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		s.writeError(w, err)
		return
	}
	rec, err := s.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, rec)
}

func (s *Service) httpControllers(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "after", "limit"); err != nil {
		s.writeError(w, err)
		return
	}
	q := r.URL.Query()
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			s.writeError(w, apiErr(CodeBadRequest, err, "limit %q: not a number", v))
			return
		}
		limit = n
	}
	list, err := s.Controllers(r.Context(), q.Get("after"), limit)
	if err != nil {
		s.writeError(w, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, list)
}

func (s *Service) httpController(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		s.writeError(w, err)
		return
	}
	c, err := s.Controller(r.Context(), r.PathValue("serial"))
	if err != nil {
		s.writeError(w, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, c)
}

// decodeBody decodes one JSON value from r into v strictly (package
// strictjson): unknown fields, fields that differ from a known one only in
// case, repeated fields and trailing data are refused. Errors are *Error
// values naming what is wrong.
func decodeBody(r io.Reader, v any) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return decodeError(err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return apiErr(CodeBadRequest, io.EOF, "empty request body")
	}
	err = strictjson.Unmarshal(data, v)
	var keyErr *strictjson.KeyError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &keyErr):
		return apiErr(CodeBadRequest, err, "%s", keyErr)
	case errors.Is(err, strictjson.ErrTrailingData):
		return apiErr(CodeBadRequest, err, "request body holds more than one JSON value")
	}
	return decodeError(err)
}

// decodeError turns a JSON decoding error into an *Error.
func decodeError(err error) *Error {
	var (
		maxErr  *http.MaxBytesError
		typeErr *json.UnmarshalTypeError
		synErr  *json.SyntaxError
	)
	switch {
	case errors.As(err, &maxErr):
		return apiErr(CodeBadRequest, err, "request body over %d KiB", maxErr.Limit>>10)
	case errors.As(err, &typeErr):
		if param, ok := strings.CutPrefix(typeErr.Field, "params."); ok {
			return apiErr(CodeBadParams, err, "param %s: %s does not fit %s", param, typeErr.Value, typeErr.Type)
		}
		return apiErr(CodeBadRequest, err, "field %s: %s does not fit %s", typeErr.Field, typeErr.Value, typeErr.Type)
	case errors.As(err, &synErr):
		return apiErr(CodeBadRequest, err, "malformed JSON at byte %d: %s", synErr.Offset, err)
	case errors.Is(err, io.EOF):
		return apiErr(CodeBadRequest, err, "empty request body")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apiErr(CodeBadRequest, err, "truncated request body")
	}
	// Unknown fields and values a field's own decoder refuses (a time that
	// does not parse) come here.
	return apiErr(CodeBadRequest, err, "%s", strings.TrimPrefix(err.Error(), "json: "))
}

// writeError answers err as JSON with its code's status; an internal
// error is logged.
func (s *Service) writeError(w http.ResponseWriter, err error) {
	if e := asAPIError(err); e.Code == CodeInternal {
		s.log.Error().Err(err).Msg("internal error")
	}
	httpapi.WriteError(w, err)
}
