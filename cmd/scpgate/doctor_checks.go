//go:build !driveronly

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/auth"
	"github.com/scpgate/scpgate/internal/envcheck"
	"github.com/scpgate/scpgate/internal/natsconn"
	"github.com/scpgate/scpgate/streams"
)

func envcheckStore(dsn string) (string, string, error) { return envcheck.ParseStore(dsn) }
func redactedDSN(dsn string) string                    { return envcheck.RedactDSN(dsn) }
func closestEnv(k string, known []string) string       { return envcheck.Closest(k, known) }

func unknownEnv(known []string) []string {
	return envcheck.Unknown(os.Environ(), "SCPGATE", known, ignoredEnv...)
}

// checkPorts tries each listen address of the roles.
func checkPorts(rep *doctorReport, cfgs roleConfigs) {
	seen := map[string]bool{}
	try := func(what, addr string) {
		if addr == "" || seen[addr] {
			return
		}
		seen[addr] = true
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			rep.problem("ports", "%s %s cannot be opened: %v", what, addr, err)
			return
		}
		ln.Close()
		rep.ok("ports", "%s %s is free", what, addr)
	}
	if c := cfgs.driver; c != nil {
		try("SCPGATE_LISTEN", c.Listen)
		try("SCPGATE_HTTP_LISTEN", c.HTTPListen)
	}
	if c := cfgs.ingest; c != nil {
		try("SCPGATE_HTTP_LISTEN", c.HTTPListen)
	}
	if c := cfgs.commander; c != nil {
		try("SCPGATE_HTTP_LISTEN", c.HTTPListen)
	}
}

// checkCertificates loads the controller port's certificate and key and
// checks the expiry of every certificate in use.
func checkCertificates(rep *doctorReport, cfgs roleConfigs, now time.Time) {
	if c := cfgs.driver; c != nil && c.TLSCert != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			rep.problem("certificates", "SCPGATE_TLS_CERT/SCPGATE_TLS_KEY: %v", err)
		} else {
			certExpiry(rep, "SCPGATE_TLS_CERT", c.TLSCert, now)
		}
		if c.TLSClientCA != "" {
			certExpiry(rep, "SCPGATE_TLS_CLIENT_CA", c.TLSClientCA, now)
		}
	}
	if n := cfgs.nats; n != nil {
		if n.TLSCert != "" {
			certExpiry(rep, "NATS_TLS_CERT", n.TLSCert, now)
		}
		if n.TLSCA != "" {
			certExpiry(rep, "NATS_TLS_CA", n.TLSCA, now)
		}
	}
}

// certExpiry checks every certificate of the PEM file path.
func certExpiry(rep *doctorReport, name, path string, now time.Time) {
	b, err := os.ReadFile(path)
	if err != nil {
		rep.problem("certificates", "%s: %v", name, err)
		return
	}
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			rep.problem("certificates", "%s (%s): %v", name, path, err)
			return
		}
		n++
		left := c.NotAfter.Sub(now)
		switch {
		case left <= 0:
			rep.problem("certificates", "%s (%s, %q) expired on %s", name, path, c.Subject.CommonName, c.NotAfter.UTC().Format(time.DateOnly))
		case left < certWarnBefore:
			rep.problem("certificates", "%s (%s, %q) expires in %d day(s), on %s", name, path, c.Subject.CommonName, int(left.Hours()/24), c.NotAfter.UTC().Format(time.DateOnly))
		case now.Before(c.NotBefore):
			rep.problem("certificates", "%s (%s, %q) is not valid before %s", name, path, c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339))
		default:
			rep.ok("certificates", "%s (%q) valid until %s", name, c.Subject.CommonName, c.NotAfter.UTC().Format(time.DateOnly))
		}
	}
	if n == 0 {
		rep.problem("certificates", "%s (%s): no PEM certificate in it", name, path)
	}
}

