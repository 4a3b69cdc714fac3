package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/internal/natsconn"
)

type testEnvConfig struct {
	Listen  string        `envconfig:"LISTEN" default:":3001" desc:"controller listen address"`
	Timeout time.Duration `envconfig:"TIMEOUT" default:"15s" desc:"offline time"`
	Name    string        `envconfig:"NAME" required:"true" desc:"instance name"`
	Secret  string        `envconfig:"-" ignored:"true"`
}

func TestLoadEnv(t *testing.T) {
	t.Setenv("SCPGATE_LISTEN", ":4000")
	t.Setenv("SCPGATE_NAME", "d1")
	var cfg testEnvConfig
	if err := loadEnv("SCPGATE", &cfg); err != nil {
		t.Fatalf("loadEnv: %v", err)
	}
	want := testEnvConfig{Listen: ":4000", Timeout: 15 * time.Second, Name: "d1"}
	if cfg != want {
		t.Fatalf("got %+v, want %+v", cfg, want)
	}

	t.Setenv("SCPGATE_TIMEOUT", "soon")
	err := loadEnv("SCPGATE", &cfg)
	if err == nil || !strings.Contains(err.Error(), "SCPGATE_TIMEOUT") {
		t.Fatalf("loadEnv with a bad duration: got %v, want an error naming SCPGATE_TIMEOUT", err)
	}
}

func TestPrintEnvHelp(t *testing.T) {
	var b bytes.Buffer
	printEnvHelp(&b, "SCPGATE", &testEnvConfig{})
	printEnvHelp(&b, "", natsconn.Config{}) // a value works too
	out := b.String()
	for _, want := range []string{"SCPGATE_LISTEN", ":3001", "controller listen address", "SCPGATE_TIMEOUT", "15s",
		"SCPGATE_NAME", "(required)", "NATS_URL", "nats://127.0.0.1:4222", "NATS_CREDS"} {
		if !strings.Contains(out, want) {
			t.Errorf("got env help\n%s\nwant it to contain %q", out, want)
		}
	}
	if strings.Contains(out, "SECRET") {
		t.Errorf("got env help\n%s\nwant ignored fields left out", out)
	}
}

func TestNewLoggerLevel(t *testing.T) {
	tests := []struct {
		in   string
		want zerolog.Level
	}{
		{"", zerolog.InfoLevel},
		{"debug", zerolog.DebugLevel},
		{"warn", zerolog.WarnLevel},
		{"loud", zerolog.InfoLevel},
	}
	for _, tt := range tests {
		if got := newLogger(tt.in, false).GetLevel(); got != tt.want {
			t.Errorf("newLogger(%q): got level %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestRegisterRejectsDuplicates(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("registering version twice: got no panic, want one")
		}
	}()
	register(&command{name: "version", summary: "again", run: func(context.Context, []string) error { return nil }})
}

func TestExitCode(t *testing.T) {
	c := &command{name: "x"}
	live := context.Background()
	cancelled, cancel := context.WithCancel(live)
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		code int
	}{
		{"nil", live, nil, exitOK},
		{"usage", live, usageErrorf("missing serial"), exitUsage},
		{"failure", live, errors.New("boom"), exitError},
		{"signal", cancelled, context.Canceled, exitOK},
		{"canceled without signal", live, context.Canceled, exitError},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if got := exitCode(tt.ctx, c, tt.err, &b); got != tt.code {
			t.Errorf("%s: got exit code %d, want %d (stderr %q)", tt.name, got, tt.code, b.String())
		}
	}
}
