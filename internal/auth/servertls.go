package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// ServerTLS is the TLS configuration of a server port kept in step with
// its files: a certificate and key, and optionally a bundle of the CAs
// that issue client certificates. Certificates are rotated without a
// restart: Reload (or Watch, on SIGHUP and when a file changes) reads the
// files again, and every handshake from then on uses them; established
// connections are not touched. A reload that fails (a key that does not
// match its certificate, say, while the two files are being replaced)
// keeps the previous configuration in force.
type ServerTLS struct {
	certFile, keyFile, caFile string
	clientAuth                tls.ClientAuthType
	log                       zerolog.Logger

	cur     atomic.Pointer[tls.Config]
	mu      sync.Mutex   // serializes Reload; guards stamps
	stamps  [3]fileStamp // of cert, key and CA files as last loaded
	reloads atomic.Uint64
	errors  atomic.Uint64
}

// LoadServerTLS reads the certificate and key, and with caFile the client
// CA bundle; clientAuth applies only with a CA bundle.
func LoadServerTLS(certFile, keyFile, caFile string, clientAuth tls.ClientAuthType, log zerolog.Logger) (*ServerTLS, error) {
	if caFile == "" {
		clientAuth = tls.NoClientCert
	}
	s := &ServerTLS{certFile: certFile, keyFile: keyFile, caFile: caFile, clientAuth: clientAuth,
		log: log.With().Str("tls_cert", certFile).Logger()}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Config returns the configuration to serve with: each handshake takes
// the files as last loaded. Its ClientAuth is that of every handshake.
func (s *ServerTLS) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: s.clientAuth,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load(), nil
		},
	}
}

// Reload reads the files again and, when they load, uses them for the
// next handshakes. On error the previous configuration stays in force.
func (s *ServerTLS) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st [3]fileStamp
	for i, p := range s.files() {
		st[i], _ = stampOf(p)
	}
	cfg, err := s.load()
	if err != nil {
		s.errors.Add(1)
		return err
	}
	s.cur.Store(cfg)
	s.stamps = st
	s.reloads.Add(1)
	ev := s.log.Info()
	if leaf := cfg.Certificates[0].Leaf; leaf != nil {
		ev = ev.Str("subject", leaf.Subject.String()).Time("not_after", leaf.NotAfter)
	}
	ev.Msg("TLS certificate loaded")
	return nil
}

func (s *ServerTLS) files() []string {
	if s.caFile == "" {
		return []string{s.certFile, s.keyFile}
	}
	return []string{s.certFile, s.keyFile, s.caFile}
}

func (s *ServerTLS) load() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s: %w", s.certFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, ClientAuth: s.clientAuth}
	if s.caFile != "" {
		if cfg.ClientCAs, err = LoadCAPool(s.caFile); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// Loads returns how many times the files were loaded successfully, and
// how many loads failed.
func (s *ServerTLS) Loads() (ok, failed uint64) { return s.reloads.Load(), s.errors.Load() }

// Watch reloads the files on SIGHUP and whenever one of them changes
// (checked every interval; 0 means DefaultReloadInterval), until ctx ends.
// A failed reload is logged and retried at the next change or check.
func (s *ServerTLS) Watch(ctx context.Context, interval time.Duration) {
	changedAny := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, p := range s.files() {
			if changed(s.stamps[i], p) {
				return true
			}
		}
		return false
	}
	watchFile(ctx, interval, changedAny, func() {
		if err := s.Reload(); err != nil {
			s.log.Error().Err(err).Msg("TLS reload failed; keeping the previous certificate")
		}
	})
}

// LoadCAPool reads a PEM bundle of CA certificates.
func LoadCAPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA bundle %s: no PEM certificate", path)
	}
	return pool, nil
}
