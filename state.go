package scpgate

import (
	"slices"
	"time"
)

// Current state is derived from events by last-writer-wins registers: each
// value (a controller's presence, a door's position, a door's lock, an
// input, an output) remembers the Mark of the event that set it and is
// replaced only by an event that is newer (Mark.After for transactions,
// PresenceAfter for presence). The result does not depend on the order
// events are applied in, so redelivery and parallel ingest cannot move
// state back.

// Mark identifies the event that set a state value. StreamSeq is the
// event's SCP_EVENTS sequence when known; SessionRev the scp_sessions
// revision of a presence event's session.
type Mark struct {
	Event      string    `json:"event"`
	BootEpoch  uint32    `json:"boot_epoch,omitempty"`
	Seq        uint32    `json:"seq,omitempty"`
	StreamSeq  uint64    `json:"stream_seq,omitempty"`
	SessionRev uint64    `json:"session_rev,omitempty"`
	Time       time.Time `json:"time"`
}

// MarkOf returns the mark of ev.
func MarkOf(ev *Event) Mark {
	m := Mark{Event: ev.ID, BootEpoch: ev.BootEpoch, Seq: ev.Seq, StreamSeq: ev.StreamSeq, Time: ev.Time.UTC()}
	if ev.Presence != nil {
		m.SessionRev = ev.Presence.SessionRev
	}
	return m
}

// IsZero reports whether m is unset.
func (m Mark) IsZero() bool { return m.Event == "" }

// After reports whether m is later than o in a controller's transaction
// order. Every set mark is after an unset one.
//
// Within one boot epoch the controller's seq orders exactly, even when a
// transaction whose publish failed lands in the stream after a later one.
// Across boot epochs the epoch says nothing (a controller whose clock was
// reset or that was replaced comes back with a lower one): the
// transaction stored later in SCP_EVENTS, by StreamSeq, is the later one.
// A mark without StreamSeq (written before it was recorded, or by a
// writer that does not know it) is older than one with it; between two
// without, the higher boot epoch wins.
func (m Mark) After(o Mark) bool {
	switch {
	case m.IsZero():
		return false
	case o.IsZero():
		return true
	case m.BootEpoch == o.BootEpoch:
		return m.Seq > o.Seq
	case m.StreamSeq != o.StreamSeq:
		return m.StreamSeq > o.StreamSeq
	}
	return m.BootEpoch > o.BootEpoch
}

// Point types: the things of a controller that have a state.
const (
	PointDoor   = "door"
	PointInput  = "input"
	PointOutput = "output"
)

// Aspects of a point. A door has two independent registers, its position
// (status) and its lock; inputs and outputs have one (state).
const (
	AspectStatus = "status"
	AspectLock   = "lock"
	AspectState  = "state"
)

// PointUpdate is the state value one event sets on one point.
type PointUpdate struct {
	Type   string // PointDoor, PointInput or PointOutput
	Number uint16
	Aspect string // AspectStatus, AspectLock or AspectState
	Code   string // the event code
	At     Mark
}

var pointAspects = map[Kind]map[string]string{
	KindDoor: {
		"secure": AspectStatus, "opened": AspectStatus, "forced_open": AspectStatus,
		"held_open": AspectStatus, "held_open_prealarm": AspectStatus,
		"unlocked": AspectLock, "locked": AspectLock,
	},
	KindInput:  {"normal": AspectState, "alarm": AspectState, "fault_open": AspectState, "fault_short": AspectState},
	KindOutput: {"off": AspectState, "on": AspectState, "pulse": AspectState},
}

// PointUpdateOf returns the state value ev sets, if any: door events with
// source type "door", input events with source type "input" and output
// events with source type "output", with a state code.
func PointUpdateOf(ev *Event) (PointUpdate, bool) {
	codes, ok := pointAspects[ev.Kind]
	if !ok || ev.Source == nil || ev.Source.Type != string(ev.Kind) {
		return PointUpdate{}, false
	}
	aspect, ok := codes[ev.Code]
	if !ok {
		return PointUpdate{}, false
	}
	return PointUpdate{Type: string(ev.Kind), Number: ev.Source.Number, Aspect: aspect, Code: ev.Code, At: MarkOf(ev)}, true
}

