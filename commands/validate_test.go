package commands_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commands"
)

func u16(n uint16) *uint16 { return &n }

func tm(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}

// validCase is a valid parameter set per command type; bad cases start
// from it and break one parameter.
var validCase = map[scpgate.CommandType]scpgate.CommandParams{
	scpgate.CmdSetTime:         {Time: tm("2025-01-02T03:04:05Z")},
	scpgate.CmdMomentaryUnlock: {Door: u16(1), Seconds: 5},
	scpgate.CmdDoorMode:        {Door: u16(65535), Mode: "card_and_pin"},
	scpgate.CmdOutput:          {Output: u16(2), Action: "pulse", MS: 500},
	scpgate.CmdCardAdd: {Card: 1234567, Facility: 42, PIN: "12345678", Levels: []uint16{1, 2, 3},
		Activate: tm("2025-01-01T00:00:00Z"), Expire: tm("2026-01-01T00:00:00Z")},
	scpgate.CmdCardDelete:  {Card: 1},
	scpgate.CmdAccessLevel: {Level: u16(7), Doors: []uint16{1, 2, 64}},
	scpgate.CmdReset:       {},
	scpgate.CmdIDRequest:   {},
	scpgate.CmdTranStatus:  {},
}

func TestValidateGood(t *testing.T) {
	more := []struct {
		typ scpgate.CommandType
		p   scpgate.CommandParams
	}{
		{scpgate.CmdSetTime, scpgate.CommandParams{}},
		{scpgate.CmdMomentaryUnlock, scpgate.CommandParams{Door: u16(65535), Seconds: 3600}},
		{scpgate.CmdOutput, scpgate.CommandParams{Output: u16(1), Action: "on"}},
		{scpgate.CmdOutput, scpgate.CommandParams{Output: u16(1), Action: "off"}},
		{scpgate.CmdOutput, scpgate.CommandParams{Output: u16(1), Action: "pulse", MS: 3_600_000}},
		{scpgate.CmdCardAdd, scpgate.CommandParams{Card: 1}},
		{scpgate.CmdCardAdd, scpgate.CommandParams{Card: 1, Levels: make32()}},
		{scpgate.CmdAccessLevel, scpgate.CommandParams{Level: u16(1)}},
		{scpgate.CmdAccessLevel, scpgate.CommandParams{Level: u16(1), Doors: seq(64)}},
	}
	for _, typ := range commands.Types {
		more = append(more, struct {
			typ scpgate.CommandType
			p   scpgate.CommandParams
		}{typ, validCase[typ]})
	}
	for _, tt := range more {
		if err := commands.Validate(tt.typ, tt.p); err != nil {
			t.Errorf("Validate(%s, %+v): got %v, want nil", tt.typ, tt.p, err)
		}
	}
}

func make32() []uint16 { return seq(32) }

func seq(n int) []uint16 {
	s := make([]uint16, n)
	for i := range s {
		s[i] = uint16(i + 1)
	}
	return s
}

