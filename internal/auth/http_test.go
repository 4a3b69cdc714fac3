package auth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/internal/auth"
	"github.com/scpgate/scpgate/internal/natstest"
)

const (
	tokRead  = "read-token-0123456789"
	tokWrite = "write-token-0123456789"
	tokAdmin = "admin-token-0123456789"
)

func TestParseTokens(t *testing.T) {
	good, err := auth.ParseTokens(tokRead + ":events:read, commands:read;" + tokWrite + ":commands:write\n# comment\n\n" + tokAdmin + ":admin;")
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if good.Len() != 3 {
		t.Errorf("got %d tokens, want 3", good.Len())
	}
	empty, err := auth.ParseTokens("  \n# nothing\n")
	if err != nil || empty.Len() != 0 {
		t.Errorf("empty list: got %d tokens, %v", empty.Len(), err)
	}
	secret := "s3cret-s3cret-s3cret"
	for _, bad := range []string{
		"short:admin",
		secret + ":",
		secret + ":admin,everything",
		secret,
		"with space in it 12345:admin",
		secret + ":admin;" + secret + ":events:read",
	} {
		_, err := auth.ParseTokens(bad)
		if !errors.Is(err, auth.ErrBadTokens) {
			t.Errorf("ParseTokens(%q): got %v, want ErrBadTokens", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("ParseTokens(%q): the error shows the token: %v", bad, err)
		}
	}
}

// TestProtect: 401 without or with an unknown token (WWW-Authenticate:
// Bearer), 403 without the route's scope, 200 with it or with admin; the
// open routes need nothing; unlisted routes need admin; no token is ever
// logged.
func TestProtect(t *testing.T) {
	tokens, err := auth.ParseTokens(tokRead + ":events:read;" + tokWrite + ":commands:write,commands:read;" + tokAdmin + ":admin")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	a := auth.NewAuthenticator(tokens, zerolog.New(&logs))
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	h := a.Protect(ok, append(auth.CommanderRules(), auth.IngestRules()...)...)

	tests := []struct {
		method, path, token string
		want                int
		challenge           string
	}{
		{"GET", "/v1/events", "", 401, `Bearer realm="scpgate"`},
		{"GET", "/v1/events", "not-a-token-at-all", 401, `error="invalid_token"`},
		{"GET", "/v1/events", tokRead, 200, ""},
		{"GET", "/v1/controllers/S1/state", tokRead, 200, ""},
		{"GET", "/v1/controllers/S1/events", tokWrite, 403, `scope="events:read"`},
		{"POST", "/v1/controllers/S1/commands", tokRead, 403, `error="insufficient_scope"`},
		{"POST", "/v1/controllers/S1/commands", tokWrite, 200, ""},
		{"GET", "/v1/commands/S1.4", tokWrite, 200, ""},
		{"GET", "/v1/controllers", tokRead, 403, `scope="commands:read"`},
		{"GET", "/v1/controllers/S1", tokAdmin, 200, ""},
		{"GET", "/v1/results/S1.4", tokAdmin, 200, ""},
		{"GET", "/stats", tokWrite, 403, `scope="admin"`},
		{"GET", "/stats", tokAdmin, 200, ""},
		{"GET", "/healthz", "", 200, ""},
		{"GET", "/readyz", "", 200, ""},
		{"GET", "/metrics", "", 200, ""},
		{"POST", "/metrics", "", 401, "Bearer"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.path, nil)
		if tt.token != "" {
			r.Header.Set("Authorization", "Bearer "+tt.token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("%s %s with %q: got %d, want %d", tt.method, tt.path, tt.token, w.Code, tt.want)
		}
		if got := w.Header().Get("WWW-Authenticate"); !strings.Contains(got, tt.challenge) || (tt.challenge == "") != (got == "") {
			t.Errorf("%s %s with %q: WWW-Authenticate %q, want it to contain %q", tt.method, tt.path, tt.token, got, tt.challenge)
		}
		if w.Code >= 400 && !strings.Contains(w.Body.String(), `"code"`) {
			t.Errorf("%s %s: body %q, want an error document", tt.method, tt.path, w.Body.String())
		}
	}
	for _, tok := range []string{tokRead, tokWrite, tokAdmin, "not-a-token-at-all"} {
		if strings.Contains(logs.String(), tok) {
			t.Errorf("a token was logged: %s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "API request refused") {
		t.Errorf("refusals not logged: %q", logs.String())
	}
}

// TestOpenAPI: without tokens every request passes and one warning is
// logged at construction; an empty token set cannot replace a real one.
func TestOpenAPI(t *testing.T) {
	var logs bytes.Buffer
	a := auth.NewAuthenticator(nil, zerolog.New(&logs))
	if !a.Open() || strings.Count(logs.String(), "no API tokens configured") != 1 {
		t.Errorf("open API: Open %v, logs %q", a.Open(), logs.String())
	}
	h := a.Protect(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }), auth.CommanderRules()...)
	for _, p := range []string{"/v1/controllers", "/stats", "/anything"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
		if w.Code != http.StatusNoContent {
			t.Errorf("GET %s on an open API: got %d", p, w.Code)
		}
	}
	if strings.Count(logs.String(), "no API tokens configured") != 1 {
		t.Errorf("warning logged more than once: %q", logs.String())
	}
	one, _ := auth.ParseTokens(tokAdmin + ":admin")
	if !a.SetTokens(one) || a.Open() {
		t.Fatal("SetTokens(one token) refused")
	}
	if a.SetTokens(&auth.Tokens{}) || a.Open() {
		t.Error("an empty token set reopened the API")
	}
}

// TestTokensFileReload: a changed tokens file takes effect without a
// restart; a broken one keeps the previous tokens.
func TestTokensFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, path, tokRead+":events:read\n")
	tokens, err := auth.LoadTokensFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a := auth.NewAuthenticator(tokens, testLog(t))
	h := a.Protect(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), auth.IngestRules()...)
	code := func(tok string) int {
		r := httptest.NewRequest("GET", "/v1/events", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { auth.WatchTokensFile(ctx, path, a, 10*time.Millisecond, testLog(t)) })

	if code(tokRead) != 200 || code(tokAdmin) != 401 {
		t.Fatalf("before: read %d, admin %d", code(tokRead), code(tokAdmin))
	}
	writeFile(t, path, "# rotated\n"+tokAdmin+":admin\n")
	natstest.CheckFor(t, 3*time.Second, 10*time.Millisecond, func() error {
		if code(tokAdmin) != 200 || code(tokRead) != 401 {
			return fmt.Errorf("after rotation: admin %d, read %d", code(tokAdmin), code(tokRead))
		}
		return nil
	})
	writeFile(t, path, "garbage without scopes, much longer now\n")
	time.Sleep(100 * time.Millisecond) // several polls: nothing may change
	if code(tokAdmin) != 200 {
		t.Error("a broken tokens file replaced the tokens")
	}
}
