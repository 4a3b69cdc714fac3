package driver_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "scpgate test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// TestTLSAndAdmit: controllers over TLS are served like plain ones, and a
// serial the Admit function refuses gets a reject (not_allowed).
func TestTLSAndAdmit(t *testing.T) {
	cert, pool := selfSigned(t)
	e := newEnv(t)
	d := e.startDriver("d-tls", func(o *driver.Options) {
		o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		o.Admit = func(serial string) bool { return serial != "NOPE" }
	})
	cfg := simConfig(d.Addr().String(), "TLS1")
	cfg.TLS = &tls.Config{RootCAs: pool}
	c := sim.NewController(cfg)
	runController(t, c)
	c.Generate(200)
	waitAcked(t, 10*time.Second, c)
	checkExactlyOnce(t, readEvents(t, e.js), c)

	conn, err := tls.Dial("tcp", d.Addr().String(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatalf("tls dial: %v", err)
	}
	defer conn.Close()
	r := &raw{t: t, conn: conn, rd: scpbridge.NewReader(conn, 0), cs: scpbridge.NewControllerSession(scpbridge.Timing{}, time.Now())}
	r.write(&scpbridge.Hello{Serial: "NOPE", BootEpoch: 1})
	if ft, err := r.next(2 * time.Second); err != nil || ft != scpbridge.FrameReject || r.cs.Reject.Reason != scpbridge.RejectNotAllowed {
		t.Errorf("refused serial: got %s %+v, %v; want reject not_allowed", ft, r.cs.Reject, err)
	}
	// A plain-text controller on the TLS port is a protocol error.
	pr := dialRaw(t, d.Addr().String())
	pr.write(&scpbridge.Hello{Serial: "PLAIN", BootEpoch: 1})
	expectClosed(t, "plain text on the TLS port", pr)
	natstest.CheckFor(t, 3*time.Second, 10*time.Millisecond, func() error {
		st := d.Stats()
		if n := st.Rejected(scpbridge.RejectNotAllowed); n != 1 {
			return fmt.Errorf("rejected not_allowed: %d", n)
		}
		if n := st.Closed("protocol_error"); n != 1 {
			return fmt.Errorf("closed protocol_error: %d (all %v)", n, st.Closes)
		}
		return nil
	})
}
