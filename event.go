package scpgate

import (
	"strconv"
	"time"
)

// SchemaVersion is the version of the JSON documents published to NATS
// (events, commands and results). It is the "v" field of every document.
const SchemaVersion = 1

// Kind is the event family; it is the last token of the event subject
// scp.evt.<serial>.<kind>.
type Kind string

// Event kinds. Every transaction type of the controller protocol maps to one
// kind, and the driver adds presence.
const (
	KindAccess   Kind = "access"
	KindDoor     Kind = "door"
	KindInput    Kind = "input"
	KindOutput   Kind = "output"
	KindTamper   Kind = "tamper"
	KindPower    Kind = "power"
	KindSystem   Kind = "system"
	KindPresence Kind = "presence"
)

// Kinds lists every event kind in a stable order.
var Kinds = []Kind{KindAccess, KindDoor, KindInput, KindOutput, KindTamper, KindPower, KindSystem, KindPresence}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if k == v {
			return true
		}
	}
	return false
}

// Event is one controller event as published to scp.evt.<serial>.<kind>.
// It is encoded to JSON from this struct, never by hand; docs/events.md
// documents every field with an example per kind.
type Event struct {
	V          int       `json:"v"`
	ID         string    `json:"id"`         // <serial>.<boot epoch>.<seq>, also the Nats-Msg-Id
	Controller string    `json:"controller"` // controller serial
	Kind       Kind      `json:"kind"`
	BootEpoch  uint32    `json:"boot_epoch"`
	Seq        uint32    `json:"seq"`  // transaction serial within the boot epoch; 0 for presence
	Time       time.Time `json:"time"` // controller's timestamp
	// TimeClamped is set when the controller's timestamp lay outside years
	// 0..9999 (RFC 3339 cannot write it): Time is then the nearest bound
	// and TimeMS the controller's value.
	TimeClamped bool      `json:"time_clamped,omitempty"`
	TimeMS      int64     `json:"time_ms,omitempty"`
	Received    time.Time `json:"received"`           // when the driver read it
	Driver      string    `json:"driver,omitempty"`   // id of the driver that published it
	Code        string    `json:"code"`               // e.g. "granted", "forced_open", "alarm", "online"
	CodeNum     uint8     `json:"code_num,omitempty"` // the wire code, for integrators that want it
	Source      *Source   `json:"source,omitempty"`
	Card        *Card     `json:"card,omitempty"`     // access events
	Lost        uint32    `json:"lost,omitempty"`     // system/log_over_limit: transactions overwritten
	Presence    *Presence `json:"presence,omitempty"` // presence events
	// StreamSeq is the sequence of the SCP_EVENTS message the event was
	// read from, set by ingest (0 when unknown). It is not published: the
	// stream assigns it on storage, so it is monotonic per controller even
	// when the controller's boot epoch goes down. State uses it to order
	// transactions of different boot epochs (see Mark.After).
	StreamSeq uint64 `json:"-"`
	// Doc is the document as published, when known (ingest sets it from
	// the message): stores keep it as the event's document instead of
	// encoding the event again. It must be the JSON of this event.
	Doc []byte `json:"-"`
	// Inserted is set by Store.WriteBatch on each event it newly stored
	// (not on one it already held). It is not published.
	Inserted bool `json:"-"`
}

// Source names what raised an event: the controller itself or one of its
// readers, doors, inputs or outputs, by number.
type Source struct {
	Type   string `json:"type"` // controller, reader, door, input, output
	Number uint16 `json:"number"`
}

// Card is the credential of an access event. Its JSON also carries the
// number as a decimal string, number_str (see Card.MarshalJSON).
type Card struct {
	Number   uint64 `json:"number"`
	Facility uint32 `json:"facility"`
}

// Presence describes a session start ("online") or end ("offline").
type Presence struct {
	Session  string `json:"session"`
	Remote   string `json:"remote,omitempty"`
	Model    string `json:"model,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	Reason   string `json:"reason,omitempty"` // why the session ended (a CloseReason)
	// SessionRev is the revision of the scp_sessions entry the session
	// wrote when it claimed the controller (on offline: its latest such
	// write). Revisions grow with every claim, so the newer owner has the
	// higher one: presence is ordered by it, not by time. 0 when the
	// session never claimed the controller or the driver predates it.
	SessionRev uint64 `json:"session_rev,omitempty"`
}

// EventID returns the message id of a controller transaction:
// <serial>.<boot epoch>.<seq>. JetStream deduplicates on it.
func EventID(serial string, bootEpoch, seq uint32) string {
	b := make([]byte, 0, len(serial)+22)
	b = append(b, serial...)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(bootEpoch), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(seq), 10)
	return string(b)
}

// PresenceEventID returns the message id of a presence event: one per
// session start and one per session end.
func PresenceEventID(serial, session, code string) string {
	return serial + ".presence." + session + "." + code
}