// checkAllowList loads the driver's allow list.
func checkAllowList(rep *doctorReport, cfgs roleConfigs) {
	c := cfgs.driver
	if c == nil || c.AllowList == "" {
		return
	}
	l, err := auth.LoadAllowList(c.AllowList, zerolog.Nop())
	switch {
	case err != nil:
		rep.problem("allow list", "SCPGATE_ALLOW_LIST: %v", err)
	case l.Len() == 0:
		rep.problem("allow list", "SCPGATE_ALLOW_LIST %s names no serial: every controller would be refused", c.AllowList)
	default:
		rep.ok("allow list", "SCPGATE_ALLOW_LIST %s admits %d serial(s)", c.AllowList, l.Len())
	}
}

// permErrors records the permission violations the server reports.
type permErrors struct {
	mu   sync.Mutex
	errs []string
}

func (p *permErrors) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(strings.ToLower(err.Error()), "permission") {
		p.mu.Lock()
		p.errs = append(p.errs, err.Error())
		p.mu.Unlock()
	}
}

// take returns and forgets the violations recorded so far.
func (p *permErrors) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.errs
	p.errs = nil
	return out
}

// checkNATS connects as the roles would and checks JetStream, the user's
// permissions and the streams' settings.
func checkNATS(ctx context.Context, rep *doctorReport, cfgs roleConfigs, timeout time.Duration) {
	if cfgs.nats == nil {
		return
	}
	perms := &permErrors{}
	// The client is named after the role checked, as its connection is
	// (one role: "scpgate-driver-doctor"), so that the connection gets the
	// inbox prefix that role's NATS user may subscribe to.
	name := "scpgate-doctor"
	if len(cfgs.roles) == 1 {
		name = "scpgate-" + cfgs.roles[0] + "-doctor"
	}
	nc, err := natsconn.Connect(*cfgs.nats, name, zerolog.Nop(), nats.Timeout(timeout), nats.ErrorHandler(perms.handler))
	if err != nil {
		rep.problem("nats", "%v", err)
		return
	}
	defer nc.Close()
	rep.ok("nats", "connected to %s (server %s, version %s)", nc.ConnectedUrlRedacted(), nc.ConnectedServerName(), nc.ConnectedServerVersion())
	js, err := jetstream.New(nc)
	if err != nil {
		rep.problem("nats", "jetstream: %v", err)
		return
	}
	// ask runs one JetStream request and reports a permission violation
	// (the server answers none; the request times out) as such.
	ask := func(what string, f func(context.Context) error) error {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		err := f(rctx)
		_ = nc.FlushTimeout(timeout) // let a pending -ERR arrive
		if v := perms.take(); len(v) > 0 {
			rep.problem("permissions", "%s: the NATS user may not: %s", what, v[0])
			return err
		}
		return err
	}
	if err := ask("JetStream account info", func(c context.Context) error { _, err := js.AccountInfo(c); return err }); err != nil {
		rep.problem("nats", "JetStream: %v", err)
		return
	}
	rep.ok("nats", "JetStream enabled")

	var want streams.Config
	if cfgs.streams != nil {
		want = cfgs.streams.config()
	}
	expected := map[string]jetstream.StreamConfig{
		streams.EventsStream:   streams.EventsStreamConfig(want),
		streams.CommandsStream: streams.CommandsStreamConfig(want),
		streams.ResultsStream:  streams.ResultsStreamConfig(want),
	}
	for _, name := range []string{streams.EventsStream, streams.CommandsStream, streams.ResultsStream} {
		var info *jetstream.StreamInfo
		err := ask("stream info "+name, func(c context.Context) error {
			s, err := js.Stream(c, name)
			if err == nil {
				info = s.CachedInfo()
			}
			return err
		})
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			rep.ok("streams", "%s does not exist yet; the first role to start creates it", name)
			continue
		case err != nil:
			rep.problem("permissions", "stream info %s: %v", name, err)
			continue
		}
		rep.ok("permissions", "stream info %s", name)
		if cfgs.streams == nil {
			rep.problem("streams", "%s: %v", name, errNoStreams)
			continue
		}
		if diffs := streamDiffs(info.Config, expected[name]); len(diffs) > 0 {
			rep.problem("streams", "%s differs from the settings: %s", name, strings.Join(diffs, "; "))
		} else {
			rep.ok("streams", "%s matches the settings (replicas %d, max age %s)", name, info.Config.Replicas, info.Config.MaxAge)
		}
	}

	buckets := []string{}
	if cfgs.driver != nil || cfgs.commander != nil {
		buckets = append(buckets, streams.SessionsBucket)
	}
	if cfgs.ingest != nil {
		buckets = append(buckets, streams.StateBucket)
	}
	for _, b := range buckets {
		err := ask("bucket "+b, func(c context.Context) error { _, err := js.KeyValue(c, b); return err })
		switch {
		case errors.Is(err, jetstream.ErrBucketNotFound):
			rep.ok("permissions", "bucket %s does not exist yet", b)
		case err != nil:
			rep.problem("permissions", "bucket %s: %v", b, err)
		default:
			rep.ok("permissions", "bucket %s", b)
		}
	}
	if c := cfgs.ingest; c != nil {
		durable := c.Durable
		if durable == "" {
			durable = ingest.DefaultDurable
		}
		err := ask("consumer "+durable, func(cx context.Context) error { _, err := js.Consumer(cx, streams.EventsStream, durable); return err })
		switch {
		case err == nil, errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
			rep.ok("permissions", "consumer info %s on %s", durable, streams.EventsStream)
		default:
			rep.problem("permissions", "consumer info %s on %s: %v", durable, streams.EventsStream, err)
		}
	}
}

