package commands

import (
	"fmt"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/streams"
)

var wireCodes = map[scpgate.CommandType]scpbridge.CommandCode{
	scpgate.CmdSetTime:         scpbridge.CmdSetTime,
	scpgate.CmdMomentaryUnlock: scpbridge.CmdMomentaryUnlock,
	scpgate.CmdDoorMode:        scpbridge.CmdDoorMode,
	scpgate.CmdOutput:          scpbridge.CmdOutput,
	scpgate.CmdCardAdd:         scpbridge.CmdCardAdd,
	scpgate.CmdCardDelete:      scpbridge.CmdCardDelete,
	scpgate.CmdAccessLevel:     scpbridge.CmdAccessLevel,
	scpgate.CmdReset:           scpbridge.CmdReset,
	scpgate.CmdIDRequest:       scpbridge.CmdIDRequest,
	scpgate.CmdTranStatus:      scpbridge.CmdTranStatus,
}

// ToWire validates c and returns the wire command that carries it to the
// controller, tagged with tag. A set_time command without a time sets the
// controller to the current time (time.Now at the call), so a command that
// waited in the queue does not set a stale clock. Times go on the wire as
// Unix milliseconds (set_time) or seconds (activate, expire; 0 = none).
func ToWire(c *scpgate.Command, tag uint32) (*scpbridge.Command, error) {
	if err := Validate(c.Type, c.Params); err != nil {
		return nil, fmt.Errorf("command %s: %w", c.ID, err)
	}
	p := &c.Params
	w := &scpbridge.Command{Tag: tag, Code: wireCodes[c.Type]}
	switch c.Type {
	case scpgate.CmdSetTime:
		t := time.Now()
		if p.Time != nil {
			t = *p.Time
		}
		w.TimeMS = t.UnixMilli()
	case scpgate.CmdMomentaryUnlock:
		w.Door, w.Seconds = *p.Door, p.Seconds
	case scpgate.CmdDoorMode:
		w.Door = *p.Door
		w.Mode, _ = scpbridge.ParseDoorMode(p.Mode)
	case scpgate.CmdOutput:
		w.Output, w.PulseMS = *p.Output, p.MS
		w.Action, _ = scpbridge.ParseOutputAction(p.Action)
	case scpgate.CmdCardAdd:
		w.Card, w.Facility, w.PIN = uint64(p.Card), p.Facility, p.PIN
		w.Levels = append([]uint16(nil), p.Levels...)
		if p.Activate != nil {
			w.Activate = p.Activate.Unix()
		}
		if p.Expire != nil {
			w.Expire = p.Expire.Unix()
		}
	case scpgate.CmdCardDelete:
		w.Card = uint64(p.Card)
	case scpgate.CmdAccessLevel:
		w.Level = *p.Level
		w.Doors = append([]uint16(nil), p.Doors...)
	}
	return w, nil
}

// StatusBucket is the key-value bucket holding a Record per command id.
const StatusBucket = streams.CommandsBucket

// Record is where one command stands, as kept in StatusBucket under the
// command id and as answered by the commander's status lookup and
// submission. The driver writes it when it sends the command (status
// "sent") and when the command ends (ok, nak, expired or failed); before
// that the commander derives a "queued" record from the stored command
// itself. Its JSON is the same document as a result (scpgate.Result):
// one shape for a command everywhere, see docs/api.md.
type Record struct {
	V          int                   `json:"v"`
	ID         string                `json:"id"`
	Controller string                `json:"controller"`
	Type       scpgate.CommandType   `json:"type"`
	Status     scpgate.CommandStatus `json:"status"`
	Reason     string                `json:"reason,omitempty"`
	Detail     string                `json:"detail,omitempty"`
	Seq        uint64                `json:"seq"`
	Created    time.Time             `json:"created"`
	Expires    time.Time             `json:"expires,omitzero"`
	Sent       *time.Time            `json:"sent,omitempty"`
	Finished   *time.Time            `json:"finished,omitempty"`
	Driver     string                `json:"driver,omitempty"`
	// Duplicate is true in a submit reply whose idempotency key named an
	// earlier, identical command.
	Duplicate bool `json:"duplicate,omitempty"`
}

// MarshalJSON encodes r as the command document, exactly as the
// scpgate.Result with the same fields.
func (r Record) MarshalJSON() ([]byte, error) {
	d := r.Doc()
	return d.MarshalJSON() // not json.Marshal, which would check and compact it again
}

// Doc returns r as a scpgate.Result, the type of the command document,
// whatever its status.
func (r *Record) Doc() scpgate.Result {
	res := scpgate.Result{
		V: r.V, ID: r.ID, Controller: r.Controller, Type: r.Type,
		Status: r.Status, Reason: r.Reason, Detail: r.Detail, Seq: r.Seq,
		Created: r.Created, Expires: r.Expires, Sent: r.Sent, Driver: r.Driver,
		Duplicate: r.Duplicate,
	}
	if res.V == 0 {
		res.V = scpgate.SchemaVersion
	}
	if r.Finished != nil {
		res.Finished = *r.Finished
	}
	return res
}

// QueuedRecord returns the record of command c, stored at sequence seq and
// not yet sent: status "queued", or "expired" (finished at c.Expires) when
// now is past c.Expires.
func QueuedRecord(serial string, seq uint64, c *scpgate.Command, now time.Time) Record {
	rec := Record{
		V: scpgate.SchemaVersion, ID: ID(serial, seq), Controller: serial, Type: c.Type, Status: scpgate.StatusQueued,
		Seq: seq, Created: c.Created, Expires: c.Expires,
	}
	if !c.Expires.IsZero() && now.After(c.Expires) {
		// Final: it ended when it expired.
		exp := c.Expires
		rec.Status, rec.Finished = scpgate.StatusExpired, &exp
	}
	return rec
}

// RecordOf returns the final record of result r.
func RecordOf(r *scpgate.Result) Record {
	rec := Record{
		V: scpgate.SchemaVersion, ID: r.ID, Controller: r.Controller, Type: r.Type, Status: r.Status,
		Reason: r.Reason, Detail: r.Detail, Seq: r.Seq, Created: r.Created, Expires: r.Expires,
		Sent: r.Sent, Driver: r.Driver,
	}
	if !r.Finished.IsZero() {
		f := r.Finished
		rec.Finished = &f
	}
	return rec
}

// Result returns the result a final record stands for; ok is false when
// the record's status is not final.
func (r *Record) Result() (res scpgate.Result, ok bool) {
	if !r.Status.Final() {
		return scpgate.Result{}, false
	}
	res = r.Doc()
	res.Duplicate = false
	return res, true
}
