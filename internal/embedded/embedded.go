// Package embedded runs a nats-server with JetStream inside the scpgate
// process, for `scpgate dev` and `scpgate bench`.
package embedded

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrNotReady means the embedded server did not start accepting
// connections in time (the port may be taken).
var ErrNotReady = errors.New("embedded nats-server not ready")

// Options configure the embedded server.
type Options struct {
	DataDir string // JetStream store lives in DataDir/jetstream
	Host    string // default 127.0.0.1
	Port    int    // default 4222; -1 picks a free port
	// MaxPayload, MaxMemory and MaxStore are left to the server's defaults.
}

// Start starts the server and waits until it accepts connections.
func Start(o Options) (*server.Server, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = 4222
	}
	if o.DataDir == "" {
		return nil, errors.New("embedded: no data directory")
	}
	opts := &server.Options{
		ServerName: "scpgate-dev",
		Host:       o.Host,
		Port:       o.Port,
		JetStream:  true,
		StoreDir:   filepath.Join(o.DataDir, "nats"),
		NoSigs:     true,
		// Room for tens of thousands of driver subscriptions and clients.
		MaxConn: 65536,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("%w: listening on %s:%d", ErrNotReady, o.Host, o.Port)
	}
	return s, nil
}
