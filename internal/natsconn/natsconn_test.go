package natsconn_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/internal/natsconn"
	"github.com/scpgate/scpgate/internal/natstest"
)

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("NATS_URL", "nats://a:4222,nats://b:4222")
	t.Setenv("NATS_CREDS", "/etc/nats/app.creds")
	t.Setenv("NATS_USER", "u")
	t.Setenv("NATS_PASSWORD", "p")
	t.Setenv("NATS_TLS_CERT", "c.pem")
	t.Setenv("NATS_TLS_KEY", "k.pem")
	t.Setenv("NATS_TLS_CA", "ca.pem")
	want := natsconn.Config{URL: "nats://a:4222,nats://b:4222", Creds: "/etc/nats/app.creds", User: "u", Password: "p",
		TLSCert: "c.pem", TLSKey: "k.pem", TLSCA: "ca.pem"}

	got, err := natsconn.ConfigFromEnv()
	if err != nil || got != want {
		t.Fatalf("ConfigFromEnv: got %+v, %v; want %+v", got, err, want)
	}
	// The same names are read when the config is processed directly, and as
	// a fallback when it is nested in a prefixed service config.
	var direct natsconn.Config
	if err := envconfig.Process("", &direct); err != nil || direct != want {
		t.Fatalf("envconfig.Process(\"\"): got %+v, %v; want %+v", direct, err, want)
	}
	var svc struct{ NATS natsconn.Config }
	if err := envconfig.Process("SCPGATE", &svc); err != nil || svc.NATS != want {
		t.Fatalf("envconfig.Process(SCPGATE) nested: got %+v, %v; want %+v", svc.NATS, err, want)
	}
}

func TestConfigDefaultURL(t *testing.T) {
	t.Setenv("NATS_URL", "")
	cfg, err := natsconn.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	// An empty variable counts as set; only an unset one takes the default.
	if cfg.URL != "" {
		t.Fatalf("got URL %q for an empty NATS_URL, want \"\"", cfg.URL)
	}
	if err := cfg.Validate(); !errors.Is(err, natsconn.ErrInvalidConfig) {
		t.Fatalf("Validate with an empty URL: got %v, want ErrInvalidConfig", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  natsconn.Config
		ok   bool
	}{
		{"url only", natsconn.Config{URL: "nats://x"}, true},
		{"user and password", natsconn.Config{URL: "nats://x", User: "u", Password: "p"}, true},
		{"cert without key", natsconn.Config{URL: "nats://x", TLSCert: "c"}, false},
		{"key without cert", natsconn.Config{URL: "nats://x", TLSKey: "k"}, false},
		{"creds and user", natsconn.Config{URL: "nats://x", Creds: "f", User: "u"}, false},
		{"password without user", natsconn.Config{URL: "nats://x", Password: "p"}, false},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if got := err == nil; got != tt.ok {
			t.Errorf("%s: got ok=%v (%v), want ok=%v", tt.name, got, err, tt.ok)
		}
	}
}

func TestConnectReconnectsAndHidesSecrets(t *testing.T) {
	const secret = "s3cr3t-pa55"
	opts := natstest.Options(t)
	opts.Username, opts.Password = "svc", secret
	s := natstest.RunServerWith(t, opts)

	var logs natstest.Buffer
	log := zerolog.New(&logs)
	url := fmt.Sprintf("nats://svc:%s@127.0.0.1:%d", secret, opts.Port)

	// A wrong password is refused, and the error does not show it.
	_, err := natsconn.Connect(natsconn.Config{URL: fmt.Sprintf("nats://127.0.0.1:%d", opts.Port), User: "svc", Password: "wrong-pw"}, "test", log)
	if err == nil || strings.Contains(err.Error(), "wrong-pw") {
		t.Fatalf("connect with a bad password: got %v, want an error without the password", err)
	}
	_, err = natsconn.Connect(natsconn.Config{URL: fmt.Sprintf("nats://svc:wrong-pw@127.0.0.1:%d", opts.Port)}, "test", log)
	if err == nil || strings.Contains(err.Error(), "wrong-pw") {
		t.Fatalf("connect with a bad password in the URL: got %v, want an error without the password", err)
	}

	nc, err := natsconn.Connect(natsconn.Config{URL: url}, "test", log)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)

	s.Shutdown()
	s.WaitForShutdown()
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(logs.String(), "disconnected from NATS") {
			return errors.New("no disconnect logged")
		}
		return nil
	})
	natstest.RunServerWith(t, opts)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if !nc.IsConnected() {
			return fmt.Errorf("status %s", nc.Status())
		}
		if !strings.Contains(logs.String(), "reconnected to NATS") {
			return errors.New("no reconnect logged")
		}
		return nil
	})
	nc.Close()
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(logs.String(), "NATS connection closed") {
			return errors.New("no close logged")
		}
		return nil
	})
	out := logs.String()
	t.Log(out)
	if strings.Contains(out, secret) {
		t.Fatalf("logs contain the password:\n%s", out)
	}
	if !strings.Contains(out, `"connected to NATS"`) {
		t.Fatalf("got logs without the first connect:\n%s", out)
	}
}
