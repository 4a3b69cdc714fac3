package streams

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
)

// Stream, bucket and subject names.
const (
	// EventsStream stores controller events on scp.evt.<serial>.<kind>.
	EventsStream = "SCP_EVENTS"
	// CommandsStream stores queued commands on scp.cmd.<serial>.
	CommandsStream = "SCP_COMMANDS"
	// ResultsStream stores command results on scp.res.<serial>.
	ResultsStream = "SCP_RESULTS"

	// SessionsBucket maps a serial to the session that owns it (presence
	// and fencing).
	SessionsBucket = "scp_sessions"
	// CursorsBucket maps a serial to the stream sequence of its last
	// completed command; it is updated with compare-and-set.
	CursorsBucket = "scp_cursors"
	// StateBucket holds the current state of every controller, door, input
	// and output; ingest writes it.
	StateBucket = "scp_state"
	// CommandsBucket maps a command id (<serial>.<stream sequence>) to its
	// latest status record (sent, then its final result), so that any
	// commander can answer "where is command X" without scanning streams.
	// Records expire with the results.
	CommandsBucket = "scp_commands"

	// EventsAll matches every event subject.
	EventsAll = "scp.evt.>"
	// CommandsAll matches every command subject.
	CommandsAll = "scp.cmd.*"
	// ResultsAll matches every result subject.
	ResultsAll = "scp.res.*"

	// MaxSerialLen is the longest controller serial accepted.
	MaxSerialLen = 32
)

const (
	eventsPrefix   = "scp.evt."
	commandsPrefix = "scp.cmd."
	resultsPrefix  = "scp.res."
)

// ErrInvalidSerial is returned (wrapped) when a controller serial cannot be
// used as a subject token: it is empty, longer than MaxSerialLen, or holds a
// character outside [A-Za-z0-9_-].
var ErrInvalidSerial = errors.New("invalid controller serial")

// ErrInvalidKind is returned (wrapped) when an event kind is not one of
// scpgate.Kinds.
var ErrInvalidKind = errors.New("invalid event kind")

// ValidSerial reports whether s can be used as a controller serial: 1 to
// MaxSerialLen characters of [A-Za-z0-9_-]. The error wraps ErrInvalidSerial
// and says what is wrong.
func ValidSerial(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty", ErrInvalidSerial)
	case len(s) > MaxSerialLen:
		return fmt.Errorf("%w: %d bytes long, at most %d allowed", ErrInvalidSerial, len(s), MaxSerialLen)
	}
	for i := 0; i < len(s); i++ {
		if !serialByte(s[i]) {
			return fmt.Errorf("%w: %q has byte %q at %d; only A-Z a-z 0-9 _ - are allowed", ErrInvalidSerial, s, s[i], i)
		}
	}
	return nil
}

func serialByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// EventSubject returns scp.evt.<serial>.<kind>, the subject of one event.
func EventSubject(serial string, kind scpgate.Kind) (string, error) {
	if err := ValidSerial(serial); err != nil {
		return "", err
	}
	if !kind.Valid() {
		return "", fmt.Errorf("%w: %q", ErrInvalidKind, string(kind))
	}
	return eventsPrefix + serial + "." + string(kind), nil
}

// EventsFor returns scp.evt.<serial>.>, matching every event of one
// controller.
func EventsFor(serial string) (string, error) {
	if err := ValidSerial(serial); err != nil {
		return "", err
	}
	return eventsPrefix + serial + ".>", nil
}

// CommandSubject returns scp.cmd.<serial>, the command queue of one
// controller.
func CommandSubject(serial string) (string, error) {
	if err := ValidSerial(serial); err != nil {
		return "", err
	}
	return commandsPrefix + serial, nil
}

// CommandRecordSubject returns the subject a write of the scp_commands
// record of command id is published on: what KeyValue.Put of that bucket
// publishes to, for a writer that does not wait for the acknowledgement.
// id is <serial>.<sequence> (commands.ID); it is not checked here.
func CommandRecordSubject(id string) string {
	return "$KV." + CommandsBucket + "." + id
}

// ResultSubject returns scp.res.<serial>, where the results of one
// controller's commands are published.
func ResultSubject(serial string) (string, error) {
	if err := ValidSerial(serial); err != nil {
		return "", err
	}
	return resultsPrefix + serial, nil
}

// SerialFromSubject returns the serial (the third token) of an event,
// command or result subject. ok is false for any other subject or when the
// token is not a valid serial.
func SerialFromSubject(subject string) (serial string, ok bool) {
	var rest string
	switch {
	case strings.HasPrefix(subject, eventsPrefix):
		rest = subject[len(eventsPrefix):]
		i := strings.IndexByte(rest, '.')
		if i < 0 || i == len(rest)-1 {
			return "", false // an event subject has a kind after the serial
		}
		rest = rest[:i]
	case strings.HasPrefix(subject, commandsPrefix):
		rest = subject[len(commandsPrefix):]
	case strings.HasPrefix(subject, resultsPrefix):
		rest = subject[len(resultsPrefix):]
	default:
		return "", false
	}
	if ValidSerial(rest) != nil {
		return "", false
	}
	return rest, true
}

// jsErrStoreFailed is the JetStream API error code of a message the stream
// refused to store (JSStreamStoreFailedF in nats-server).
const jsErrStoreFailed jetstream.ErrorCode = 10077

// IsQueueFull reports whether err is the server refusing a command because
// the controller's queue in SCP_COMMANDS already holds CommandQueueCap
// commands.
func IsQueueFull(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrStoreFailed &&
		strings.Contains(apiErr.Description, "maximum messages per subject")
}
