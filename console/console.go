// Package console is the operator's web console: a few static pages
// (HTML, CSS and JavaScript modules embedded in the binary, no build step
// and nothing fetched from elsewhere) and two JSON endpoints of its own
// that read over NATS what no other API serves: /console/api/fleet (the
// drivers, the controllers known and which driver holds each, the
// streams and the ingest lag) and
// /console/api/controllers/{serial}/commands (a controller's latest
// command status records).
//
// Everything else the pages show comes from the existing HTTP APIs of the
// commander (/v1/controllers, /v1/commands) and of ingest (state and
// events), called from the browser with the operator's bearer token, so
// the console needs the same token scopes as those APIs and adds none.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/auth"
	"github.com/scpgate/scpgate/internal/httpapi"
)

//go:embed assets
var assets embed.FS

// Prefix is the path the console is served under.
const Prefix = "/console/"

// Options configure the console.
type Options struct {
	// NC is the NATS connection the fleet view asks drivers, streams and
	// buckets through. Required.
	NC *nats.Conn
	// Durable is the name of the ingest consumer whose lag is shown
	// (default ingest.DefaultDurable, "scpgate-ingest").
	Durable string
	// Wait is how long driver answers are gathered (default 300 ms).
	Wait time.Duration
	// CacheFor is how long one fleet snapshot is served to every browser
	// before it is gathered again (default 2 s).
	CacheFor time.Duration
	// Log receives the console's own errors.
	Log zerolog.Logger
}

// Console serves the pages and the fleet endpoint.
type Console struct {
	opts  Options
	fleet *fleetCache
}

// New returns a console over opts.
func New(opts Options) *Console {
	if opts.Durable == "" {
		opts.Durable = ingest.DefaultDurable
	}
	if opts.Wait <= 0 {
		opts.Wait = 300 * time.Millisecond
	}
	if opts.CacheFor <= 0 {
		opts.CacheFor = 2 * time.Second
	}
	return &Console{opts: opts, fleet: newFleetCache(opts)}
}

// Rules are the scopes of the console's routes, for auth.Protect: the
// static pages are open (they hold no data and ask for a token when an API
// needs one); the fleet view and a controller's recent commands need
// commands:read, like the commander's controller list.
func Rules() []auth.Rule {
	return []auth.Rule{
		{Pattern: "GET /{$}", Scope: ""},
		{Pattern: "GET " + Prefix, Scope: ""},
		{Pattern: "GET " + Prefix + "api/fleet", Scope: auth.ScopeCommandsRead},
		{Pattern: "GET " + Prefix + "api/controllers/{serial}/commands", Scope: auth.ScopeCommandsRead},
	}
}

// Register adds the console's routes to mux: the pages under Prefix, the
// fleet endpoint, and a redirect from / to the console.
func (c *Console) Register(mux *http.ServeMux) {
	mux.Handle("GET "+Prefix, c.Pages())
	mux.HandleFunc("GET "+Prefix+"api/fleet", c.serveFleet)
	mux.HandleFunc("GET "+Prefix+"api/controllers/{serial}/commands", c.serveCommands)
	mux.Handle("GET /{$}", http.RedirectHandler(Prefix, http.StatusFound))
}

// Pages returns the handler of the static assets, to be mounted at Prefix.
func (c *Console) Pages() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree always has assets/
	}
	files := http.StripPrefix(Prefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// The assets change only with the binary; a short cache keeps
		// reloads fast without serving an old page after an upgrade.
		h.Set("Cache-Control", "max-age=60")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		files.ServeHTTP(w, r)
	})
}

// serveFleet answers GET /console/api/fleet?q=&status=&limit=.
func (c *Console) serveFleet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := filter{Query: strings.TrimSpace(q.Get("q")), Status: q.Get("status"), Limit: 100}
	switch f.Status {
	case "", "all", "online", "offline":
	default:
		httpapi.WriteError(w, httpapi.Errorf(httpapi.CodeBadRequest, nil, "status %q: want all, online or offline", f.Status))
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			httpapi.WriteError(w, httpapi.Errorf(httpapi.CodeBadRequest, nil, "limit %q: want 1 to 1000", v))
			return
		}
		f.Limit = n
	}
	snap, err := c.fleet.get(r.Context())
	if err != nil {
		c.opts.Log.Warn().Err(err).Msg("console fleet view")
		httpapi.WriteError(w, httpapi.Errorf(httpapi.CodeUnavailable, err, "%v", err))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, snap.view(f))
}