// streamDiffs lists the settings of have that differ from want.
func streamDiffs(have, want jetstream.StreamConfig) []string {
	var d []string
	if have.Replicas != want.Replicas {
		d = append(d, fmt.Sprintf("replicas %d, SCPGATE_REPLICAS says %d", have.Replicas, want.Replicas))
	}
	if have.MaxAge != want.MaxAge {
		d = append(d, fmt.Sprintf("max age %s, the settings say %s", have.MaxAge, want.MaxAge))
	}
	if have.Duplicates != want.Duplicates {
		d = append(d, fmt.Sprintf("duplicate window %s, SCPGATE_DUPLICATE_WINDOW gives %s", have.Duplicates, want.Duplicates))
	}
	unlimited := func(n int64) int64 { return max(n, -1) } // the server stores 0 (none) as -1
	if unlimited(have.MaxMsgsPerSubject) != unlimited(want.MaxMsgsPerSubject) && !(have.MaxMsgsPerSubject <= 0 && want.MaxMsgsPerSubject <= 0) {
		d = append(d, fmt.Sprintf("per-controller cap %d, SCPGATE_COMMAND_QUEUE_CAP says %d", have.MaxMsgsPerSubject, want.MaxMsgsPerSubject))
	}
	if have.Storage != want.Storage {
		d = append(d, fmt.Sprintf("storage %s, the settings say %s", have.Storage, want.Storage))
	}
	return d
}

// checkTokens checks the API tokens of the HTTP roles as they would load
// them; an open API is said so.
func checkTokens(ctx context.Context, rep *doctorReport, cfgs roleConfigs) {
	seen := map[APIAuthEnv]bool{}
	for _, e := range []struct {
		role string
		env  *APIAuthEnv
	}{{"ingest", apiEnvOf(cfgs.ingest)}, {"commander", apiEnvOfCommander(cfgs.commander)}} {
		if e.env == nil || seen[*e.env] {
			continue
		}
		seen[*e.env] = true
		if e.env.APITokens == "" && e.env.APITokensFile == "" {
			rep.ok("api tokens", "%s: no SCPGATE_API_TOKENS or SCPGATE_API_TOKENS_FILE: the HTTP API is open to anyone who reaches it (fine in development only)", e.role)
			continue
		}
		actx, cancel := context.WithCancel(ctx)
		_, err := e.env.authenticator(actx, zerolog.Nop())
		cancel()
		if err != nil {
			rep.problem("api tokens", "%s: %v", e.role, err)
			continue
		}
		rep.ok("api tokens", "%s: tokens load", e.role)
	}
}

func apiEnvOf(c *ingestConfig) *APIAuthEnv {
	if c == nil {
		return nil
	}
	return &c.APIAuthEnv
}

func apiEnvOfCommander(c *commanderConfig) *APIAuthEnv {
	if c == nil {
		return nil
	}
	return &c.APIAuthEnv
}