// DoorState is the current state of one door. Status is the last position
// code (secure, opened, forced_open, held_open, held_open_prealarm) and
// Lock the last lock code (locked, unlocked); the booleans are derived
// from them.
type DoorState struct {
	Door       uint16 `json:"door"`
	Status     string `json:"status,omitempty"`
	Lock       string `json:"lock,omitempty"`
	Secure     bool   `json:"secure"`      // closed: status secure
	Open       bool   `json:"open"`        // status opened, forced_open, held_open or held_open_prealarm
	ForcedOpen bool   `json:"forced_open"` // status forced_open
	HeldOpen   bool   `json:"held_open"`   // status held_open (held_open_prealarm is the warning before it)
	Unlocked   bool   `json:"unlocked"`    // lock unlocked
	StatusAt   Mark   `json:"status_at,omitzero"`
	LockAt     Mark   `json:"lock_at,omitzero"`
}

// Apply sets u on d if it is newer than the value it replaces, and reports
// whether d changed.
func (d *DoorState) Apply(u PointUpdate) bool {
	switch u.Aspect {
	case AspectStatus:
		if !u.At.After(d.StatusAt) {
			return false
		}
		d.Status, d.StatusAt = u.Code, u.At
	case AspectLock:
		if !u.At.After(d.LockAt) {
			return false
		}
		d.Lock, d.LockAt = u.Code, u.At
	default:
		return false
	}
	d.Secure = d.Status == "secure"
	d.Open = d.Status != "" && d.Status != "secure"
	d.ForcedOpen = d.Status == "forced_open"
	d.HeldOpen = d.Status == "held_open"
	d.Unlocked = d.Lock == "unlocked"
	return true
}

// InputState is the current state of one monitored input: State is
// normal, alarm or fault; Code the last code (fault_open, fault_short...).
type InputState struct {
	Input uint16 `json:"input"`
	State string `json:"state"`
	Code  string `json:"code"`
	At    Mark   `json:"at,omitzero"`
}

// Apply sets u on s if it is newer, and reports whether s changed.
func (s *InputState) Apply(u PointUpdate) bool {
	if u.Aspect != AspectState || !u.At.After(s.At) {
		return false
	}
	s.Code, s.At = u.Code, u.At
	switch u.Code {
	case "fault_open", "fault_short":
		s.State = "fault"
	default:
		s.State = u.Code
	}
	return true
}

// OutputState is the current state of one output. A pulse leaves it off.
type OutputState struct {
	Output uint16 `json:"output"`
	On     bool   `json:"on"`
	Code   string `json:"code"` // off, on or pulse
	At     Mark   `json:"at,omitzero"`
}

// Apply sets u on s if it is newer, and reports whether s changed.
func (s *OutputState) Apply(u PointUpdate) bool {
	if u.Aspect != AspectState || !u.At.After(s.At) {
		return false
	}
	s.Code, s.At, s.On = u.Code, u.At, u.Code == "on"
	return true
}

// ControllerState is the current state of one controller and its points.
//
// Online, Session and Reason come from the newest presence event
// (PresenceAt); an offline event whose reason is taken_over is ignored, as
// the session that took over is online. Model, Firmware and Remote come
// from the newest online event (InfoAt). LastSeen is the latest Received
// time of any of its events.
type ControllerState struct {
	Serial     string        `json:"controller"` // the controller serial
	Online     bool          `json:"online"`
	Session    string        `json:"session,omitempty"`
	Reason     string        `json:"reason,omitempty"` // why the last session ended, when offline
	LastSeen   time.Time     `json:"last_seen"`
	Model      string        `json:"model,omitempty"`
	Firmware   string        `json:"firmware,omitempty"`
	Remote     string        `json:"remote,omitempty"`
	PresenceAt Mark          `json:"presence_at,omitzero"`
	InfoAt     Mark          `json:"info_at,omitzero"`
	Doors      []DoorState   `json:"doors,omitempty"`   // by door number
	Inputs     []InputState  `json:"inputs,omitempty"`  // by input number
	Outputs    []OutputState `json:"outputs,omitempty"` // by output number
}

// Apply applies ev to c and reports whether c changed. Events of other
// controllers are ignored.
func (c *ControllerState) Apply(ev *Event) bool {
	if c.Serial == "" {
		c.Serial = ev.Controller
	}
	if ev.Controller != c.Serial {
		return false
	}
	changed := c.ApplyController(ev)
	if u, ok := PointUpdateOf(ev); ok {
		changed = c.ApplyPoint(u) || changed
	}
	return changed
}

