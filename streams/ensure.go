package streams

import (
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
	// EventsMaxBytes caps the size of SCP_EVENTS. When it is reached the
	// oldest events are discarded (DiscardOld), so that controllers keep
	// being acknowledged; it must stay below the server's max_file_store
	// minus the other streams, or the server refuses events once its store
	// is full. Memory storage (tests, benchmarks) caps it at
	// MemoryEventsMaxBytes.
	EventsMaxBytes int64
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

// DefaultEventsMaxBytes is the default size cap of SCP_EVENTS: 12 GiB,
// below the 20 GB max_file_store of deploy/nats with room for the other
// streams and buckets.
const DefaultEventsMaxBytes int64 = 12 << 30

// MemoryEventsMaxBytes caps SCP_EVENTS in memory storage, which the server
// reserves up front.
const MemoryEventsMaxBytes int64 = 1 << 30

// DefaultConfig returns the default Config: one replica, events kept 30
// days up to DefaultEventsMaxBytes, results 30 days, commands 7 days, a 2
// hour duplicate window, 1000 queued commands per controller, file
// storage.
func DefaultConfig() Config {
	return Config{
		Replicas:        1,
		EventsMaxAge:    30 * 24 * time.Hour,
		EventsMaxBytes:  DefaultEventsMaxBytes,
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
	case c.EventsMaxBytes <= 0:
		return fmt.Errorf("%w: events max bytes %d, want > 0", ErrInvalidConfig, c.EventsMaxBytes)
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

// eventsMaxBytes is EventsMaxBytes, capped for memory storage.
func (c Config) eventsMaxBytes() int64 {
	if c.Storage == jetstream.MemoryStorage {
		return min(c.EventsMaxBytes, MemoryEventsMaxBytes)
	}
	return c.EventsMaxBytes
}

// EventsStreamConfig returns the configuration of SCP_EVENTS: events are
// kept EventsMaxAge, and when the stream reaches EventsMaxBytes the oldest
// are discarded (DiscardOld) rather than new ones refused, so a full
// stream never stops the fleet from being acknowledged.
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
		MaxBytes:    cfg.eventsMaxBytes(),
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
