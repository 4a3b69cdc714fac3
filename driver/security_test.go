package driver_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/auth"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/streams"
)

// dialRawTLS is a raw controller connection over TLS with cfg.
func dialRawTLS(t *testing.T, addr string, cfg *tls.Config) *raw {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &raw{t: t, conn: c, rd: scpbridge.NewReader(c, 0), cs: scpbridge.NewControllerSession(scpbridge.Timing{}, time.Now())}
}

// helloAnswer says hello as serial and returns the answer: a welcome, or
// a reject and its reason.
func (r *raw) helloAnswer(serial string) (scpbridge.FrameType, scpbridge.Reject) {
	r.t.Helper()
	return r.helloSecret(serial, "")
}

// helloSecret is helloAnswer with a shared secret in the hello.
func (r *raw) helloSecret(serial, secret string) (scpbridge.FrameType, scpbridge.Reject) {
	r.t.Helper()
	r.write(&scpbridge.Hello{Serial: serial, Model: "RAW-1", Firmware: "0.1", BootEpoch: 1, Log: scpbridge.LogStatus{Capacity: 1000},
		Secret: secret})
	ft, err := r.next(5 * time.Second)
	if err != nil && ft != scpbridge.FrameReject {
		r.t.Fatalf("hello %s: %v", serial, err)
	}
	return ft, r.cs.Reject
}

// TestCertlessTakeoverRefused: with client certificates optional
// (verify-if-given), a peer without a certificate cannot take over a
// serial that presented one before, on this driver or another one that
// never saw it; a serial that never did is still served without one.
func TestCertlessTakeoverRefused(t *testing.T) {
	ca, err := auth.NewDevCA("scpgate test CA")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	d := mtlsDriver(t, e, ca, "d-if-given", tls.VerifyClientCertIfGiven)
	cert, err := ca.Client("CS1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := simConfig(d.Addr().String(), "CS1")
	cfg.TLS = clientTLS(ca, &cert)
	c := sim.NewController(cfg)
	runController(t, c)
	c.Generate(10)
	waitAcked(t, 10*time.Second, c)
	held := waitSession(t, d, "CS1")

	r := dialRawTLS(t, d.Addr().String(), clientTLS(ca, nil))
	if ft, rej := r.helloAnswer("CS1"); ft != scpbridge.FrameReject || rej.Reason != scpbridge.RejectCertificateMismatch {
		t.Fatalf("certless hello of CS1: got %s %+v, want reject certificate_mismatch", ft, rej)
	}
	if now := waitSession(t, d, "CS1"); now.Session != held.Session {
		t.Errorf("session of CS1 is %s, want %s kept", now.Session, held.Session)
	}
	if st := d.Stats(); st.TakeoversRefused != 1 || st.Takeovers != 0 {
		t.Errorf("takeovers %d, refused %d; want 0 and 1", st.Takeovers, st.TakeoversRefused)
	}

	// Remembered in NATS: another driver refuses it too.
	d2 := mtlsDriver(t, e, ca, "d-if-given-2", tls.VerifyClientCertIfGiven)
	r = dialRawTLS(t, d2.Addr().String(), clientTLS(ca, nil))
	if ft, rej := r.helloAnswer("CS1"); ft != scpbridge.FrameReject || rej.Reason != scpbridge.RejectCertificateMismatch {
		t.Fatalf("certless hello of CS1 on driver 2: got %s %+v, want reject certificate_mismatch", ft, rej)
	}
	kv, err := e.js.KeyValue(context.Background(), streams.IdentityBucket)
	if err != nil {
		t.Fatal(err)
	}
	if ent, err := kv.Get(context.Background(), "CS1"); err != nil || !containsStr(string(ent.Value()), `"cert_seen"`) {
		t.Errorf("scp_identity CS1: %v, %v; want cert_seen", ent, err)
	}

	// A serial that never presented a certificate: served without one.
	r = dialRawTLS(t, d2.Addr().String(), clientTLS(ca, nil))
	if ft, rej := r.helloAnswer("NC1"); ft != scpbridge.FrameWelcome {
		t.Fatalf("certless hello of NC1: got %s %+v, want welcome", ft, rej)
	}

	// The panel itself, with its certificate, through driver 2: a
	// takeover, counted on driver 1.
	r = dialRawTLS(t, d2.Addr().String(), clientTLS(ca, &cert))
	if ft, rej := r.helloAnswer("CS1"); ft != scpbridge.FrameWelcome {
		t.Fatalf("hello of CS1 with its certificate: got %s %+v, want welcome", ft, rej)
	}
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := d.Stats().Takeovers; n < 1 {
			return fmt.Errorf("driver 1 counted %d takeovers", n)
		}
		return nil
	})
}

