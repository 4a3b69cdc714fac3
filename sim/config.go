package sim

import (
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/internal/backoff"
	"github.com/scpgate/scpgate/scpbridge"
)

// Defaults of Config (see Config.WithDefaults).
const (
	DefaultModel            = "SCP-2000"
	DefaultFirmware         = "1.0.0"
	DefaultLogCapacity      = 50_000
	DefaultDoors            = 4
	DefaultInputs           = 8
	DefaultOutputs          = 8
	DefaultBackoffMin       = 250 * time.Millisecond
	DefaultBackoffMax       = 30 * time.Second
	DefaultDialTimeout      = 10 * time.Second
	DefaultHandshakeTimeout = scpbridge.DefaultHandshakeTimeout
	DefaultStrikeTime       = 5 * time.Second
)

// ErrRunning is returned by Controller.Run when the controller is already
// running: one controller holds one session at a time.
var ErrRunning = errors.New("sim: controller already running")

// ErrUnacked is wrapped by Fleet.WaitAcked when transactions are still
// unacknowledged at its deadline.
var ErrUnacked = errors.New("transactions unacknowledged after drain timeout")

// BackoffConfig bounds the reconnect delay: exponential from Min, capped at
// Max, with full jitter.
type BackoffConfig struct {
	Min time.Duration
	Max time.Duration
}

// Delay returns the wait before reconnect attempt number attempt (0 for the
// first reconnect after a session): a uniformly random duration in
// [0, min(Max, Min·2^attempt)) ("full jitter"), so a fleet that lost its
// host at the same instant does not come back at the same instant.
func (b BackoffConfig) Delay(attempt int, r *rand.Rand) time.Duration {
	limit := b.Ceiling(attempt)
	if limit <= 0 {
		return 0
	}
	return time.Duration(r.Int64N(int64(limit)))
}

// Ceiling returns the upper bound of Delay(attempt): min(Max, Min·2^attempt).
func (b BackoffConfig) Ceiling(attempt int) time.Duration {
	return backoff.Ceiling(b.Min, b.Max, attempt)
}

