package commands

import (
	"errors"
	"fmt"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/scpbridge"
)

// Parameter ranges checked by Validate.
const (
	// MaxUnlockSeconds is the longest momentary unlock.
	MaxUnlockSeconds = 3600
	// MaxPulseMS is the longest output pulse (one hour).
	MaxPulseMS = 3_600_000
	// MaxPINLen is the longest PIN of a card.
	MaxPINLen = scpbridge.MaxPINLen
	// MaxLevels is the most access levels one card may hold.
	MaxLevels = scpbridge.MaxLevels
	// MaxDoors is the most doors one access level may open.
	MaxDoors = scpbridge.MaxDoors
)

// ErrUnknownType is returned (wrapped) by Validate and ToWire for a command
// type this version does not know.
var ErrUnknownType = errors.New("unknown command type")

// ErrBadParams is wrapped by every *ParamError, so callers can test for a
// parameter problem with errors.Is.
var ErrBadParams = errors.New("bad command params")

// ParamError says which parameter of a command is wrong and why.
type ParamError struct {
	Type   scpgate.CommandType // the command type
	Param  string              // the JSON name of the parameter, e.g. "seconds"
	Reason string              // what is wrong, e.g. "required, 1 to 3600"
}

// Error returns "<type>: param <param>: <reason>".
func (e *ParamError) Error() string {
	return fmt.Sprintf("%s: param %s: %s", e.Type, e.Param, e.Reason)
}

// Unwrap returns ErrBadParams.
func (e *ParamError) Unwrap() error { return ErrBadParams }

// Types lists every command type in a stable order.
var Types = []scpgate.CommandType{
	scpgate.CmdSetTime, scpgate.CmdMomentaryUnlock, scpgate.CmdDoorMode, scpgate.CmdOutput,
	scpgate.CmdCardAdd, scpgate.CmdCardDelete, scpgate.CmdAccessLevel,
	scpgate.CmdReset, scpgate.CmdIDRequest, scpgate.CmdTranStatus,
}

// paramsOf names the parameters each command type takes; any other
// parameter that is set is refused, so a misplaced one ("door" on an output
// command) is reported instead of silently ignored.
var paramsOf = map[scpgate.CommandType][]string{
	scpgate.CmdSetTime:         {"time"},
	scpgate.CmdMomentaryUnlock: {"door", "seconds"},
	scpgate.CmdDoorMode:        {"door", "mode"},
	scpgate.CmdOutput:          {"output", "action", "ms"},
	scpgate.CmdCardAdd:         {"card", "facility", "pin", "levels", "activate", "expire"},
	scpgate.CmdCardDelete:      {"card"},
	scpgate.CmdAccessLevel:     {"level", "doors"},
	scpgate.CmdReset:           nil,
	scpgate.CmdIDRequest:       nil,
	scpgate.CmdTranStatus:      nil,
}

// setParams returns the JSON names of the parameters of p that are set, in
// the order of scpgate.CommandParams.
func setParams(p *scpgate.CommandParams) []string {
	var set []string
	add := func(ok bool, name string) {
		if ok {
			set = append(set, name)
		}
	}
	add(p.Time != nil, "time")
	add(p.Door != nil, "door")
	add(p.Seconds != 0, "seconds")
	add(p.Mode != "", "mode")
	add(p.Output != nil, "output")
	add(p.Action != "", "action")
	add(p.MS != 0, "ms")
	add(p.Card != 0, "card")
	add(p.Facility != 0, "facility")
	add(p.PIN != "", "pin")
	add(len(p.Levels) > 0, "levels")
	add(p.Activate != nil, "activate")
	add(p.Expire != nil, "expire")
	add(p.Level != nil, "level")
	add(len(p.Doors) > 0, "doors")
	return set
}

