// Package commands holds what the commander and the driver must agree on
// about a command: which parameters each command type takes and their
// ranges ([Validate]), how a stored command becomes a wire command
// ([ToWire]), how a command is named, and the status record kept for it.
//
// # Identity
//
// A command is stored in SCP_COMMANDS on scp.cmd.<serial> as the JSON of
// scpgate.Command, with its ID field left empty. Its public id is
// "<serial>.<stream sequence>" ([ID], [ParseID]): anyone who reads the
// stream can derive it, and serials cannot contain dots.
//
// The Nats-Msg-Id of the stored message is "<serial>.k.<key>" when the
// caller gave an idempotency key ([MsgID]), else a random unique id, so a
// repeated submission with the same key inside the stream's duplicate
// window is stored once.
//
// # Status
//
// The driver writes a [Record] to the key-value bucket [StatusBucket] under
// the command id when it sends a command and when the command ends.
package commands

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/scpgate/scpgate/streams"
)

// ErrInvalidID is returned (wrapped) by ParseID for a string that is not a
// command id.
var ErrInvalidID = errors.New("invalid command id")

// ErrInvalidKey is returned (wrapped) by ValidKey for an idempotency key
// that is empty, too long or holds a forbidden character.
var ErrInvalidKey = errors.New("invalid idempotency key")

// MaxKeyLen is the longest idempotency key accepted.
const MaxKeyLen = 64

// ID returns the public id of the command stored at stream sequence seq on
// the subject of serial: "<serial>.<seq>".
func ID(serial string, seq uint64) string {
	b := make([]byte, 0, len(serial)+21)
	b = append(b, serial...)
	b = append(b, '.')
	b = strconv.AppendUint(b, seq, 10)
	return string(b)
}

// ParseID splits a command id into the controller serial and the stream
// sequence. The serial must be valid (streams.ValidSerial) and the sequence
// a decimal number from 1 without leading zeros, so that
// ID(ParseID(id)) == id.
func ParseID(id string) (serial string, seq uint64, err error) {
	serial, num, ok := strings.Cut(id, ".")
	if !ok {
		return "", 0, fmt.Errorf("%w: %q has no '.'; want <serial>.<sequence>", ErrInvalidID, id)
	}
	if err := streams.ValidSerial(serial); err != nil {
		return "", 0, fmt.Errorf("%w: %q: %w", ErrInvalidID, id, err)
	}
	seq, err = strconv.ParseUint(num, 10, 64)
	if err != nil || seq == 0 || num[0] == '0' || num[0] == '+' {
		return "", 0, fmt.Errorf("%w: %q: sequence %q is not a number from 1", ErrInvalidID, id, num)
	}
	return serial, seq, nil
}

// ValidKey reports whether key can be used as an idempotency key: 1 to
// MaxKeyLen characters of [A-Za-z0-9_-.:]. The error wraps ErrInvalidKey.
func ValidKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: %d bytes long, at most %d allowed", ErrInvalidKey, len(key), MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '-' || c == '.' || c == ':') {
			return fmt.Errorf("%w: byte %q at %d; only A-Z a-z 0-9 _ - . : are allowed", ErrInvalidKey, c, i)
		}
	}
	return nil
}

// MsgID returns the Nats-Msg-Id of a command submitted for serial with
// idempotency key key: "<serial>.k.<key>". The key must pass ValidKey.
func MsgID(serial, key string) string {
	return serial + ".k." + key
}
