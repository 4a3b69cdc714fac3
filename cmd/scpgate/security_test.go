//go:build !driveronly

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/auth"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/sqlite"
	"github.com/scpgate/scpgate/streams"
)

// devFiles writes a dev CA, a server certificate for 127.0.0.1 and client
// certificates for serials into dir and returns the CA.
func devFiles(t *testing.T, dir string, serials ...string) *auth.DevCA {
	t.Helper()
	ca, err := auth.NewDevCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.WritePEM(dir, "server", srv); err != nil {
		t.Fatal(err)
	}
	for _, s := range serials {
		c, err := ca.Client(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := auth.WritePEM(dir, s, c); err != nil {
			t.Fatal(err)
		}
	}
	return ca
}

// TestSimOverMutualTLS: `scpgate sim --tls-ca --tls-cert-dir` against a
// driver configured like `scpgate driver` with SCPGATE_TLS_CERT, _KEY and
// _CLIENT_CA: every controller presents its own certificate and all their
// transactions are acknowledged.
func TestSimOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	devFiles(t, dir, "TLS000000", "TLS000001", "TLS000002")
	t.Setenv("SCPGATE_TLS_CERT", filepath.Join(dir, "server.crt"))
	t.Setenv("SCPGATE_TLS_KEY", filepath.Join(dir, "server.key"))
	t.Setenv("SCPGATE_TLS_CLIENT_CA", filepath.Join(dir, "ca.crt"))
	var env driverConfig
	if err := loadEnv("SCPGATE", &env); err != nil {
		t.Fatal(err)
	}
	st, requireSerial, err := env.serverTLS(quietLog(t))
	if err != nil || st == nil || !requireSerial || st.Config().ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("serverTLS: %v, %v, %v", st, requireSerial, err)
	}
	cfg := st.Config()
	s := natstest.RunServer(t)
	d, err := driver.New(driver.Options{ID: "tls", Listen: "127.0.0.1:0", NATS: natstest.Connect(t, s, nats.MaxReconnects(-1)),
		Log: quietLog(t), TLS: cfg, RequireCertSerial: requireSerial})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	o := simOptions{
		target: d.Addr().String(), controllers: 3, rate: 20, duration: 500 * time.Millisecond, serialPrefix: "TLS",
		drainTimeout: 10 * time.Second, ramp: 1000, logCapacity: 10000, seed: 1,
		tls: simTLS{ca: filepath.Join(dir, "ca.crt"), certDir: dir},
	}
	rep, err := runSimFleet(ctx, o, quietLog(t), func(time.Duration, sim.Report, bool) {})
	if err != nil {
		t.Fatalf("sim: %v (report %+v)", err, rep)
	}
	if rep.Generated == 0 || rep.Acked != rep.Generated || rep.Connected != 3 || rep.Rejected != 0 {
		t.Errorf("report %+v: want all 3 connected and everything acked", rep)
	}
	if st := d.Stats(); st.Established < 3 || st.Rejected(scpbridge.RejectCertificateMismatch) != 0 {
		t.Errorf("driver stats %+v", st)
	}

	// One certificate for all: the serials do not match it.
	o.tls = simTLS{ca: filepath.Join(dir, "ca.crt"), cert: filepath.Join(dir, "TLS000000.crt"), key: filepath.Join(dir, "TLS000000.key")}
	o.serialPrefix, o.controllers, o.drainTimeout, o.duration = "OTHER", 1, 0, 300*time.Millisecond
	if _, err := runSimFleet(ctx, o, quietLog(t), func(time.Duration, sim.Report, bool) {}); err != nil {
		t.Fatalf("sim with a shared certificate: %v", err)
	}
	if n := d.Stats().Rejected(scpbridge.RejectCertificateMismatch); n == 0 {
		t.Error("a controller with another serial's certificate was not refused")
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	devFiles(t, dir)
	crt, key, ca := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"), filepath.Join(dir, "ca.crt")
	for _, tc := range []struct {
		name string
		env  ControllerSecurityEnv
		ok   bool
		tls  bool
	}{
		{"none", ControllerSecurityEnv{}, true, false},
		{"server only", ControllerSecurityEnv{TLSCert: crt, TLSKey: key}, true, true},
		{"verify-if-given", ControllerSecurityEnv{TLSCert: crt, TLSKey: key, TLSClientCA: ca, TLSClientAuth: "verify-if-given"}, true, true},
		{"cert without key", ControllerSecurityEnv{TLSCert: crt}, false, false},
		{"client CA without cert", ControllerSecurityEnv{TLSClientCA: ca}, false, false},
		{"bad client auth", ControllerSecurityEnv{TLSCert: crt, TLSKey: key, TLSClientCA: ca, TLSClientAuth: "maybe"}, false, false},
		{"missing file", ControllerSecurityEnv{TLSCert: crt + ".nope", TLSKey: key}, false, false},
		{"CA not PEM", ControllerSecurityEnv{TLSCert: crt, TLSKey: key, TLSClientCA: key + ".nope"}, false, false},
	} {
		cfg, _, err := tc.env.serverTLS(quietLog(t))
		if (err == nil) != tc.ok || (cfg != nil) != tc.tls {
			t.Errorf("%s: got %v, %v; want ok %v, tls %v", tc.name, cfg != nil, err, tc.ok, tc.tls)
		}
	}
	for _, o := range []simTLS{{certDir: dir}, {ca: ca, cert: crt}, {ca: ca, cert: crt, key: key, certDir: dir}, {ca: ca, certDir: dir + "/nope"}} {
		if _, err := o.configFor(); err == nil {
			t.Errorf("sim TLS %+v accepted", o)
		}
	}
	f, err := simTLS{ca: ca, certDir: dir}.configFor()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f("NOCERT").GetClientCertificate(nil); !errors.Is(err, errNoSerialCert) {
		t.Errorf("serial without a certificate file: %v", err)
	}
}

