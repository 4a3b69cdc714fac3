// Package natstest starts real nats-servers with JetStream inside tests and
// connects to them. Every server and connection is closed by t.Cleanup.
package natstest

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readyTimeout bounds how long a server may take to accept clients.
const readyTimeout = 10 * time.Second

// Options returns the default options of a test server: JetStream with its
// store in a fresh t.TempDir(), listening on 127.0.0.1 on a random port,
// without logging or signal handlers. Pass them to RunServerWith to change
// something, or to restart a server on the same store and port.
func Options(t testing.TB) *server.Options {
	t.Helper()
	return &server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}
}

// RunServer starts a JetStream server with Options(t) and shuts it down on
// cleanup.
func RunServer(t testing.TB) *server.Server {
	t.Helper()
	return RunServerWith(t, Options(t))
}

// RunServerWith starts a server with opts and shuts it down on cleanup.
// Zero values are filled with the defaults of Options: host 127.0.0.1, a
// random port (0 means random here, not 4222), a store in t.TempDir(), no
// logging, no signal handlers. JetStream is always enabled.
//
// The server is started with a copy of opts; once it listens, opts.Port and
// opts.StoreDir are set to what it used. Shutting the server down and
// calling RunServerWith again with the same opts therefore restarts it on
// the same address and store.
func RunServerWith(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = -1
	}
	if opts.StoreDir == "" {
		opts.StoreDir = t.TempDir()
	}
	opts.JetStream = true
	opts.NoSigs = true
	if !opts.Debug && !opts.Trace {
		opts.NoLog = true
	}
	run := opts.Clone()
	s, err := server.NewServer(run)
	if err != nil {
		t.Fatalf("natstest: new server: %v", err)
	}
	if !opts.NoLog {
		s.ConfigureLogger()
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	s.Start()
	if !s.ReadyForConnections(readyTimeout) {
		t.Fatalf("natstest: server on %s:%d not ready after %s", opts.Host, opts.Port, readyTimeout)
	}
	if addr, ok := s.Addr().(*net.TCPAddr); ok {
		opts.Port = addr.Port
	}
	return s
}

// Connect connects to s with opts (after a default client name) and closes
// the connection on cleanup.
func Connect(t testing.TB, s *server.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	all := append([]nats.Option{nats.Name(t.Name())}, opts...)
	nc, err := nats.Connect(s.ClientURL(), all...)
	if err != nil {
		t.Fatalf("natstest: connect to %s: %v", s.ClientURL(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns the JetStream context of nc.
func JetStream(t testing.TB, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return js
}

// CheckFor calls fn every interval until it returns nil, and fails the test
// with fn's last error when timeout passes first. Use it instead of sleeping.
func CheckFor(t testing.TB, timeout, interval time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = fn(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(interval)
	}
	t.Fatalf("natstest: condition not met after %s: %v", timeout, err)
}
