package main

import (
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/internal/natsconn"
)

// connectJetStream connects to NATS as name and returns its JetStream
// context and a function that drains and closes the connection.
func connectJetStream(cfg natsconn.Config, name string, log zerolog.Logger, extra ...nats.Option) (jetstream.JetStream, func(), error) {
	nc, err := natsconn.Connect(cfg, name, log, extra...)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, func() { _ = nc.Drain() }, nil
}

// jetstreamOf returns the JetStream context of nc.
func jetstreamOf(nc *nats.Conn) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nil
}
