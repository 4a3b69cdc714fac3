package driver_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/auth"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
)

// mtlsDriver starts a driver whose controller port needs client
// certificates from ca whose identity is the hello's serial.
func mtlsDriver(t *testing.T, e *env, ca *auth.DevCA, id string, clientAuth tls.ClientAuthType) *driver.Driver {
	t.Helper()
	srv, err := ca.Server("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return e.startDriver(id, func(o *driver.Options) {
		o.TLS = &tls.Config{Certificates: []tls.Certificate{srv}, ClientCAs: ca.Pool(), ClientAuth: clientAuth, MinVersion: tls.VersionTLS12}
		o.RequireCertSerial = true
	})
}

// clientTLS is a controller's TLS configuration presenting cert.
func clientTLS(ca *auth.DevCA, cert *tls.Certificate) *tls.Config {
	c := &tls.Config{RootCAs: ca.Pool()}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

// TestMutualTLS: controllers with a certificate of their own serial are
// served over mTLS (a fleet, one certificate per controller); a
// certificate of another serial is refused with certificate_mismatch,
// closed as rejected and counted.
func TestMutualTLS(t *testing.T) {
	ca, err := auth.NewDevCA("scpgate test CA")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	d := mtlsDriver(t, e, ca, "d-mtls", tls.RequireAndVerifyClientCert)

	fleet := sim.NewFleet(sim.FleetConfig{
		Controller:   simConfig(d.Addr().String(), ""),
		Count:        3,
		SerialPrefix: "MT",
		TLSFor: func(serial string) *tls.Config {
			cert, err := ca.Client(serial)
			if err != nil {
				t.Errorf("issue %s: %v", serial, err)
			}
			return clientTLS(ca, &cert)
		},
	})
	runFleet(t, fleet)
	for _, c := range fleet.Controllers() {
		c.Generate(50)
	}
	waitAcked(t, 10*time.Second, fleet.Controllers()...)
	checkExactlyOnce(t, readEvents(t, e.js), fleet.Controllers()...)

	// Serial IMPOSTOR presenting the certificate of MT000000.
	stolen, err := ca.Client("MT000000")
	if err != nil {
		t.Fatal(err)
	}
	cfg := simConfig(d.Addr().String(), "IMPOSTOR")
	cfg.TLS = clientTLS(ca, &stolen)
	imp := sim.NewController(cfg)
	runController(t, imp)
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		st := d.Stats()
		if n := st.Rejected(scpbridge.RejectCertificateMismatch); n == 0 {
			return fmt.Errorf("no certificate_mismatch reject yet (rejects %v)", st.Rejects)
		}
		if n := st.Closed(scpgate.ReasonRejected); n == 0 {
			return fmt.Errorf("no connection closed as rejected (closes %v)", st.Closes)
		}
		if imp.Stats().Rejected == 0 {
			return fmt.Errorf("the impostor was not told it is rejected")
		}
		return nil
	})
	if imp.Stats().Sessions != 0 {
		t.Errorf("impostor got %d sessions", imp.Stats().Sessions)
	}

	// Without a client certificate the TLS handshake itself fails.
	conn, err := tls.Dial("tcp", d.Addr().String(), clientTLS(ca, nil))
	if err == nil {
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Error("a controller without a client certificate was served")
	}
}

// TestMutualTLSOptional: with verify-if-given a controller without a
// certificate is served (TLS only), one with a certificate must match.
func TestMutualTLSOptional(t *testing.T) {
	ca, err := auth.NewDevCA("scpgate test CA")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	d := mtlsDriver(t, e, ca, "d-mtls-opt", tls.VerifyClientCertIfGiven)

	cfg := simConfig(d.Addr().String(), "NOCERT")
	cfg.TLS = clientTLS(ca, nil)
	plain := sim.NewController(cfg)
	runController(t, plain)
	uriCert, err := ca.Client("some name", "urn:scpgate:controller:URI1")
	if err != nil {
		t.Fatal(err)
	}
	cfg = simConfig(d.Addr().String(), "URI1")
	cfg.TLS = clientTLS(ca, &uriCert)
	byURI := sim.NewController(cfg)
	runController(t, byURI)
	plain.Generate(10)
	byURI.Generate(10)
	waitAcked(t, 10*time.Second, plain, byURI)

	wrong, err := ca.Client("OTHER")
	if err != nil {
		t.Fatal(err)
	}
	cfg = simConfig(d.Addr().String(), "WRONG")
	cfg.TLS = clientTLS(ca, &wrong)
	runController(t, sim.NewController(cfg))
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := d.Stats().Rejected(scpbridge.RejectCertificateMismatch); n == 0 {
			return fmt.Errorf("no certificate_mismatch reject yet")
		}
		return nil
	})
}

// TestRequireCertSerialNeedsVerifiedTLS: the option is refused without
// TLS that verifies client certificates.
func TestRequireCertSerialNeedsVerifiedTLS(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []*tls.Config{nil, {ClientAuth: tls.RequestClientCert}, {ClientAuth: tls.RequireAnyClientCert}} {
		_, err := driver.New(driver.Options{NATS: e.nc, TLS: tc, RequireCertSerial: true})
		if err == nil {
			t.Errorf("TLS %+v: RequireCertSerial accepted", tc)
		}
	}
}

func TestCertMatchesSerial(t *testing.T) {
	u := func(s string) *url.URL {
		v, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cert := func(cn string, dns []string, uris ...string) *x509.Certificate {
		c := &x509.Certificate{DNSNames: dns}
		c.Subject.CommonName = cn
		for _, s := range uris {
			c.URIs = append(c.URIs, u(s))
		}
		return c
	}
	tests := []struct {
		name   string
		cert   *x509.Certificate
		serial string
		want   bool
	}{
		{"common name", cert("SCP1", nil), "SCP1", true},
		{"common name differs", cert("SCP1", nil), "SCP2", false},
		{"case matters", cert("scp1", nil), "SCP1", false},
		{"DNS SAN", cert("x", []string{"a", "SCP1"}), "SCP1", true},
		{"URN", cert("x", nil, "urn:scpgate:controller:SCP1"), "SCP1", true},
		{"SPIFFE path", cert("x", nil, "spiffe://example.org/controller/SCP1"), "SCP1", true},
		{"URI host", cert("x", nil, "scp://SCP1"), "SCP1", true},
		{"URI other", cert("x", nil, "spiffe://SCP1/controller/SCP2"), "SCP1", false},
		{"prefix is not a match", cert("SCP10", []string{"SCP10"}), "SCP1", false},
		{"empty serial", cert("", nil), "", false},
		{"nil certificate", nil, "SCP1", false},
	}
	for _, tt := range tests {
		if got := driver.CertMatchesSerial(tt.cert, tt.serial); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
