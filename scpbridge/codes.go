package scpbridge

import "fmt"

// SourceType says what raised a transaction.
type SourceType uint8

// Source types.
const (
	SourceController SourceType = 1
	SourceReader     SourceType = 2
	SourceDoor       SourceType = 3
	SourceInput      SourceType = 4
	SourceOutput     SourceType = 5
)

var sourceNames = [...]string{1: "controller", 2: "reader", 3: "door", 4: "input", 5: "output"}

func (s SourceType) String() string { return name(sourceNames[:], uint8(s), "source") }

// TranType is the family of a transaction; each maps to one event kind.
type TranType uint8

// Transaction types.
const (
	TranAccess TranType = 1
	TranDoor   TranType = 2
	TranInput  TranType = 3
	TranOutput TranType = 4
	TranTamper TranType = 5
	TranPower  TranType = 6
	TranSystem TranType = 7
)

var tranNames = [...]string{1: "access", 2: "door", 3: "input", 4: "output", 5: "tamper", 6: "power", 7: "system"}

func (t TranType) String() string { return name(tranNames[:], uint8(t), "tran") }

// Valid reports whether t is a transaction type of version 1.0.
func (t TranType) Valid() bool { return t >= TranAccess && t <= TranSystem }

// Access codes (TranAccess).
const (
	AccessGranted            uint8 = 1
	AccessDeniedBadFacility  uint8 = 2
	AccessDeniedNotInFile    uint8 = 3
	AccessDeniedExpired      uint8 = 4
	AccessDeniedBadPIN       uint8 = 5
	AccessDeniedAntiPassback uint8 = 6
	AccessDeniedNoAccess     uint8 = 7 // card valid, but no access level opens this door now
)

// Door codes (TranDoor).
const (
	DoorSecure           uint8 = 1 // closed and locked
	DoorOpened           uint8 = 2 // opened after a grant or while unlocked
	DoorForcedOpen       uint8 = 3
	DoorHeldOpen         uint8 = 4
	DoorHeldOpenPrealarm uint8 = 5
	DoorUnlocked         uint8 = 6 // strike released (grant, command or schedule)
	DoorLocked           uint8 = 7 // strike engaged again
)

// Input codes (TranInput): change of state of a monitored point.
const (
	InputNormal     uint8 = 1
	InputAlarm      uint8 = 2
	InputFaultOpen  uint8 = 3
	InputFaultShort uint8 = 4
)

// Output codes (TranOutput).
const (
	OutputOff   uint8 = 1
	OutputOn    uint8 = 2
	OutputPulse uint8 = 3
)

// Tamper codes (TranTamper).
const (
	TamperAlarm  uint8 = 1
	TamperNormal uint8 = 2
)

// Power codes (TranPower).
const (
	PowerFail          uint8 = 1
	PowerRestore       uint8 = 2
	PowerBatteryLow    uint8 = 3
	PowerBatteryNormal uint8 = 4
)

// System codes (TranSystem).
const (
	SystemCommOnline   uint8 = 1 // host communication restored
	SystemCommOffline  uint8 = 2 // host communication lost (logged, sent later)
	SystemLogOverLimit uint8 = 3 // log overflowed; Lost says how many were overwritten
	SystemReset        uint8 = 4 // controller restarted
	SystemTimeSet      uint8 = 5 // clock set by the host
)

var codeNames = map[TranType][]string{
	TranAccess: {1: "granted", 2: "denied_bad_facility", 3: "denied_not_in_card_file", 4: "denied_expired", 5: "denied_bad_pin", 6: "denied_anti_passback", 7: "denied_no_access"},
	TranDoor:   {1: "secure", 2: "opened", 3: "forced_open", 4: "held_open", 5: "held_open_prealarm", 6: "unlocked", 7: "locked"},
	TranInput:  {1: "normal", 2: "alarm", 3: "fault_open", 4: "fault_short"},
	TranOutput: {1: "off", 2: "on", 3: "pulse"},
	TranTamper: {1: "alarm", 2: "normal"},
	TranPower:  {1: "fail", 2: "restore", 3: "battery_low", 4: "battery_normal"},
	TranSystem: {1: "comm_online", 2: "comm_offline", 3: "log_over_limit", 4: "reset", 5: "time_set"},
}

// CodeName returns the documented name of a transaction code, or
// "code_<n>" for one this version does not know (a newer minor version may
// add codes; they are passed on, not rejected).
func CodeName(t TranType, code uint8) string {
	if names, ok := codeNames[t]; ok && int(code) < len(names) && names[code] != "" {
		return names[code]
	}
	return fmt.Sprintf("code_%d", code)
}

// CommandCode says what a command asks the controller to do.
type CommandCode uint8

// Command codes.
const (
	CmdSetTime         CommandCode = 1
	CmdMomentaryUnlock CommandCode = 2
	CmdDoorMode        CommandCode = 3
	CmdOutput          CommandCode = 4
	CmdCardAdd         CommandCode = 5
	CmdCardDelete      CommandCode = 6
	CmdAccessLevel     CommandCode = 7
	CmdReset           CommandCode = 8
	CmdIDRequest       CommandCode = 9
	CmdTranStatus      CommandCode = 10
)

var cmdNames = [...]string{1: "set_time", 2: "momentary_unlock", 3: "door_mode", 4: "output", 5: "card_add", 6: "card_delete", 7: "access_level", 8: "reset", 9: "id_request", 10: "tran_status"}

func (c CommandCode) String() string { return name(cmdNames[:], uint8(c), "command") }

