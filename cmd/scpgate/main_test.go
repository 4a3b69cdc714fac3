package main_test

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinary builds scpgate and runs its command-line surface.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "scpgate")
	build := exec.Command("go", "build", "-o", bin, "-ldflags", "-X main.version=v9.9.9-test", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     []string // substrings wanted on stdout
		stderr     []string // substrings wanted on stderr
		stdoutNone bool     // stdout must be empty
	}{
		{name: "no args", args: nil, code: 2, stderr: []string{"Usage: scpgate <command>", "version"}, stdoutNone: true},
		{name: "--help", args: []string{"--help"}, code: 0, stdout: []string{"Commands:", "version", "print the version"}},
		{name: "help", args: []string{"help"}, code: 0, stdout: []string{"Commands:", "version"}},
		{name: "help version", args: []string{"help", "version"}, code: 0,
			stdout: []string{"Usage: scpgate version", "-deps", "also list the modules"}},
		{name: "version -h", args: []string{"version", "-h"}, code: 0, stdout: []string{"Usage: scpgate version", "-deps"}},
		{name: "version", args: []string{"version"}, code: 0, stdout: []string{"scpgate v9.9.9-test", "go       go1."}},
		{name: "version -deps", args: []string{"version", "-deps"}, code: 0, stdout: []string{"github.com/nats-io/nats.go"}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: []string{`unknown command "frobnicate"`}},
		{name: "help unknown", args: []string{"help", "frobnicate"}, code: 2, stderr: []string{`unknown command "frobnicate"`}},
		{name: "bad flag", args: []string{"version", "-nope"}, code: 2, stdoutNone: true,
			stderr: []string{"scpgate version: flag provided but not defined: -nope\nsee 'scpgate help version'\n"}},
		{name: "bad flag value", args: []string{"dev", "--sim", "many"}, code: 2, stdoutNone: true,
			stderr: []string{"scpgate dev: invalid value \"many\" for flag -sim", "see 'scpgate help dev'"}},
		{name: "dev -h", args: []string{"dev", "-h"}, code: 0, stdout: []string{"Usage: scpgate dev", "SCPGATE_LISTEN"}},
		{name: "stray argument", args: []string{"version", "extra"}, code: 2,
			stderr: []string{`scpgate version: unexpected argument "extra"`, "scpgate help version"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, tt.args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatalf("run %v: %v", tt.args, err)
			}
			if code != tt.code {
				t.Errorf("scpgate %v: got exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", tt.args, code, tt.code, &stdout, &stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("scpgate %v: got stdout\n%s\nwant it to contain %q", tt.args, &stdout, s)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("scpgate %v: got stderr\n%s\nwant it to contain %q", tt.args, &stderr, s)
				}
			}
			if tt.code == 2 && len(tt.args) > 1 && strings.Count(stderr.String(), "\n") > 2 {
				t.Errorf("scpgate %v: got stderr\n%s\nwant one error line and a hint", tt.args, &stderr)
			}
			if tt.stdoutNone && stdout.Len() > 0 {
				t.Errorf("scpgate %v: got stdout\n%s\nwant none", tt.args, &stdout)
			}
		})
	}
}
