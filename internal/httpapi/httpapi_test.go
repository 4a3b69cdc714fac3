package httpapi_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/scpgate/scpgate/internal/httpapi"
)

// TestWriteError checks the error document and status of each code, and
// that an error of no code answers 500 internal.
func TestWriteError(t *testing.T) {
	for _, tt := range []struct {
		err    error
		status int
		code   httpapi.Code
	}{
		{httpapi.Errorf(httpapi.CodeBadRequest, nil, "limit %q: not a number", "x"), 400, httpapi.CodeBadRequest},
		{httpapi.Errorf(httpapi.CodeNotFound, nil, "no such command"), 404, httpapi.CodeNotFound},
		{httpapi.Errorf(httpapi.CodeQueueFull, nil, "full"), 429, httpapi.CodeQueueFull},
		{errors.New("disk on fire"), 500, httpapi.CodeInternal},
	} {
		w := httptest.NewRecorder()
		httpapi.WriteError(w, tt.err)
		var body map[string]string
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if w.Code != tt.status || body["code"] != string(tt.code) || body["error"] != tt.err.Error() || len(body) != 2 {
			t.Errorf("%v: got %d %v, want %d {error: %q, code: %q}", tt.err, w.Code, body, tt.status, tt.err, tt.code)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("content type %q", ct)
		}
	}
}

// TestReadyz checks both answers of a readiness probe.
func TestReadyz(t *testing.T) {
	reason := ""
	mux := http.NewServeMux()
	httpapi.HandleHealth(mux, func() (string, map[string]any) { return reason, map[string]any{"lag": 3} })
	get := func(path string) (int, map[string]any) {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		return w.Code, body
	}
	if code, body := get("/readyz"); code != 200 || body["status"] != "ok" || body["lag"] != 3.0 || body["reason"] != nil {
		t.Errorf("ready: got %d %v", code, body)
	}
	reason = httpapi.NATSNotConnected
	if code, body := get("/readyz"); code != 503 || body["status"] != "unavailable" || body["reason"] != reason || body["lag"] != 3.0 {
		t.Errorf("not ready: got %d %v, want 503 with reason %q", code, body, reason)
	}
	if code, body := get("/healthz"); code != 200 || body["status"] != "ok" {
		t.Errorf("healthz: got %d %v", code, body)
	}
}
