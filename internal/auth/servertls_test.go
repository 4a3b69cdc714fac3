package auth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/scpgate/scpgate/internal/auth"
	"github.com/scpgate/scpgate/internal/natstest"
)

// serveTLS accepts TLS connections on a loopback port with cfg, completes
// their handshakes and writes "k" on each that succeeds; it returns the
// address.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := tls.Server(c, cfg)
				if tc.Handshake() == nil {
					_, _ = tc.Write([]byte("k"))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// servedSerial dials addr and returns the serial number of the server's
// certificate.
func servedSerial(addr string, cfg *tls.Config) (string, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

func serialOf(t *testing.T, c tls.Certificate) string {
	t.Helper()
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return x.SerialNumber.String()
}

// TestServerTLSRotation: a certificate replaced in place is served by the
// next handshakes after Reload or, with Watch, after the file changes; a
// key that does not match keeps the previous pair in force.
func TestServerTLSRotation(t *testing.T) {
	dir := t.TempDir()
	ca, err := auth.NewDevCA("rotation CA")
	if err != nil {
		t.Fatal(err)
	}
	issue := func(name string) tls.Certificate {
		c, err := ca.Server("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if err := auth.WritePEM(dir, name, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := issue("server")
	crt, key := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	st, err := auth.LoadServerTLS(crt, key, "", tls.RequireAndVerifyClientCert, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if cfg := st.Config(); cfg.ClientAuth != tls.NoClientCert {
		t.Errorf("without a CA bundle: ClientAuth %v, want none", cfg.ClientAuth)
	}
	addr := serveTLS(t, st.Config())
	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
	if got, err := servedSerial(addr, client); err != nil || got != serialOf(t, a) {
		t.Fatalf("first certificate: served %s, %v; want %s", got, err, serialOf(t, a))
	}

	b := issue("server")
	if err := st.Reload(); err != nil {
		t.Fatal(err)
	}
	if got, err := servedSerial(addr, client); err != nil || got != serialOf(t, b) {
		t.Fatalf("after Reload: served %s, %v; want %s", got, err, serialOf(t, b))
	}

	// Half a rotation: a new certificate with the old key does not load.
	other, err := ca.Server("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	pemB, _ := os.ReadFile(crt)
	if err := auth.WritePEM(dir, "half", other); err != nil {
		t.Fatal(err)
	}
	half, _ := os.ReadFile(filepath.Join(dir, "half.crt"))
	if err := os.WriteFile(crt, half, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := st.Reload(); err == nil {
		t.Fatal("certificate and key of different pairs: Reload succeeded")
	}
	if ok, failed := st.Loads(); ok != 2 || failed != 1 {
		t.Errorf("Loads = %d ok, %d failed; want 2, 1", ok, failed)
	}
	if got, err := servedSerial(addr, client); err != nil || got != serialOf(t, b) {
		t.Fatalf("after a failed reload: served %s, %v; want the previous %s", got, err, serialOf(t, b))
	}
	if err := os.WriteFile(crt, pemB, 0o644); err != nil {
		t.Fatal(err)
	}

	// Watch picks a rotation up by itself.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go st.Watch(ctx, 10*time.Millisecond)
	c := issue("server")
	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		got, err := servedSerial(addr, client)
		if err != nil || got != serialOf(t, c) {
			return fmt.Errorf("served %s, %v; want %s", got, err, serialOf(t, c))
		}
		return nil
	})
}

// TestServerTLSClientCA: with a CA bundle, a client without a certificate
// is refused and one with a certificate of the CA is let in.
func TestServerTLSClientCA(t *testing.T) {
	dir := t.TempDir()
	ca, err := auth.NewDevCA("client CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.WritePEM(dir, "server", srv); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := auth.LoadServerTLS(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"),
		filepath.Join(dir, "ca.crt"), tls.RequireAndVerifyClientCert, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, st.Config())
	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
	// TLS 1.3 reports a refused client certificate on the first read; an
	// accepted client reads "k".
	read := func(cfg *tls.Config) error {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Read(make([]byte, 1))
		return err
	}
	if err := read(client); err == nil || os.IsTimeout(err) {
		t.Errorf("client without a certificate: %v, want refused", err)
	}
	cc, err := ca.Client("C1")
	if err != nil {
		t.Fatal(err)
	}
	withCert := client.Clone()
	withCert.Certificates = []tls.Certificate{cc}
	if err := read(withCert); err != nil {
		t.Errorf("client with a certificate of the CA: %v", err)
	}
	if _, err := auth.LoadServerTLS(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"),
		filepath.Join(dir, "server.key"), tls.RequireAndVerifyClientCert, testLog(t)); err == nil {
		t.Error("a CA bundle without a certificate was accepted")
	}
}