// Validate checks that p holds exactly the parameters cmdType takes, each
// in range. It returns an error wrapping ErrUnknownType for an unknown
// type, or a *ParamError naming the first bad parameter:
//
//	set_time          time (optional; default: the controller is set to the
//	                  time the command is sent), not before 1970
//	momentary_unlock  door 1..65535, seconds 1..3600
//	door_mode         door 1..65535, mode (a door mode name)
//	output            output 1..65535, action off|on|pulse,
//	                  ms 1..3600000 for pulse only
//	card_add          card >= 1, facility, pin up to 8 digits,
//	                  levels up to 32 distinct numbers 1..65535,
//	                  activate and expire after 1970, expire after activate
//	card_delete       card >= 1
//	access_level      level 1..65535, doors up to 64 distinct numbers 1..65535
//	reset, id_request, tran_status: no parameters
//
// Doors, outputs and levels are checked against the protocol's range only:
// a controller NAKs (out_of_range) a number it does not have.
func Validate(cmdType scpgate.CommandType, p scpgate.CommandParams) error {
	allowed, ok := paramsOf[cmdType]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownType, string(cmdType))
	}
	bad := func(param, format string, args ...any) error {
		return &ParamError{Type: cmdType, Param: param, Reason: fmt.Sprintf(format, args...)}
	}
	for _, name := range setParams(&p) {
		if !contains(allowed, name) {
			return bad(name, "not a parameter of %s", cmdType)
		}
	}
	switch cmdType {
	case scpgate.CmdSetTime:
		if p.Time != nil && p.Time.Before(time.Unix(0, 0)) {
			return bad("time", "%s is before 1970", p.Time.Format(time.RFC3339))
		}
	case scpgate.CmdMomentaryUnlock:
		if err := number(cmdType, "door", p.Door); err != nil {
			return err
		}
		if p.Seconds < 1 || p.Seconds > MaxUnlockSeconds {
			return bad("seconds", "required, 1 to %d", MaxUnlockSeconds)
		}
	case scpgate.CmdDoorMode:
		if err := number(cmdType, "door", p.Door); err != nil {
			return err
		}
		if p.Mode == "" {
			return bad("mode", "required, one of %s", modeList())
		}
		if _, ok := scpbridge.ParseDoorMode(p.Mode); !ok {
			return bad("mode", "%q is not one of %s", p.Mode, modeList())
		}
	case scpgate.CmdOutput:
		return validateOutput(p)
	case scpgate.CmdCardAdd:
		return validateCardAdd(p)
	case scpgate.CmdCardDelete:
		if p.Card == 0 {
			return bad("card", "required, 1 or more")
		}
	case scpgate.CmdAccessLevel:
		if err := number(cmdType, "level", p.Level); err != nil {
			return err
		}
		return numberList(cmdType, "doors", p.Doors, MaxDoors)
	}
	return nil
}

func validateOutput(p scpgate.CommandParams) error {
	t := scpgate.CmdOutput
	if err := number(t, "output", p.Output); err != nil {
		return err
	}
	if p.Action == "" {
		return &ParamError{Type: t, Param: "action", Reason: "required, one of off, on, pulse"}
	}
	a, ok := scpbridge.ParseOutputAction(p.Action)
	if !ok {
		return &ParamError{Type: t, Param: "action", Reason: fmt.Sprintf("%q is not one of off, on, pulse", p.Action)}
	}
	switch {
	case a == scpbridge.ActionPulse && (p.MS < 1 || p.MS > MaxPulseMS):
		return &ParamError{Type: t, Param: "ms", Reason: fmt.Sprintf("required for action pulse, 1 to %d", MaxPulseMS)}
	case a != scpbridge.ActionPulse && p.MS != 0:
		return &ParamError{Type: t, Param: "ms", Reason: "only allowed with action pulse"}
	}
	return nil
}

func validateCardAdd(p scpgate.CommandParams) error {
	t := scpgate.CmdCardAdd
	bad := func(param, format string, args ...any) error {
		return &ParamError{Type: t, Param: param, Reason: fmt.Sprintf(format, args...)}
	}
	if p.Card == 0 {
		return bad("card", "required, 1 or more")
	}
	if len(p.PIN) > MaxPINLen {
		return bad("pin", "%d digits, at most %d allowed", len(p.PIN), MaxPINLen)
	}
	for i := 0; i < len(p.PIN); i++ {
		if p.PIN[i] < '0' || p.PIN[i] > '9' {
			return bad("pin", "only digits are allowed")
		}
	}
	if err := numberList(t, "levels", p.Levels, MaxLevels); err != nil {
		return err
	}
	epoch := time.Unix(0, 0)
	if p.Activate != nil && !p.Activate.After(epoch) {
		return bad("activate", "%s is not after 1970", p.Activate.Format(time.RFC3339))
	}
	if p.Expire != nil && !p.Expire.After(epoch) {
		return bad("expire", "%s is not after 1970", p.Expire.Format(time.RFC3339))
	}
	if p.Activate != nil && p.Expire != nil && !p.Expire.After(*p.Activate) {
		return bad("expire", "%s is not after activate %s",
			p.Expire.Format(time.RFC3339), p.Activate.Format(time.RFC3339))
	}
	return nil
}

// number checks a required door, output or level number: 1 to 65535 (the
// upper bound is the type's).
func number(t scpgate.CommandType, param string, n *uint16) error {
	if n == nil {
		return &ParamError{Type: t, Param: param, Reason: "required, 1 to 65535"}
	}
	if *n == 0 {
		return &ParamError{Type: t, Param: param, Reason: "0 is not a number; 1 to 65535"}
	}
	return nil
}

// numberList checks a list of at most max distinct numbers 1 to 65535.
func numberList(t scpgate.CommandType, param string, list []uint16, max int) error {
	if len(list) > max {
		return &ParamError{Type: t, Param: param, Reason: fmt.Sprintf("%d entries, at most %d allowed", len(list), max)}
	}
	for i, n := range list {
		if n == 0 {
			return &ParamError{Type: t, Param: param, Reason: fmt.Sprintf("entry %d is 0; numbers are 1 to 65535", i)}
		}
		for _, m := range list[:i] {
			if m == n {
				return &ParamError{Type: t, Param: param, Reason: fmt.Sprintf("%d appears twice", n)}
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func modeList() string {
	var s string
	for m := scpbridge.ModeDisabled; m.Valid(); m++ {
		if s != "" {
			s += ", "
		}
		s += m.String()
	}
	return s
}
