package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Config sizes the streams and buckets. DefaultConfig gives the defaults;
// production sets Replicas to 3.
type Config struct {
	// Replicas is the replica count of every stream and bucket (1 or 3).
	Replicas int
	// EventsMaxAge is how long SCP_EVENTS keeps an event.
	EventsMaxAge time.Duration
	// CommandsMaxAge is how long SCP_COMMANDS keeps a command; it bounds
	// how long a command can wait for an offline controller.
	CommandsMaxAge time.Duration
	// ResultsMaxAge is how long SCP_RESULTS keeps a result.
	ResultsMaxAge time.Duration
	// DuplicateWindow is how long a Nats-Msg-Id is remembered on every
	// stream, so that a re-sent event, command or result is stored once.
	// It is capped at each stream's MaxAge.
	DuplicateWindow time.Duration
	// CommandQueueCap is the number of commands that may wait for one
	// controller; a further command is refused by the server.
	CommandQueueCap int64
	// Storage is the storage of every stream and bucket.
	Storage jetstream.StorageType
}

// DefaultConfig returns the default Config: one replica, events and results
// kept 30 days, commands 7 days, a 2 hour duplicate window, 1000 queued
// commands per controller, file storage.
func DefaultConfig() Config {
	return Config{
		Replicas:        1,
		EventsMaxAge:    30 * 24 * time.Hour,
		CommandsMaxAge:  7 * 24 * time.Hour,
		ResultsMaxAge:   30 * 24 * time.Hour,
		DuplicateWindow: 2 * time.Hour,
		CommandQueueCap: 1000,
		Storage:         jetstream.FileStorage,
	}
}

// ErrInvalidConfig is returned (wrapped) by Ensure when a Config value is
// out of range.
var ErrInvalidConfig = errors.New("invalid streams config")

// Validate reports the first out-of-range value of c.
func (c Config) Validate() error {
	switch {
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("%w: replicas %d, want 1 to 5", ErrInvalidConfig, c.Replicas)
	case c.EventsMaxAge <= 0, c.CommandsMaxAge <= 0, c.ResultsMaxAge <= 0:
		return fmt.Errorf("%w: max ages must be positive (events %s, commands %s, results %s)",
			ErrInvalidConfig, c.EventsMaxAge, c.CommandsMaxAge, c.ResultsMaxAge)
	case c.DuplicateWindow <= 0:
		return fmt.Errorf("%w: duplicate window %s, want > 0", ErrInvalidConfig, c.DuplicateWindow)
	case c.CommandQueueCap < 1:
		return fmt.Errorf("%w: command queue cap %d, want >= 1", ErrInvalidConfig, c.CommandQueueCap)
	}
	return nil
}

// dupWindow returns the duplicate window of a stream whose messages live
// maxAge: the server refuses a window longer than MaxAge.
func (c Config) dupWindow(maxAge time.Duration) time.Duration {
	return min(c.DuplicateWindow, maxAge)
}

// EventsStreamConfig returns the configuration of SCP_EVENTS.
func EventsStreamConfig(cfg Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        EventsStream,
		Description: "controller events: scp.evt.<serial>.<kind>",
		Subjects:    []string{EventsAll},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     cfg.Storage,
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.EventsMaxAge,
		Duplicates:  cfg.dupWindow(cfg.EventsMaxAge),
		AllowDirect: true,
	}
}

// CommandsStreamConfig returns the configuration of SCP_COMMANDS: one
// subject per controller holding at most CommandQueueCap commands; a
// further one is refused (DiscardNew per subject) rather than dropping a
// queued command. Per-message TTLs are allowed.
func CommandsStreamConfig(cfg Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:                 CommandsStream,
		Description:          "queued commands: scp.cmd.<serial>",
		Subjects:             []string{CommandsAll},
		Retention:            jetstream.LimitsPolicy,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		MaxMsgsPerSubject:    cfg.CommandQueueCap,
		Storage:              cfg.Storage,
		Replicas:             cfg.Replicas,
		MaxAge:               cfg.CommandsMaxAge,
		Duplicates:           cfg.dupWindow(cfg.CommandsMaxAge),
		AllowDirect:          true,
		AllowMsgTTL:          true,
	}
}

// ResultsStreamConfig returns the configuration of SCP_RESULTS. Results are
// published with the command id as message id, so a result published twice
// within the duplicate window is stored once.
func ResultsStreamConfig(cfg Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        ResultsStream,
		Description: "command results: scp.res.<serial>",
		Subjects:    []string{ResultsAll},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     cfg.Storage,
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.ResultsMaxAge,
		Duplicates:  cfg.dupWindow(cfg.ResultsMaxAge),
		AllowDirect: true,
	}
}

// BucketConfigs returns the configuration of the key-value buckets
// scp_sessions, scp_cursors, scp_state and scp_commands, in that order.
// Each keeps only the latest value of a key; command status records expire
// after ResultsMaxAge.
func BucketConfigs(cfg Config) []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{Bucket: SessionsBucket, Description: "serial -> owning session", History: 1, Storage: cfg.Storage, Replicas: cfg.Replicas},
		{Bucket: CursorsBucket, Description: "serial -> last completed command sequence", History: 1, Storage: cfg.Storage, Replicas: cfg.Replicas},
		{Bucket: StateBucket, Description: "current state of controllers, doors, inputs and outputs", History: 1, Storage: cfg.Storage, Replicas: cfg.Replicas},
		{Bucket: CommandsBucket, Description: "command id -> status record", History: 1, TTL: cfg.ResultsMaxAge, Storage: cfg.Storage, Replicas: cfg.Replicas},
	}
}

// Handles are the streams and buckets Ensure created or updated.
type Handles struct {
	Events, Commands, Results jetstream.Stream
	Sessions, Cursors, State  jetstream.KeyValue
	// CommandStatus is the scp_commands bucket.
	CommandStatus jetstream.KeyValue
}

// Ensure creates every stream and bucket, or updates them to cfg when they
// exist. It is idempotent: every service calls it at start.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg Config) (*Handles, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var h Handles
	streams := []struct {
		cfg jetstream.StreamConfig
		dst *jetstream.Stream
	}{
		{EventsStreamConfig(cfg), &h.Events},
		{CommandsStreamConfig(cfg), &h.Commands},
		{ResultsStreamConfig(cfg), &h.Results},
	}
	for _, s := range streams {
		st, err := js.CreateOrUpdateStream(ctx, s.cfg)
		if err != nil {
			return nil, fmt.Errorf("create or update stream %s: %w", s.cfg.Name, err)
		}
		*s.dst = st
	}
	buckets := BucketConfigs(cfg)
	dsts := []*jetstream.KeyValue{&h.Sessions, &h.Cursors, &h.State, &h.CommandStatus}
	for i, b := range buckets {
		kv, err := js.CreateOrUpdateKeyValue(ctx, b)
		if err != nil {
			return nil, fmt.Errorf("create or update bucket %s: %w", b.Bucket, err)
		}
		*dsts[i] = kv
	}
	return &h, nil
}