func TestValidateBad(t *testing.T) {
	with := func(typ scpgate.CommandType, change func(*scpgate.CommandParams)) scpgate.CommandParams {
		p := validCase[typ]
		p.Levels = append([]uint16(nil), p.Levels...)
		p.Doors = append([]uint16(nil), p.Doors...)
		change(&p)
		return p
	}
	tests := []struct {
		typ   scpgate.CommandType
		p     scpgate.CommandParams
		param string
	}{
		{scpgate.CmdSetTime, with(scpgate.CmdSetTime, func(p *scpgate.CommandParams) { p.Time = tm("1969-12-31T23:59:59Z") }), "time"},
		{scpgate.CmdSetTime, with(scpgate.CmdSetTime, func(p *scpgate.CommandParams) { p.Door = u16(1) }), "door"},

		{scpgate.CmdMomentaryUnlock, with(scpgate.CmdMomentaryUnlock, func(p *scpgate.CommandParams) { p.Door = nil }), "door"},
		{scpgate.CmdMomentaryUnlock, with(scpgate.CmdMomentaryUnlock, func(p *scpgate.CommandParams) { p.Door = u16(0) }), "door"},
		{scpgate.CmdMomentaryUnlock, with(scpgate.CmdMomentaryUnlock, func(p *scpgate.CommandParams) { p.Seconds = 0 }), "seconds"},
		{scpgate.CmdMomentaryUnlock, with(scpgate.CmdMomentaryUnlock, func(p *scpgate.CommandParams) { p.Seconds = 3601 }), "seconds"},
		{scpgate.CmdMomentaryUnlock, with(scpgate.CmdMomentaryUnlock, func(p *scpgate.CommandParams) { p.Mode = "locked" }), "mode"},

		{scpgate.CmdDoorMode, with(scpgate.CmdDoorMode, func(p *scpgate.CommandParams) { p.Door = nil }), "door"},
		{scpgate.CmdDoorMode, with(scpgate.CmdDoorMode, func(p *scpgate.CommandParams) { p.Mode = "" }), "mode"},
		{scpgate.CmdDoorMode, with(scpgate.CmdDoorMode, func(p *scpgate.CommandParams) { p.Mode = "open_sesame" }), "mode"},
		{scpgate.CmdDoorMode, with(scpgate.CmdDoorMode, func(p *scpgate.CommandParams) { p.Seconds = 3 }), "seconds"},

		{scpgate.CmdOutput, with(scpgate.CmdOutput, func(p *scpgate.CommandParams) { p.Output = nil }), "output"},
		{scpgate.CmdOutput, with(scpgate.CmdOutput, func(p *scpgate.CommandParams) { p.Output = u16(0) }), "output"},
		{scpgate.CmdOutput, with(scpgate.CmdOutput, func(p *scpgate.CommandParams) { p.Action = "" }), "action"},
		{scpgate.CmdOutput, with(scpgate.CmdOutput, func(p *scpgate.CommandParams) { p.Action = "toggle" }), "action"},
		{scpgate.CmdOutput, with(scpgate.CmdOutput, func(p *scpgate.CommandParams) { p.MS = 0 }), "ms"},
		{scpgate.CmdOutput, with(scpgate.CmdOutput, func(p *scpgate.CommandParams) { p.MS = 3_600_001 }), "ms"},
		{scpgate.CmdOutput, with(scpgate.CmdOutput, func(p *scpgate.CommandParams) { p.Action = "on" }), "ms"},
		{scpgate.CmdOutput, with(scpgate.CmdOutput, func(p *scpgate.CommandParams) { p.Door = u16(1) }), "door"},

		{scpgate.CmdCardAdd, with(scpgate.CmdCardAdd, func(p *scpgate.CommandParams) { p.Card = 0 }), "card"},
		{scpgate.CmdCardAdd, with(scpgate.CmdCardAdd, func(p *scpgate.CommandParams) { p.PIN = "123456789" }), "pin"},
		{scpgate.CmdCardAdd, with(scpgate.CmdCardAdd, func(p *scpgate.CommandParams) { p.PIN = "12a4" }), "pin"},
		{scpgate.CmdCardAdd, with(scpgate.CmdCardAdd, func(p *scpgate.CommandParams) { p.Levels = seq(33) }), "levels"},
		{scpgate.CmdCardAdd, with(scpgate.CmdCardAdd, func(p *scpgate.CommandParams) { p.Levels = []uint16{1, 0} }), "levels"},
		{scpgate.CmdCardAdd, with(scpgate.CmdCardAdd, func(p *scpgate.CommandParams) { p.Levels = []uint16{4, 4} }), "levels"},
		{scpgate.CmdCardAdd, with(scpgate.CmdCardAdd, func(p *scpgate.CommandParams) { p.Activate = tm("1970-01-01T00:00:00Z") }), "activate"},
		{scpgate.CmdCardAdd, with(scpgate.CmdCardAdd, func(p *scpgate.CommandParams) { p.Expire = tm("1960-01-01T00:00:00Z") }), "expire"},
		{scpgate.CmdCardAdd, with(scpgate.CmdCardAdd, func(p *scpgate.CommandParams) { p.Expire = p.Activate }), "expire"},
		{scpgate.CmdCardAdd, with(scpgate.CmdCardAdd, func(p *scpgate.CommandParams) { p.Level = u16(1) }), "level"},

		{scpgate.CmdCardDelete, with(scpgate.CmdCardDelete, func(p *scpgate.CommandParams) { p.Card = 0 }), "card"},
		{scpgate.CmdCardDelete, with(scpgate.CmdCardDelete, func(p *scpgate.CommandParams) { p.PIN = "1" }), "pin"},

		{scpgate.CmdAccessLevel, with(scpgate.CmdAccessLevel, func(p *scpgate.CommandParams) { p.Level = nil }), "level"},
		{scpgate.CmdAccessLevel, with(scpgate.CmdAccessLevel, func(p *scpgate.CommandParams) { p.Level = u16(0) }), "level"},
		{scpgate.CmdAccessLevel, with(scpgate.CmdAccessLevel, func(p *scpgate.CommandParams) { p.Doors = seq(65) }), "doors"},
		{scpgate.CmdAccessLevel, with(scpgate.CmdAccessLevel, func(p *scpgate.CommandParams) { p.Doors = []uint16{0} }), "doors"},
		{scpgate.CmdAccessLevel, with(scpgate.CmdAccessLevel, func(p *scpgate.CommandParams) { p.Doors = []uint16{2, 2} }), "doors"},
		{scpgate.CmdAccessLevel, with(scpgate.CmdAccessLevel, func(p *scpgate.CommandParams) { p.Door = u16(2) }), "door"},

		{scpgate.CmdReset, scpgate.CommandParams{Seconds: 1}, "seconds"},
		{scpgate.CmdIDRequest, scpgate.CommandParams{Card: 1}, "card"},
		{scpgate.CmdTranStatus, scpgate.CommandParams{Doors: []uint16{1}}, "doors"},
	}
	for _, tt := range tests {
		err := commands.Validate(tt.typ, tt.p)
		var pe *commands.ParamError
		if !errors.As(err, &pe) {
			t.Errorf("Validate(%s, %+v): got %v, want a *ParamError for %s", tt.typ, tt.p, err, tt.param)
			continue
		}
		if pe.Param != tt.param || pe.Type != tt.typ || !errors.Is(err, commands.ErrBadParams) {
			t.Errorf("Validate(%s, %+v): got param %q type %q (%v), want param %q", tt.typ, tt.p, pe.Param, pe.Type, err, tt.param)
		}
		if !strings.Contains(err.Error(), "param "+tt.param+":") {
			t.Errorf("Validate(%s): got message %q, want it to name param %s", tt.typ, err, tt.param)
		}
	}
}

func TestValidateUnknownType(t *testing.T) {
	for _, typ := range []scpgate.CommandType{"", "open_door", "SET_TIME"} {
		if err := commands.Validate(typ, scpgate.CommandParams{}); !errors.Is(err, commands.ErrUnknownType) {
			t.Errorf("Validate(%q): got %v, want ErrUnknownType", typ, err)
		}
	}
}
