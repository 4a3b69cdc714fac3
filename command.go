package scpgate

import "time"

// CommandType names a command the vendor app can send to a controller.
type CommandType string

// Command types.
const (
	CmdSetTime         CommandType = "set_time"
	CmdMomentaryUnlock CommandType = "momentary_unlock"
	CmdDoorMode        CommandType = "door_mode"
	CmdOutput          CommandType = "output"
	CmdCardAdd         CommandType = "card_add"
	CmdCardDelete      CommandType = "card_delete"
	CmdAccessLevel     CommandType = "access_level"
	CmdReset           CommandType = "reset"
	CmdIDRequest       CommandType = "id_request"
	CmdTranStatus      CommandType = "tran_status"
)

// CommandStatus is where a command stands. Every command ends in exactly one
// of the final statuses ok, nak, expired or failed.
type CommandStatus string

// Command statuses.
const (
	StatusQueued  CommandStatus = "queued"
	StatusSent    CommandStatus = "sent"
	StatusOK      CommandStatus = "ok"
	StatusNAK     CommandStatus = "nak"
	StatusExpired CommandStatus = "expired"
	StatusFailed  CommandStatus = "failed"
)

// Final reports whether s ends a command.
func (s CommandStatus) Final() bool {
	switch s {
	case StatusOK, StatusNAK, StatusExpired, StatusFailed:
		return true
	}
	return false
}

// CommandParams are the parameters of every command type; each type uses
// the fields its documentation names and the commander validates them.
type CommandParams struct {
	Time     *time.Time `json:"time,omitempty"`     // set_time (default: now)
	Door     *uint16    `json:"door,omitempty"`     // momentary_unlock, door_mode
	Seconds  uint16     `json:"seconds,omitempty"`  // momentary_unlock
	Mode     string     `json:"mode,omitempty"`     // door_mode: disabled, unlocked, locked, card_only, card_and_pin, card_or_pin, facility_code_only
	Output   *uint16    `json:"output,omitempty"`   // output
	Action   string     `json:"action,omitempty"`   // output: off, on, pulse
	MS       uint32     `json:"ms,omitempty"`       // output pulse length
	Card     CardNumber `json:"card,omitempty"`     // card_add, card_delete: a number, or a string of digits
	Facility uint32     `json:"facility,omitempty"` // card_add
	PIN      string     `json:"pin,omitempty"`      // card_add: up to 8 digits
	Levels   []uint16   `json:"levels,omitempty"`   // card_add: access levels
	Activate *time.Time `json:"activate,omitempty"` // card_add
	Expire   *time.Time `json:"expire,omitempty"`   // card_add
	Level    *uint16    `json:"level,omitempty"`    // access_level
	Doors    []uint16   `json:"doors,omitempty"`    // access_level: doors the level opens
}

// Command is a command as stored in SCP_COMMANDS on scp.cmd.<serial>.
type Command struct {
	V          int           `json:"v"`
	ID         string        `json:"id,omitempty"` // <serial>.<stream sequence>; empty in the stored document
	Controller string        `json:"controller"`
	Type       CommandType   `json:"type"`
	Params     CommandParams `json:"params"`
	Created    time.Time     `json:"created"`
	Expires    time.Time     `json:"expires"` // after this it is never sent; its result is "expired"
}

// Result is the one result of a command, published to scp.res.<serial>
// with the command id as message id. Its JSON is the one command document
// of the API (docs/api.md, schema/command.json): the same shape as the
// status record (commands.Record) and the commander's submit reply.
type Result struct {
	V          int           `json:"v"`
	ID         string        `json:"id"` // command id
	Controller string        `json:"controller"`
	Type       CommandType   `json:"type"`
	Status     CommandStatus `json:"status"`
	Reason     string        `json:"reason,omitempty"` // nak reason or failure cause
	Detail     string        `json:"detail,omitempty"` // the controller's answer text (id_request, tran_status)
	Seq        uint64        `json:"seq"`              // stream sequence of the command in SCP_COMMANDS
	Created    time.Time     `json:"created"`
	Expires    time.Time     `json:"expires,omitzero"` // after this the command is never sent
	Sent       *time.Time    `json:"sent,omitempty"`
	Finished   time.Time     `json:"finished,omitzero"` // set once the status is final
	Driver     string        `json:"driver,omitempty"`
	// Duplicate is true in a submit reply whose idempotency key named an
	// earlier, identical command; never set in SCP_RESULTS.
	Duplicate bool `json:"duplicate,omitempty"`
}
