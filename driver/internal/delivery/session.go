package delivery

import (
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/scpbridge"
)

// Session is what delivery uses of an established controller session of
// the driver. Its methods must not block.
type Session interface {
	// Serial is the controller's serial; ID the session's id, as written
	// in scp_sessions.
	Serial() string
	ID() string
	// Done is closed when the session ends.
	Done() <-chan struct{}
	// Logger logs with the session's fields.
	Logger() *zerolog.Logger
	// Send queues a frame on the session's writer without blocking; it
	// fails once the session is closing (or, its queue full, closes it as
	// a slow consumer). Keep the frames queued in one burst well below
	// the driver's send queue.
	Send(scpbridge.Message) error
	// CheckDrained tells a draining session that no command waits for its
	// answer any more: it may be released.
	CheckDrained()
}

// log returns the session's logger.
func (cs *cmdSession) log() *zerolog.Logger { return cs.s.Logger() }

// sessionDone reports whether the session ended.
func (cs *cmdSession) sessionDone() bool {
	select {
	case <-cs.s.Done():
		return true
	default:
		return false
	}
}
