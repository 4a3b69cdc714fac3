//go:build !driveronly

package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/scpgate/scpgate/internal/auth"
)

// devCA is the throw-away TLS setup of `scpgate dev --tls`: a CA, the
// controller port's certificate, and client certificates issued on
// demand for the simulated fleet.
type devCA struct {
	ca     *auth.DevCA
	caFile string
	server *tls.Config
}

// newDevCA creates the CA and the server certificate (for localhost and
// the loopback addresses) and writes ca.crt, server.crt and server.key to
// dir, so that other clients can trust the port.
func newDevCA(dir string) (*devCA, error) {
	ca, err := auth.NewDevCA("scpgate dev CA")
	if err != nil {
		return nil, fmt.Errorf("dev TLS: %w", err)
	}
	cert, err := ca.Server("localhost", "127.0.0.1", "::1")
	if err != nil {
		return nil, fmt.Errorf("dev TLS: server certificate: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dev TLS: %w", err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o644); err != nil {
		return nil, fmt.Errorf("dev TLS: %w", err)
	}
	if err := auth.WritePEM(dir, "server", cert); err != nil {
		return nil, fmt.Errorf("dev TLS: %w", err)
	}
	return &devCA{ca: ca, caFile: caFile, server: &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		ClientCAs:    ca.Pool(),
		// A controller without a certificate is let in (over TLS); one
		// with a certificate must be of this CA and name its serial.
		ClientAuth: tls.VerifyClientCertIfGiven,
	}}, nil
}

// clientFor is the simulated controller serial's TLS configuration: it
// trusts the CA and presents a certificate naming serial, issued at its
// first handshake.
func (d *devCA) clientFor(serial string) *tls.Config {
	var (
		mu   sync.Mutex
		cert *tls.Certificate
	)
	return &tls.Config{
		RootCAs: d.ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			mu.Lock()
			defer mu.Unlock()
			if cert == nil {
				c, err := d.ca.Client(serial)
				if err != nil {
					return nil, fmt.Errorf("issue certificate of %s: %w", serial, err)
				}
				cert = &c
			}
			return cert, nil
		},
	}
}
