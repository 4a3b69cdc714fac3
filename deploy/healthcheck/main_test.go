package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Error(w, `{"ready":false,"reason":"draining"}`, http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name   string
		args   []string
		want   int
		stderr string
	}{
		{"http ok", []string{srv.URL + "/readyz"}, exitHealthy, ""},
		{"http 503", []string{srv.URL + "/other"}, exitUnhealthy, "503"},
		{"tcp ok", []string{"tcp://" + ln.Addr().String()}, exitHealthy, ""},
		{"tcp refused", []string{"-timeout", "1s", "tcp://" + closedAddr}, exitUnhealthy, "dial"},
		{"http refused", []string{"http://" + closedAddr + "/readyz"}, exitUnhealthy, "get"},
		{"bad scheme", []string{"ftp://example.com/"}, exitUsage, "unsupported URL scheme"},
		{"no url", nil, exitUsage, "usage"},
		{"two urls", []string{"tcp://a:1", "tcp://b:2"}, exitUsage, "usage"},
		{"bad flag", []string{"-nope", "tcp://a:1"}, exitUsage, "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			if got := run(tt.args, &stderr); got != tt.want {
				t.Errorf("run(%q) = %d, want %d; stderr: %s", tt.args, got, tt.want, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("run(%q) stderr %q does not contain %q", tt.args, stderr.String(), tt.stderr)
			}
			if tt.want == exitHealthy && stderr.Len() != 0 {
				t.Errorf("run(%q) wrote %q to stderr", tt.args, stderr.String())
			}
		})
	}
}