// Valid reports whether c is a command code of version 1.0.
func (c CommandCode) Valid() bool { return c >= CmdSetTime && c <= CmdTranStatus }

// ParseCommandCode maps a command name (as in CommandCode.String) to its code.
func ParseCommandCode(s string) (CommandCode, bool) {
	for i, n := range cmdNames {
		if n != "" && n == s {
			return CommandCode(i), true
		}
	}
	return 0, false
}

// DoorMode is the mode set by a door_mode command.
type DoorMode uint8

// Door modes.
const (
	ModeDisabled         DoorMode = 1
	ModeUnlocked         DoorMode = 2
	ModeLocked           DoorMode = 3
	ModeCardOnly         DoorMode = 4
	ModeCardAndPIN       DoorMode = 5
	ModeCardOrPIN        DoorMode = 6
	ModeFacilityCodeOnly DoorMode = 7
)

var modeNames = [...]string{1: "disabled", 2: "unlocked", 3: "locked", 4: "card_only", 5: "card_and_pin", 6: "card_or_pin", 7: "facility_code_only"}

func (m DoorMode) String() string { return name(modeNames[:], uint8(m), "mode") }

// Valid reports whether m is a door mode of version 1.0.
func (m DoorMode) Valid() bool { return m >= ModeDisabled && m <= ModeFacilityCodeOnly }

// ParseDoorMode maps a mode name to its value.
func ParseDoorMode(s string) (DoorMode, bool) {
	v, ok := parse(modeNames[:], s)
	return DoorMode(v), ok
}

// OutputAction is what an output command does.
type OutputAction uint8

// Output actions.
const (
	ActionOff   OutputAction = 1
	ActionOn    OutputAction = 2
	ActionPulse OutputAction = 3
)

var actionNames = [...]string{1: "off", 2: "on", 3: "pulse"}

func (a OutputAction) String() string { return name(actionNames[:], uint8(a), "action") }

// Valid reports whether a is an output action of version 1.0.
func (a OutputAction) Valid() bool { return a >= ActionOff && a <= ActionPulse }

// ParseOutputAction maps an action name to its value.
func ParseOutputAction(s string) (OutputAction, bool) {
	v, ok := parse(actionNames[:], s)
	return OutputAction(v), ok
}

// Status is a controller's answer to a command.
type Status uint8

// Command statuses.
const (
	StatusOK     Status = 0
	StatusNAK    Status = 1 // refused; NakReason says why
	StatusFailed Status = 2 // accepted but could not be carried out
)

var statusNames = [...]string{0: "ok", 1: "nak", 2: "failed"}

func (s Status) String() string { return name(statusNames[:], uint8(s), "status") }

// NakReason says why a controller refused a command.
type NakReason uint8

// NAK reasons.
const (
	NakNone           NakReason = 0
	NakBadHeader      NakReason = 1 // command frame could not be parsed
	NakContentError   NakReason = 2 // body fields inconsistent
	NakNotAuthorized  NakReason = 3 // session not allowed to command (bad login)
	NakUnknownCommand NakReason = 4 // command code not supported
	NakOutOfRange     NakReason = 5 // no such door, output or level on this controller
	NakBusy           NakReason = 6 // try again later
)

var nakNames = [...]string{0: "none", 1: "bad_header", 2: "content_error", 3: "not_authorized", 4: "unknown_command", 5: "out_of_range", 6: "busy"}

func (r NakReason) String() string { return name(nakNames[:], uint8(r), "nak") }

// RejectReason says why a host refused a session.
type RejectReason uint8

// Reject reasons.
const (
	RejectNotAllowed          RejectReason = 1 // serial not admitted
	RejectBadSerial           RejectReason = 2 // serial empty or with forbidden characters
	RejectUnsupportedVersion  RejectReason = 3
	RejectBusy                RejectReason = 4 // host at capacity; retry elsewhere
	RejectDraining            RejectReason = 5 // host shutting down; retry elsewhere
	RejectCertificateMismatch RejectReason = 6 // TLS identity differs from the serial
	RejectUnavailable         RejectReason = 7 // host cannot store events now
)

var rejectNames = [...]string{1: "not_allowed", 2: "bad_serial", 3: "unsupported_version", 4: "busy", 5: "draining", 6: "certificate_mismatch", 7: "unavailable"}

func (r RejectReason) String() string { return name(rejectNames[:], uint8(r), "reject") }

// ByeReason says why a side closes a session in order.
type ByeReason uint8

// Bye reasons.
const (
	ByeShutdown   ByeReason = 1 // controller powering down or restarting
	ByeDraining   ByeReason = 2 // host draining: reconnect (through the balancer) after ReconnectAfter
	ByeTakenOver  ByeReason = 3 // a newer session for this serial exists
	ByeProtocol   ByeReason = 4 // the peer broke the protocol
	ByeHeartbeat  ByeReason = 5 // the peer was silent past the offline time
	ByeSlowReader ByeReason = 6 // the peer did not read fast enough
)

var byeNames = [...]string{1: "shutdown", 2: "draining", 3: "taken_over", 4: "protocol_error", 5: "heartbeat_timeout", 6: "slow_reader"}

func (r ByeReason) String() string { return name(byeNames[:], uint8(r), "bye") }

func name(names []string, v uint8, kind string) string {
	if int(v) < len(names) && names[v] != "" {
		return names[v]
	}
	return fmt.Sprintf("%s_%d", kind, v)
}

func parse(names []string, s string) (uint8, bool) {
	for i, n := range names {
		if n != "" && n == s {
			return uint8(i), true
		}
	}
	return 0, false
}
