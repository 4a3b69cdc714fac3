package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scpgate/scpgate/internal/auth"
	"github.com/scpgate/scpgate/internal/metrics"
	"github.com/scpgate/scpgate/internal/natsconn"
)

// registerCertMetrics adds scpgate_tls_cert_expiry_timestamp_seconds for
// the controller port's certificate (srv, nil: none) and the NATS client
// certificate of natsCfg, when they are configured.
func registerCertMetrics(reg prometheus.Registerer, srv *auth.ServerTLS, natsCfg natsconn.Config) error {
	certs := map[string]func() time.Time{}
	if srv != nil {
		certs["controller_server"] = srv.NotAfter
	}
	if natsCfg.TLSCert != "" {
		path := natsCfg.TLSCert
		certs["nats_client"] = func() time.Time { t, _ := certFileExpiry(path); return t }
	}
	if len(certs) == 0 {
		return nil
	}
	if err := metrics.RegisterCertExpiry(reg, certs); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// certFileExpiry returns the expiry of the first certificate of a PEM
// file.
func certFileExpiry(path string) (time.Time, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("read certificate %s: %w", path, err)
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return time.Time{}, fmt.Errorf("certificate %s: no PEM certificate in it", path)
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return time.Time{}, fmt.Errorf("certificate %s: %w", path, err)
		}
		return c.NotAfter, nil
	}
}