// Config describes one simulated controller. Zero fields take the
// defaults of WithDefaults.
type Config struct {
	Target   string // host:port of the host (driver or load balancer)
	Serial   string // controller serial, [A-Za-z0-9_-], at most 32 bytes
	Secret   string // shared secret sent in the hello (protocol 1.1); empty: none
	Model    string
	Firmware string

	// LogCapacity is how many unacknowledged transactions the log holds
	// before it overwrites the oldest (default 50,000).
	LogCapacity int
	// Rate is the mean number of transactions per second the controller
	// logs on its own (card reads, door cycles, inputs...); 0 logs none.
	Rate float64
	// Doors, Inputs, Outputs size the controller; commands naming a
	// number outside 1..n are refused with NAK out_of_range.
	Doors, Inputs, Outputs int

	// NakRate is the probability that an otherwise valid command is
	// refused at random (NAK busy or content_error), for testing hosts.
	NakRate float64
	// CommandLatency delays every command answer (and its effect).
	CommandLatency time.Duration
	// DropAnswers makes the controller receive and record the first
	// DropAnswers new commands of its life but never answer them (nor
	// carry them out), as a panel that lost them would: for testing how a
	// host gives up on a command.
	DropAnswers int
	// StrikeTime is how long a momentary unlock without seconds, or a
	// granted card, keeps the strike released (default 5s).
	StrikeTime time.Duration

	Backoff          BackoffConfig // reconnect delay (250ms .. 30s)
	DialTimeout      time.Duration // TCP connect plus TLS handshake (10s)
	HandshakeTimeout time.Duration // hello sent to welcome received (10s)

	// LocalAddr is the source IP to dial from ("" lets the system pick).
	LocalAddr string
	// TLS, when set, wraps the connection in TLS (ServerName defaults to
	// the target host).
	TLS *tls.Config
	// Log receives the controller's logs; the zero value discards them.
	Log zerolog.Logger
	// Seed makes the random event mix, jitter and NAKs reproducible.
	Seed int64
	// BootEpoch is the controller's boot epoch; 0 derives one from the
	// start time. Restart moves it forward.
	BootEpoch uint32
	// LogCommEvents logs system/comm_offline when the host is lost and
	// system/comm_online when a session starts, like a real panel. Off by
	// default so that tests can count exactly what they Generate.
	LogCommEvents bool
	// AckLatency, when set, records for every transaction the time from
	// writing it to the host to reading the ack that covers it. A fleet
	// may share one.
	AckLatency *Histogram
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Model == "" {
		c.Model = DefaultModel
	}
	if c.Firmware == "" {
		c.Firmware = DefaultFirmware
	}
	if c.LogCapacity <= 0 {
		c.LogCapacity = DefaultLogCapacity
	}
	if c.Doors <= 0 {
		c.Doors = DefaultDoors
	}
	if c.Inputs <= 0 {
		c.Inputs = DefaultInputs
	}
	if c.Outputs <= 0 {
		c.Outputs = DefaultOutputs
	}
	if c.StrikeTime <= 0 {
		c.StrikeTime = DefaultStrikeTime
	}
	if c.Backoff.Min <= 0 {
		c.Backoff.Min = DefaultBackoffMin
	}
	if c.Backoff.Max < c.Backoff.Min {
		c.Backoff.Max = max(DefaultBackoffMax, c.Backoff.Min)
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.BootEpoch == 0 {
		c.BootEpoch = uint32(time.Now().Unix())
	}
	return c
}

// Stats is a snapshot of one controller's counters. Every logged
// transaction ends up in exactly one of Acked, Unacked, DroppedOverflow or
// LostOnRestart.
type Stats struct {
	Serial            string
	Connected         bool   // a session is established now
	BootEpoch         uint32 // current boot epoch
	LastLogged        uint32 // newest serial logged in this epoch
	LastAcked         uint32 // newest serial the host acknowledged in this epoch
	Generated         uint64 // transactions logged, all epochs
	Acked             uint64 // transactions acknowledged while still in the log
	Unacked           uint64 // transactions in the log, not yet acknowledged
	DroppedOverflow   uint64 // unacknowledged transactions overwritten by a full log
	LostOnRestart     uint64 // unacknowledged transactions lost by Restart
	Reconnects        uint64 // connection attempts after the first
	Sessions          uint64 // sessions established (welcome received)
	CommandsOK        uint64 // commands answered OK
	CommandsNAK       uint64 // commands answered NAK
	DuplicateCommands uint64 // commands whose tag was already seen in this epoch
	Rejected          uint64 // sessions refused by the host
	PingsSent         uint64 // heartbeats sent because the controller was idle
	Offline           uint64 // sessions dropped because the host fell silent
}

// ReceivedCommand is one command as the controller received and answered
// it.
type ReceivedCommand struct {
	Time      time.Time
	Tag       uint32
	Code      scpbridge.CommandCode
	Door      uint16 // momentary_unlock, door_mode
	Output    uint16 // output
	Status    scpbridge.Status
	NakReason scpbridge.NakReason
	Detail    string
	Duplicate bool // the tag was seen before in this boot epoch
}

// Report sums the stats of a fleet. It is the JSON `scpgate sim` prints.
type Report struct {
	Controllers       int    `json:"controllers"`
	Connected         int    `json:"connected"`
	Sessions          uint64 `json:"sessions"` // sessions established over the run, all controllers
	Generated         uint64 `json:"generated"`
	Acked             uint64 `json:"acked"`
	Unacked           uint64 `json:"unacked"`
	DroppedOverflow   uint64 `json:"dropped_overflow"`
	Reconnects        uint64 `json:"reconnects"`
	CommandsOK        uint64 `json:"commands_ok"`
	CommandsNAK       uint64 `json:"commands_nak"`
	DuplicateCommands uint64 `json:"duplicate_commands"`
	Rejected          uint64 `json:"rejected"`
}

// Add adds o to r (the parent of a split fleet sums its children).
func (r *Report) Add(o Report) {
	r.Controllers += o.Controllers
	r.Connected += o.Connected
	r.Sessions += o.Sessions
	r.Generated += o.Generated
	r.Acked += o.Acked
	r.Unacked += o.Unacked
	r.DroppedOverflow += o.DroppedOverflow
	r.Reconnects += o.Reconnects
	r.CommandsOK += o.CommandsOK
	r.CommandsNAK += o.CommandsNAK
	r.DuplicateCommands += o.DuplicateCommands
	r.Rejected += o.Rejected
}

// AddStats adds one controller's stats to r.
func (r *Report) AddStats(s Stats) {
	r.Controllers++
	if s.Connected {
		r.Connected++
	}
	r.Sessions += s.Sessions
	r.Generated += s.Generated
	r.Acked += s.Acked
	r.Unacked += s.Unacked
	r.DroppedOverflow += s.DroppedOverflow
	r.Reconnects += s.Reconnects
	r.CommandsOK += s.CommandsOK
	r.CommandsNAK += s.CommandsNAK
	r.DuplicateCommands += s.DuplicateCommands
	r.Rejected += s.Rejected
}
