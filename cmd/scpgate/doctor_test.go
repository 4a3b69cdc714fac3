package main_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/streams"
)

// writeCert writes a self-signed certificate and its key valid until
// notAfter into dir as name.crt and name.key.
func writeCert(t *testing.T, dir, name string, notAfter time.Time) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	crt, kf := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return crt, kf
}

// TestDoctor runs `scpgate doctor` against a good setup (exit 0, every
// check ok) and a bad one (exit 1, each problem named).
func TestDoctor(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s))
	ctx := context.Background()
	if _, err := streams.Ensure(ctx, js, streams.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	crt, key := writeCert(t, dir, "good", time.Now().Add(90*24*time.Hour))
	allow := filepath.Join(dir, "allow.txt")
	if err := os.WriteFile(allow, []byte("# fleet\nC1\nC2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := []string{"NATS_URL=" + s.ClientURL(), "SCPGATE_LISTEN=" + freeAddr(t), "SCPGATE_HTTP_LISTEN=" + freeAddr(t),
		"SCPGATE_TLS_CERT=" + crt, "SCPGATE_TLS_KEY=" + key, "SCPGATE_ALLOW_LIST=" + allow, "SCPGATE_DB=sqlite:x.db",
		"SCPGATE_API_TOKENS=0123456789abcdef0123:admin"}

	stdout, stderr, code := runEnv(t, 60*time.Second, good, "doctor")
	if code != 0 || strings.Contains(stdout, "PROBLEM") || !strings.Contains(stdout, "No problem found") {
		t.Fatalf("good setup: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"config", "driver: settings valid", "ports", "is free", "connected to nats://", "JetStream enabled",
		"stream info SCP_EVENTS", "SCP_EVENTS matches the settings", "SCPGATE_TLS_CERT (\"good\") valid until",
		"admits 2 serial(s)", "bucket scp_sessions", "store sqlite", "api tokens    ingest: tokens load"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("good setup: output lacks %q:\n%s", want, stdout)
		}
	}

	// Bad: an invalid value, an unknown variable, a port in use, an
	// expired certificate, an empty allow list, a stream whose duplicate
	// window differs from the settings.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	oldCrt, oldKey := writeCert(t, dir, "old", time.Now().Add(-24*time.Hour))
	empty := filepath.Join(dir, "empty.txt")
	if err := os.WriteFile(empty, []byte("# nobody\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := []string{"NATS_URL=" + s.ClientURL(), "SCPGATE_LISTEN=" + busy.Addr().String(), "SCPGATE_HTTP_LISTEN=" + freeAddr(t),
		"SCPGATE_TLS_CERT=" + oldCrt, "SCPGATE_TLS_KEY=" + oldKey, "SCPGATE_ALLOW_LIST=" + empty,
		"SCPGATE_DUPLICATE_WINDOW=1h", "SCPGATE_HEARTBEET=5s", "SCPGATE_COMMAND_MAX_WAIT=-1s", "SCPGATE_DB=mysql://x",
		"SCPGATE_API_TOKENS=short:admin"}
	stdout, stderr, code = runEnv(t, 60*time.Second, bad, "doctor")
	if code != 1 || !strings.Contains(stderr, "problem(s) found") {
		t.Fatalf("bad setup: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"PROBLEM  config        commander: invalid setting: SCPGATE_COMMAND_MAX_WAIT=-1s is not allowed",
		"SCPGATE_HEARTBEET is not a setting of scpgate (did you mean SCPGATE_HEARTBEAT?)",
		"unsupported store",
		"SCPGATE_LISTEN " + busy.Addr().String() + " cannot be opened",
		"old.crt, \"old\") expired on",
		"names no serial",
		"SCP_EVENTS differs from the settings: duplicate window 2h0m0s, SCPGATE_DUPLICATE_WINDOW gives 1h0m0s",
		"PROBLEM  api tokens    ingest: SCPGATE_API_TOKENS:",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("bad setup: output lacks %q:\n%s", want, stdout)
		}
	}

	// NATS unreachable, and a user without JetStream rights.
	stdout, _, code = runEnv(t, 60*time.Second, []string{deadNATS(t), "SCPGATE_HTTP_LISTEN=" + freeAddr(t)}, "doctor", "--role", "commander")
	if code != 1 || !strings.Contains(stdout, "PROBLEM  nats") || !strings.Contains(stdout, "connect to NATS at nats://") {
		t.Errorf("dead NATS: exit code %d\n%s", code, stdout)
	}
	opts := natstest.Options(t)
	opts.Users = []*server.User{{Username: "limited", Password: "limited-password",
		Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"$JS.API.INFO"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
		}}}
	ls := natstest.RunServerWith(t, opts)
	stdout, _, code = runEnv(t, 60*time.Second, []string{"NATS_URL=" + ls.ClientURL(), "NATS_USER=limited", "NATS_PASSWORD=limited-password",
		"SCPGATE_HTTP_LISTEN=" + freeAddr(t)}, "doctor", "--role", "commander", "--timeout", "2s")
	if code != 1 || !strings.Contains(stdout, "PROBLEM  permissions  stream info SCP_EVENTS: the NATS user may not") {
		t.Errorf("limited user: exit code %d\n%s", code, stdout)
	}
	if strings.Contains(stdout, "limited-password") {
		t.Errorf("the password is printed:\n%s", stdout)
	}
}
