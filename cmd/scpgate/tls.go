package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/internal/auth"
)

// ControllerSecurityEnv is the part of the driver's environment that
// secures the controller port (prefix SCPGATE_).
type ControllerSecurityEnv struct {
	TLSCert       string `envconfig:"TLS_CERT" desc:"controller port TLS certificate (PEM); with TLS_KEY turns TLS on"`
	TLSKey        string `envconfig:"TLS_KEY" desc:"key of TLS_CERT (PEM)"`
	TLSClientCA   string `envconfig:"TLS_CLIENT_CA" desc:"CA bundle (PEM) of controller client certificates; turns client authentication on"`
	TLSClientAuth string `envconfig:"TLS_CLIENT_AUTH" default:"require" desc:"with TLS_CLIENT_CA: require, or verify-if-given (controllers without a certificate are let in)"`
	AllowList     string `envconfig:"ALLOW_LIST" desc:"file of admitted serials, one per line (# comments); reloaded on SIGHUP or change"`
	Secrets       string `envconfig:"CONTROLLER_SECRETS" desc:"file of controller shared secrets, SERIAL SECRET or SERIAL sha256:HEX per line; a listed serial must send its secret in its hello (protocol 1.1); reloaded on SIGHUP or change"`
	// MaxSessions and UnknownSerialRate bound what unauthenticated peers
	// can cost (driver.Options).
	MaxSessions       int     `envconfig:"MAX_SESSIONS" default:"0" desc:"most sessions of this driver; a new serial past it is refused with busy (0: no cap)"`
	UnknownSerialRate float64 `envconfig:"UNKNOWN_SERIAL_RATE" default:"50" desc:"serials never seen before recorded (with their presence) per second; others wait their turn (negative: no limit)"`
}

// serverTLS loads the TLS configuration of the controller port (nil
// without a certificate) and says whether client certificates must name
// the serial of their hello. The caller keeps it current with Watch.
func (e ControllerSecurityEnv) serverTLS(log zerolog.Logger) (*auth.ServerTLS, bool, error) {
	if (e.TLSCert == "") != (e.TLSKey == "") {
		return nil, false, usageErrorf("SCPGATE_TLS_CERT and SCPGATE_TLS_KEY must be set together")
	}
	if e.TLSCert == "" {
		if e.TLSClientCA != "" {
			return nil, false, usageErrorf("SCPGATE_TLS_CLIENT_CA needs SCPGATE_TLS_CERT and SCPGATE_TLS_KEY")
		}
		return nil, false, nil
	}
	clientAuth := tls.NoClientCert
	if e.TLSClientCA != "" {
		switch e.TLSClientAuth {
		case "require", "":
			clientAuth = tls.RequireAndVerifyClientCert
		case "verify-if-given":
			clientAuth = tls.VerifyClientCertIfGiven
		default:
			return nil, false, usageErrorf("SCPGATE_TLS_CLIENT_AUTH %q: want require or verify-if-given", e.TLSClientAuth)
		}
	}
	st, err := auth.LoadServerTLS(e.TLSCert, e.TLSKey, e.TLSClientCA, clientAuth, log)
	if err != nil {
		return nil, false, fmt.Errorf("controller TLS: %w", err)
	}
	return st, e.TLSClientCA != "", nil
}

// allowList loads the allow-list, when one is configured, and keeps it
// current until ctx ends. nil means every serial is admitted.
func (e ControllerSecurityEnv) allowList(ctx context.Context, log zerolog.Logger) (*auth.AllowList, error) {
	if e.AllowList == "" {
		return nil, nil
	}
	l, err := auth.LoadAllowList(e.AllowList, log)
	if err != nil {
		return nil, err
	}
	go l.Watch(ctx, 0)
	return l, nil
}

// secrets loads the controller secrets, when configured, and keeps them
// current until ctx ends. Without TLS on the controller port the secrets
// cross the network in the clear: that is logged.
func (e ControllerSecurityEnv) secrets(ctx context.Context, log zerolog.Logger) (*auth.Secrets, error) {
	if e.Secrets == "" {
		return nil, nil
	}
	s, err := auth.LoadSecrets(e.Secrets, log)
	if err != nil {
		return nil, err
	}
	if e.TLSCert == "" {
		log.Warn().Msg("controller secrets without TLS on the controller port: anyone on the path can read them")
	}
	go s.Watch(ctx, 0)
	return s, nil
}

