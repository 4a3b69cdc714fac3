package auth

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/rs/zerolog"
)

// Rule says which scope a route needs. Pattern is an http.ServeMux
// pattern ("GET /v1/events", "/v1/commands/"); Scope "" leaves the route
// open.
type Rule struct {
	Pattern string
	Scope   Scope
}

// OpenRules are the routes that never need a token: liveness, readiness
// and metrics, for load balancers and Prometheus, and the API's OpenAPI
// document.
func OpenRules() []Rule {
	return []Rule{{"GET /healthz", ""}, {"GET /readyz", ""}, {"GET /metrics", ""}, {"GET /openapi.json", ""}}
}

// CommanderRules are the scopes of the command API.
func CommanderRules() []Rule {
	return []Rule{
		{"POST /v1/controllers/{serial}/commands", ScopeCommandsWrite},
		{"GET /v1/commands/{id}", ScopeCommandsRead},
		{"GET /v1/controllers", ScopeCommandsRead},
		{"GET /v1/controllers/{serial}", ScopeCommandsRead},
	}
}

// IngestRules are the scopes of the query API of ingest.
func IngestRules() []Rule {
	return []Rule{
		{"GET /v1/events", ScopeEventsRead},
		{"GET /v1/controllers/{serial}/events", ScopeEventsRead},
		{"GET /v1/controllers/{serial}/state", ScopeEventsRead},
		{"GET /v1/results/{id}", ScopeEventsRead},
	}
}

// Authenticator checks the bearer token of HTTP requests. With no tokens
// configured it lets every request through.
type Authenticator struct {
	tokens atomic.Pointer[Tokens]
	log    zerolog.Logger
}

// NewAuthenticator returns an Authenticator for tokens (nil or empty: the
// API is open). With no tokens it logs a warning once, now.
func NewAuthenticator(tokens *Tokens, log zerolog.Logger) *Authenticator {
	a := &Authenticator{log: log}
	if tokens == nil {
		tokens = &Tokens{}
	}
	a.tokens.Store(tokens)
	if tokens.Len() == 0 {
		log.Warn().Msg("no API tokens configured: the HTTP API is open to anyone who can reach it")
	}
	return a
}

// SetTokens replaces the token set (after the tokens file changed).
// Replacing a non-empty set with an empty one is refused: an API does not
// silently become open; it reports false then.
func (a *Authenticator) SetTokens(t *Tokens) bool {
	if t.Len() == 0 && a.tokens.Load().Len() > 0 {
		return false
	}
	a.tokens.Store(t)
	return true
}

// Open reports whether no tokens are configured.
func (a *Authenticator) Open() bool { return a.tokens.Load().Len() == 0 }

// Protect returns next guarded by rules and OpenRules: a request to a
// route of a rule needs a token with the rule's scope (or admin); a
// request to any other route needs an admin token. Without a token, or
// with an unknown one, the answer is 401 with a WWW-Authenticate: Bearer
// header; with a token lacking the scope, 403. Every answer of next
// passes through unchanged.
func (a *Authenticator) Protect(next http.Handler, rules ...Rule) http.Handler {
	mux := http.NewServeMux()
	for _, r := range append(OpenRules(), rules...) {
		if r.Scope == "" {
			mux.Handle(r.Pattern, next)
			continue
		}
		mux.Handle(r.Pattern, a.Require(r.Scope, next))
	}
	mux.Handle("/", a.Require(ScopeAdmin, next))
	return mux
}

// Require returns next guarded by scope (see Protect).
func (a *Authenticator) Require(scope Scope, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokens := a.tokens.Load()
		if tokens.Len() == 0 {
			next.ServeHTTP(w, r)
			return
		}
		secret, ok := bearer(r)
		if !ok {
			a.deny(w, r, http.StatusUnauthorized, `Bearer realm="scpgate"`, "unauthorized", "a bearer token is required", "no token")
			return
		}
		scopes, ok := tokens.lookup(secret)
		if !ok {
			a.deny(w, r, http.StatusUnauthorized, `Bearer realm="scpgate", error="invalid_token"`, "unauthorized", "invalid token", "invalid token")
			return
		}
		if !allows(scopes, scope) {
			a.deny(w, r, http.StatusForbidden, `Bearer realm="scpgate", error="insufficient_scope", scope="`+string(scope)+`"`,
				"forbidden", "the token lacks scope "+string(scope), "insufficient scope")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// deny answers a refused request in the error format of the APIs
// ({"error": ..., "code": ...}) and logs it, without the token.
func (a *Authenticator) deny(w http.ResponseWriter, r *http.Request, status int, challenge, code, msg, why string) {
	a.log.Info().Str("remote", r.RemoteAddr).Str("method", r.Method).Str("path", r.URL.Path).
		Int("status", status).Str("why", why).Msg("API request refused")
	w.Header().Set("WWW-Authenticate", challenge)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg, "code": code})
}