// TestMaxSessions: a driver at its cap refuses a new serial with busy
// and a retry delay, counted; a serial it holds may still reconnect.
func TestMaxSessions(t *testing.T) {
	e := newEnv(t)
	d := e.startDriver("d-cap", func(o *driver.Options) { o.MaxSessions = 2 })
	for _, serial := range []string{"CAP1", "CAP2"} {
		r := dialRaw(t, d.Addr().String())
		r.hello(serial, 1)
	}
	r := dialRaw(t, d.Addr().String())
	ft, rej := r.helloAnswer("CAP3")
	if ft != scpbridge.FrameReject || rej.Reason != scpbridge.RejectBusy || rej.RetryAfterMS == 0 {
		t.Fatalf("third serial: got %s %+v, want reject busy with a retry delay", ft, rej)
	}
	r = dialRaw(t, d.Addr().String())
	r.hello("CAP1", 2) // a reconnect of a held serial: not a new session
	waitSessions(t, d, 2)
	if st := d.Stats(); st.Rejected(scpbridge.RejectBusy) != 1 {
		t.Errorf("rejects %v, want one busy", st.Rejects)
	}
}

// TestUnknownSerialPresence: a burst of never-seen serials is served at
// once, but presence is recorded at UnknownSerialRate: the peers that
// leave before their turn leave no presence event and no scp_identity
// key; a controller that stays gets its online event when its turn
// comes, and a known serial is not held at all.
func TestUnknownSerialPresence(t *testing.T) {
	e := newEnv(t)
	d := e.startDriver("d-rate", func(o *driver.Options) { o.UnknownSerialRate = 2 })
	const churn = 20
	for i := range churn {
		r := dialRaw(t, d.Addr().String())
		r.hello(fmt.Sprintf("FAKE%02d", i), 1)
		r.conn.Close()
	}
	stay := dialRaw(t, d.Addr().String())
	stay.hello("STAY1", 1)
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if p := presenceOf(readEvents(t, e.js), "STAY1"); len(p) != 1 || p[0].Code != driver.PresenceOnline {
			return fmt.Errorf("STAY1 presence %+v, want one online event", p)
		}
		return nil
	})
	st := d.Stats()
	evs := readEvents(t, e.js)
	withPresence := 0
	for i := range churn {
		if len(presenceOf(evs, fmt.Sprintf("FAKE%02d", i))) > 0 {
			withPresence++
		}
	}
	kv, err := e.js.KeyValue(context.Background(), streams.IdentityBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	recorded := 0
	for range keys.Keys() {
		recorded++
	}
	t.Logf("stats: held %d, never %d; %d of %d churning serials with presence; %d serials recorded",
		st.PresenceHeld, st.PresenceNever, withPresence, churn, recorded)
	if withPresence > 6 || recorded > 7 {
		t.Errorf("%d churning serials got presence and %d serials were recorded, want few (rate 2/s)", withPresence, recorded)
	}
	if st.PresenceHeld < churn-6 || st.PresenceNever < churn-8 {
		t.Errorf("held %d, never %d; want most of %d", st.PresenceHeld, st.PresenceNever, churn)
	}

	// STAY1 is known now: its next session is not held, on this driver
	// nor on a new one that finds no scp_identity key but its presence in
	// SCP_EVENTS (as after an upgrade).
	stay.conn.Close()
	held := d.Stats().PresenceHeld
	again := dialRaw(t, d.Addr().String())
	again.hello("STAY1", 2)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if p := presenceOf(readEvents(t, e.js), "STAY1"); len(p) < 3 {
			return fmt.Errorf("STAY1 presence %d events, want online, offline, online", len(p))
		}
		return nil
	})
	if n := d.Stats().PresenceHeld; n != held {
		t.Errorf("a known serial was held (%d -> %d)", held, n)
	}
	if err := kv.Purge(context.Background(), "STAY1"); err != nil {
		t.Fatal(err)
	}
	// One new serial per 100 s: the first is recorded, the others held.
	d2 := e.startDriver("d-rate-2", func(o *driver.Options) { o.UnknownSerialRate = 0.01 })
	for i := range 5 {
		r := dialRaw(t, d2.Addr().String())
		r.hello(fmt.Sprintf("NEW%02d", i), 1)
	}
	moved := dialRaw(t, d2.Addr().String())
	moved.hello("STAY1", 3)
	waitSession(t, d2, "STAY1")
	if st := d2.Stats(); st.PresenceHeld != 4 {
		t.Errorf("driver 2 held %d sessions, want the 4 new serials past the first, not STAY1", st.PresenceHeld)
	}
}