// request sends method path with token (none when "") to h and returns
// the status code and body.
func request(h http.Handler, method, path, token, body string) (int, string) {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Body)
	return w.Code, string(b)
}

// TestAPITokens: the commander and ingest HTTP servers as the commands
// wire them answer 401 without a token, 403 without the scope, serve with
// it, and keep /healthz, /readyz and /metrics open.
func TestAPITokens(t *testing.T) {
	const writer, reader, events = "writer-token-000000", "reader-token-000000", "events-token-000000"
	t.Setenv("SCPGATE_API_TOKENS", writer+":commands:write;"+reader+":commands:read;"+events+":events:read")
	// Read as the commands read it: embedded in their config structs.
	var env commanderConfig
	if err := loadEnv("SCPGATE", &env); err != nil {
		t.Fatal(err)
	}
	var icfg ingestConfig
	if err := loadEnv("SCPGATE", &icfg); err != nil || icfg.APITokens != env.APITokens {
		t.Fatalf("ingest config: %q, %v", icfg.APITokens, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	authn, err := env.authenticator(ctx, quietLog(t))
	if err != nil || authn.Open() {
		t.Fatalf("authenticator: open %v, %v", authn != nil && authn.Open(), err)
	}

	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	js := natstest.JetStream(t, nc)
	if _, err := streams.Ensure(ctx, js, streams.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	svc, err := commander.New(commander.Options{JS: js, NC: nc, Log: quietLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "api.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ing, err := ingest.New(ingest.Options{JS: js, Store: store, Log: quietLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	ih, err := ingestHTTP(ing, nc, time.Minute, authn)
	if err != nil {
		t.Fatal(err)
	}
	// The commander serves the console and passes its ingest reads on.
	ingestSrv := httptest.NewServer(ih)
	defer ingestSrv.Close()
	env.ConsoleIngestURL = ingestSrv.URL
	ch, err := commanderHTTP(svc, nc, authn, env, quietLog(t))
	if err != nil {
		t.Fatal(err)
	}

	submit := `{"type":"id_request"}`
	for _, tc := range []struct {
		h                   http.Handler
		method, path, token string
		body                string
		want                int
	}{
		{ch, "POST", "/v1/controllers/C1/commands", "", submit, 401},
		{ch, "POST", "/v1/controllers/C1/commands", "wrong-token-0000000", submit, 401},
		{ch, "POST", "/v1/controllers/C1/commands", reader, submit, 403},
		{ch, "POST", "/v1/controllers/C1/commands", writer, submit, 202},
		{ch, "GET", "/v1/controllers", events, "", 403},
		{ch, "GET", "/v1/controllers", reader, "", 200},
		{ch, "GET", "/v1/commands/C1.1", reader, "", 200},
		{ch, "GET", "/healthz", "", "", 200},
		{ch, "GET", "/readyz", "", "", 200},
		{ih, "GET", "/v1/events?controller=C1", "", "", 401},
		{ih, "GET", "/v1/events?controller=C1", writer, "", 403},
		{ih, "GET", "/v1/events?controller=C1", events, "", 200},
		{ih, "GET", "/healthz", "", "", 200},
		{ch, "GET", "/", "", "", 302},
		{ch, "GET", "/console/", "", "", 200},
		{ch, "GET", "/console/app.js", "", "", 200},
		{ch, "GET", "/console/api/fleet", "", "", 401},
		{ch, "GET", "/console/api/fleet", events, "", 403},
		{ch, "GET", "/console/api/fleet", reader, "", 200},
		{ch, "GET", "/v1/controllers/C1/state", writer, "", 403},
		{ch, "GET", "/v1/controllers/C1/state", events, "", 404}, // ingest's answer: no state of C1
		{ch, "GET", "/v1/controllers/C1/events", events, "", 200},
		{ch, "GET", "/openapi.json", "", "", 200},
		{ih, "GET", "/openapi.json", "", "", 200},
	} {
		if code, body := request(tc.h, tc.method, tc.path, tc.token, tc.body); code != tc.want {
			t.Errorf("%s %s with %q: got %d %s, want %d", tc.method, tc.path, tc.token, code, body, tc.want)
		}
	}
	for name, h := range map[string]http.Handler{"commander": ch, "ingest": ih} {
		code, body := request(h, "GET", "/metrics", "", "")
		if code != 200 {
			t.Fatalf("%s /metrics: %d", name, code)
		}
		for _, want := range []string{
			`scpgate_http_requests_total{code="401",route="`, `service="` + name + `"`, "scpgate_nats_connected 1",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("%s /metrics lacks %q", name, want)
			}
		}
	}
	if _, body := request(ch, "GET", "/metrics", "", ""); !strings.Contains(body, `code="202",route="POST /v1/controllers/{serial}/commands"`) {
		t.Error("commander /metrics does not count submissions by code")
	}
	if _, body := request(ih, "GET", "/metrics", "", ""); !strings.Contains(body, "scpgate_ingest_lag_pending") {
		t.Error("ingest /metrics lacks the lag")
	}

	t.Setenv("SCPGATE_API_TOKENS", "tiny:admin")
	if err := loadEnv("SCPGATE", &env); err != nil {
		t.Fatal(err)
	}
	if _, err := env.authenticator(ctx, quietLog(t)); err == nil || strings.Contains(err.Error(), "tiny") {
		t.Errorf("bad token list: %v (must fail without showing the token)", err)
	}
}
