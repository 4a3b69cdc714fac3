package scpbridge

// Command asks a controller to do something. The host chooses Tag and the
// controller answers with a CommandStatus carrying the same tag.
//
//	tag       u32
//	code      u8   CommandCode
//	body_len  u16  then body_len bytes, by code:
//	  set_time:          time_ms i64 (Unix milliseconds)
//	  momentary_unlock:  door u16, seconds u16
//	  door_mode:         door u16, mode u8
//	  output:            output u16, action u8, ms u32 (pulse length)
//	  card_add:          card u64, facility u32, pin str (0..8 digits),
//	                     levels (count u8 <= 32, then u16 each),
//	                     activate i64, expire i64 (Unix seconds, 0 = none)
//	  card_delete:       card u64
//	  access_level:      level u16, doors (count u8 <= 64, then u16 each)
//	  reset, id_request, tran_status: empty
//
// A command with a code this version does not know decodes without error
// (its body is skipped) so that the controller can NAK it as
// unknown_command.
type Command struct {
	Tag  uint32
	Code CommandCode

	TimeMS   int64        // set_time
	Door     uint16       // momentary_unlock, door_mode
	Seconds  uint16       // momentary_unlock
	Mode     DoorMode     // door_mode
	Output   uint16       // output
	Action   OutputAction // output
	PulseMS  uint32       // output
	Card     uint64       // card_add, card_delete
	Facility uint32       // card_add
	PIN      string       // card_add
	Levels   []uint16     // card_add
	Activate int64        // card_add
	Expire   int64        // card_add
	Level    uint16       // access_level
	Doors    []uint16     // access_level
}

// MaxPINLen is the longest PIN a card may carry.
const MaxPINLen = 8

// FrameType returns FrameCommand.
func (*Command) FrameType() FrameType { return FrameCommand }

// AppendPayload appends the encoded command.
func (m *Command) AppendPayload(b []byte) ([]byte, error) {
	e := encoder{b: b, frame: FrameCommand}
	e.u32(m.Tag)
	e.u8(uint8(m.Code))
	lenAt := len(e.b)
	e.u16(0)
	switch m.Code {
	case CmdSetTime:
		e.u64(uint64(m.TimeMS))
	case CmdMomentaryUnlock:
		e.u16(m.Door)
		e.u16(m.Seconds)
	case CmdDoorMode:
		if !m.Mode.Valid() {
			e.fail("mode", m.Mode.String())
		}
		e.u16(m.Door)
		e.u8(uint8(m.Mode))
	case CmdOutput:
		if !m.Action.Valid() {
			e.fail("action", m.Action.String())
		}
		e.u16(m.Output)
		e.u8(uint8(m.Action))
		e.u32(m.PulseMS)
	case CmdCardAdd:
		if !digits(m.PIN) {
			e.fail("pin", "not digits")
		}
		e.u64(m.Card)
		e.u32(m.Facility)
		e.str(m.PIN, MaxPINLen, "pin")
		e.u16list(m.Levels, MaxLevels, "levels")
		e.u64(uint64(m.Activate))
		e.u64(uint64(m.Expire))
	case CmdCardDelete:
		e.u64(m.Card)
	case CmdAccessLevel:
		e.u16(m.Level)
		e.u16list(m.Doors, MaxDoors, "doors")
	case CmdReset, CmdIDRequest, CmdTranStatus:
	default:
		e.fail("code", m.Code.String())
	}
	n := len(e.b) - lenAt - 2
	e.b[lenAt] = byte(n >> 8)
	e.b[lenAt+1] = byte(n)
	return e.done()
}

// UnmarshalPayload decodes a command payload.
func (m *Command) UnmarshalPayload(p []byte) error {
	d := decoder{b: p, frame: FrameCommand}
	*m = Command{Levels: m.Levels[:0], Doors: m.Doors[:0]}
	m.Tag = d.u32("tag")
	m.Code = CommandCode(d.u8("code"))
	n := int(d.u16("body_len"))
	b := decoder{b: d.bytes(n, "body"), frame: FrameCommand}
	if d.err != nil {
		return d.err
	}
	switch m.Code {
	case CmdSetTime:
		m.TimeMS = int64(b.u64("time_ms"))
	case CmdMomentaryUnlock:
		m.Door = b.u16("door")
		m.Seconds = b.u16("seconds")
	case CmdDoorMode:
		m.Door = b.u16("door")
		m.Mode = DoorMode(b.u8("mode"))
		if b.err == nil && !m.Mode.Valid() {
			b.fail("mode", m.Mode.String())
		}
	case CmdOutput:
		m.Output = b.u16("output")
		m.Action = OutputAction(b.u8("action"))
		m.PulseMS = b.u32("ms")
		if b.err == nil && !m.Action.Valid() {
			b.fail("action", m.Action.String())
		}
	case CmdCardAdd:
		m.Card = b.u64("card")
		m.Facility = b.u32("facility")
		m.PIN = b.str(MaxPINLen, "pin")
		if b.err == nil && !digits(m.PIN) {
			b.fail("pin", "not digits")
		}
		m.Levels = b.u16list(m.Levels, MaxLevels, "levels")
		m.Activate = int64(b.u64("activate"))
		m.Expire = int64(b.u64("expire"))
	case CmdCardDelete:
		m.Card = b.u64("card")
	case CmdAccessLevel:
		m.Level = b.u16("level")
		m.Doors = b.u16list(m.Doors, MaxDoors, "doors")
	}
	return b.err
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// CommandStatus is a controller's answer to the command with Tag.
//
//	tag         u32
//	status      u8   Status: 0 OK, 1 NAK, 2 FAILED
//	nak_reason  u8   NakReason when status is NAK, else 0
//	detail      str  0..255: the answer of id_request / tran_status, or why
type CommandStatus struct {
	Tag       uint32
	Status    Status
	NakReason NakReason
	Detail    string
}

// FrameType returns FrameCommandStatus.
func (*CommandStatus) FrameType() FrameType { return FrameCommandStatus }

// AppendPayload appends the encoded status.
func (m *CommandStatus) AppendPayload(b []byte) ([]byte, error) {
	e := encoder{b: b, frame: FrameCommandStatus}
	if m.Status > StatusFailed {
		e.fail("status", m.Status.String())
	}
	e.u32(m.Tag)
	e.u8(uint8(m.Status))
	e.u8(uint8(m.NakReason))
	e.str(m.Detail, MaxTextLen, "detail")
	return e.done()
}

// UnmarshalPayload decodes a status payload.
func (m *CommandStatus) UnmarshalPayload(p []byte) error {
	d := decoder{b: p, frame: FrameCommandStatus}
	m.Tag = d.u32("tag")
	m.Status = Status(d.u8("status"))
	m.NakReason = NakReason(d.u8("nak_reason"))
	m.Detail = d.str(MaxTextLen, "detail")
	if d.err == nil && m.Status > StatusFailed {
		d.fail("status", m.Status.String())
	}
	return d.err
}