// APIAuthEnv is the part of an HTTP API's environment that says who may
// call it (prefix SCPGATE_).
type APIAuthEnv struct {
	APITokens     string `envconfig:"API_TOKENS" desc:"bearer tokens of the HTTP API: token:scope,scope;token:scope (scopes events:read, commands:write, commands:read, admin; a token is at least 16 characters); none: the API is open"`
	APITokensFile string `envconfig:"API_TOKENS_FILE" desc:"file of tokens, one token:scope,scope per line; reloaded on SIGHUP or change"`
}

// authenticator returns the API's authenticator. With a tokens file it
// keeps the tokens current until ctx ends.
func (e APIAuthEnv) authenticator(ctx context.Context, log zerolog.Logger) (*auth.Authenticator, error) {
	if e.APITokens != "" && e.APITokensFile != "" {
		return nil, usageErrorf("set SCPGATE_API_TOKENS or SCPGATE_API_TOKENS_FILE, not both")
	}
	var tokens *auth.Tokens
	var err error
	switch {
	case e.APITokensFile != "":
		tokens, err = auth.LoadTokensFile(e.APITokensFile)
		if err == nil && tokens.Len() == 0 {
			err = fmt.Errorf("API tokens file %s: no token", e.APITokensFile)
		}
	default:
		tokens, err = auth.ParseTokens(e.APITokens)
		if err != nil {
			err = fmt.Errorf("SCPGATE_API_TOKENS: %w", err)
		}
	}
	if err != nil {
		return nil, err
	}
	a := auth.NewAuthenticator(tokens, log)
	if e.APITokensFile != "" {
		go auth.WatchTokensFile(ctx, e.APITokensFile, a, 0, log)
	}
	return a, nil
}

// simTLS is the TLS command line of `scpgate sim`.
type simTLS struct {
	ca, certDir, cert, key, serverName string
}

// configFor returns the per-controller TLS configuration of the fleet, or
// nil without --tls-ca. With --tls-cert-dir each controller presents
// <dir>/<serial>.crt and .key, read at every handshake (so that 19,000
// controllers do not hold 19,000 parsed certificates); with --tls-cert and
// --tls-key all present the same one.
func (o simTLS) configFor() (func(serial string) *tls.Config, error) {
	if o.ca == "" {
		if o.certDir != "" || o.cert != "" || o.key != "" || o.serverName != "" {
			return nil, usageErrorf("--tls-cert-dir, --tls-cert, --tls-key and --tls-server-name need --tls-ca")
		}
		return nil, nil
	}
	if (o.cert == "") != (o.key == "") {
		return nil, usageErrorf("--tls-cert and --tls-key go together")
	}
	if o.cert != "" && o.certDir != "" {
		return nil, usageErrorf("use --tls-cert-dir or --tls-cert/--tls-key, not both")
	}
	pool, err := auth.LoadCAPool(o.ca)
	if err != nil {
		return nil, err
	}
	base := &tls.Config{RootCAs: pool, ServerName: o.serverName, MinVersion: tls.VersionTLS12}
	switch {
	case o.cert != "":
		cert, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			return nil, fmt.Errorf("load --tls-cert: %w", err)
		}
		base.Certificates = []tls.Certificate{cert}
	case o.certDir != "":
		if fi, err := os.Stat(o.certDir); err != nil || !fi.IsDir() {
			return nil, usageErrorf("--tls-cert-dir %s: not a directory", o.certDir)
		}
		return func(serial string) *tls.Config {
			c := base.Clone()
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return loadSerialCert(o.certDir, serial)
			}
			return c
		}, nil
	}
	return func(string) *tls.Config { return base }, nil
}

// errNoSerialCert is returned when --tls-cert-dir has no certificate for a
// serial.
var errNoSerialCert = errors.New("no certificate for this serial")

// loadSerialCert reads <dir>/<serial>.crt and <dir>/<serial>.key.
func loadSerialCert(dir, serial string) (*tls.Certificate, error) {
	crt, key := filepath.Join(dir, serial+".crt"), filepath.Join(dir, serial+".key")
	cert, err := tls.LoadX509KeyPair(crt, key)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", crt, errNoSerialCert)
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", crt, err)
	}
	return &cert, nil
}