// TestSharedSecret: over TLS without client certificates, a serial with a
// secret in the secrets file is served only when its hello (protocol
// 1.1) carries that secret; a serial without one is served as before.
func TestSharedSecret(t *testing.T) {
	ca, err := auth.NewDevCA("scpgate test CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "secrets")
	const secret = "s3cret-of-panel-SEC1"
	sum := sha256.Sum256([]byte("another-secret-SEC2"))
	if err := os.WriteFile(path, []byte("SEC1 "+secret+"\nSEC2 sha256:"+hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets, err := auth.LoadSecrets(path, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	d := e.startDriver("d-secret", func(o *driver.Options) {
		o.TLS = &tls.Config{Certificates: []tls.Certificate{srv}, MinVersion: tls.VersionTLS12}
		o.CheckSecret = secrets.Check
	})
	cfg := simConfig(d.Addr().String(), "SEC1")
	cfg.TLS, cfg.Secret = clientTLS(ca, nil), secret
	c := sim.NewController(cfg)
	runController(t, c)
	c.Generate(10)
	waitAcked(t, 10*time.Second, c)

	for _, tc := range []struct {
		serial, secret string
		want           scpbridge.FrameType
	}{
		{"SEC1", "", scpbridge.FrameReject},
		{"SEC1", "s3cret-of-panel-SEC2", scpbridge.FrameReject},
		{"SEC2", "another-secret-SEC2", scpbridge.FrameWelcome},
		{"SEC2", secret, scpbridge.FrameReject},
		{"OPEN1", "", scpbridge.FrameWelcome},
	} {
		r := dialRawTLS(t, d.Addr().String(), clientTLS(ca, nil))
		ft, rej := r.helloSecret(tc.serial, tc.secret)
		if ft != tc.want || ft == scpbridge.FrameReject && rej.Reason != scpbridge.RejectNotAllowed {
			t.Errorf("hello %s with secret %q: got %s %+v, want %s", tc.serial, tc.secret, ft, rej, tc.want)
		}
	}
	if st := d.Stats(); st.BadSecrets != 3 || st.Rejected(scpbridge.RejectNotAllowed) != 3 {
		t.Errorf("bad secrets %d, rejects %v; want 3 not_allowed", st.BadSecrets, st.Rejects)
	}
	if now := waitSession(t, d, "SEC1"); now.Remote == "" {
		t.Errorf("SEC1 lost its session")
	}
}
