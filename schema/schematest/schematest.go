// Package schematest holds test helpers that hold HTTP handlers to the
// OpenAPI document of package schema.
package schematest

import (
	"net/http"
	"testing"

	"github.com/scpgate/scpgate/schema"
)

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// DocumentedOnly wraps an API handler so that every answer a test sees
// from a route must be one openapi.json documents for that route. The
// catch-all "/" (a JSON 404 for a path that is no route) is not a route.
func DocumentedOnly(t testing.TB, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r) // the handler's mux sets r.Pattern
		if r.Pattern != "" && r.Pattern != "/" && !schema.Documented(r.Pattern, sw.code) {
			t.Errorf("%s answered %d, which openapi.json does not document", r.Pattern, sw.code)
		}
	})
}