// ApplyController applies to c what ev says of the controller itself
// (presence, model, last seen) and reports whether c changed. It leaves
// doors, inputs and outputs alone.
func (c *ControllerState) ApplyController(ev *Event) bool {
	changed := false
	if c.Serial == "" {
		c.Serial = ev.Controller
		changed = true
	}
	if r := ev.Received.UTC(); r.After(c.LastSeen) {
		c.LastSeen = r
		changed = true
	}
	if ev.Kind != KindPresence {
		return changed
	}
	p := ev.Presence
	if p == nil {
		p = &Presence{}
	}
	m := MarkOf(ev)
	online := ev.Code == "online"
	if online && PresenceAfter(m, true, c.InfoAt, true) {
		c.Model, c.Firmware, c.Remote, c.InfoAt = p.Model, p.Firmware, p.Remote, m
		changed = true
	}
	if !online && p.Reason == string(ReasonTakenOver) {
		return changed
	}
	if PresenceAfter(m, online, c.PresenceAt, c.Online) {
		c.Online, c.Session, c.PresenceAt = online, p.Session, m
		c.Reason = ""
		if !online {
			c.Reason = p.Reason
		}
		changed = true
	}
	return changed
}

// PresenceRank orders presence events of the same instant: an offline
// after an online.
func PresenceRank(online bool) int {
	if online {
		return 0
	}
	return 1
}

// PresenceAfter reports whether the presence event marked m (online or
// not) is newer than the one marked o.
//
// Presence is ordered by session ownership, not by clocks: the event of
// the session with the higher scp_sessions revision (SessionRev) wins, so
// an old session's offline that arrives after the new session's online
// does not mark the controller offline. Within one session its offline
// follows its online. Between events without a revision (from drivers
// that did not record it) the order is by time, then offline after
// online, then id.
func PresenceAfter(m Mark, mOnline bool, o Mark, oOnline bool) bool {
	switch {
	case m.IsZero():
		return false
	case o.IsZero():
		return true
	case m.SessionRev != o.SessionRev:
		return m.SessionRev > o.SessionRev
	case m.SessionRev != 0 && PresenceRank(mOnline) != PresenceRank(oOnline):
		return PresenceRank(mOnline) > PresenceRank(oOnline)
	case !m.Time.Equal(o.Time):
		return m.Time.After(o.Time)
	case PresenceRank(mOnline) != PresenceRank(oOnline):
		return PresenceRank(mOnline) > PresenceRank(oOnline)
	}
	return m.Event > o.Event
}

// ApplyPoint sets u on its door, input or output, creating it when
// needed, and reports whether c changed.
func (c *ControllerState) ApplyPoint(u PointUpdate) bool {
	switch u.Type {
	case PointDoor:
		i, ok := slices.BinarySearchFunc(c.Doors, u.Number, func(d DoorState, n uint16) int { return int(d.Door) - int(n) })
		if !ok {
			c.Doors = slices.Insert(c.Doors, i, DoorState{Door: u.Number})
		}
		return c.Doors[i].Apply(u)
	case PointInput:
		i, ok := slices.BinarySearchFunc(c.Inputs, u.Number, func(s InputState, n uint16) int { return int(s.Input) - int(n) })
		if !ok {
			c.Inputs = slices.Insert(c.Inputs, i, InputState{Input: u.Number})
		}
		return c.Inputs[i].Apply(u)
	case PointOutput:
		i, ok := slices.BinarySearchFunc(c.Outputs, u.Number, func(s OutputState, n uint16) int { return int(s.Output) - int(n) })
		if !ok {
			c.Outputs = slices.Insert(c.Outputs, i, OutputState{Output: u.Number})
		}
		return c.Outputs[i].Apply(u)
	}
	return false
}

// Points returns the current value of every point aspect of c, as the
// updates that set them: doors (status then lock), inputs, outputs. Stores
// write these rows.
func (c *ControllerState) Points() []PointUpdate {
	var out []PointUpdate
	for _, d := range c.Doors {
		if !d.StatusAt.IsZero() {
			out = append(out, PointUpdate{PointDoor, d.Door, AspectStatus, d.Status, d.StatusAt})
		}
		if !d.LockAt.IsZero() {
			out = append(out, PointUpdate{PointDoor, d.Door, AspectLock, d.Lock, d.LockAt})
		}
	}
	for _, s := range c.Inputs {
		out = append(out, PointUpdate{PointInput, s.Input, AspectState, s.Code, s.At})
	}
	for _, s := range c.Outputs {
		out = append(out, PointUpdate{PointOutput, s.Output, AspectState, s.Code, s.At})
	}
	return out
}
