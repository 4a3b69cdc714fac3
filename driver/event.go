package driver

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/scpbridge"
)

// kindOf maps a transaction type to its event kind.
var kindOf = [...]scpgate.Kind{
	scpbridge.TranAccess: scpgate.KindAccess,
	scpbridge.TranDoor:   scpgate.KindDoor,
	scpbridge.TranInput:  scpgate.KindInput,
	scpbridge.TranOutput: scpgate.KindOutput,
	scpbridge.TranTamper: scpgate.KindTamper,
	scpbridge.TranPower:  scpgate.KindPower,
	scpbridge.TranSystem: scpgate.KindSystem,
}

// KindOf returns the event kind of a transaction type ("" for an invalid
// type).
func KindOf(t scpbridge.TranType) scpgate.Kind {
	if !t.Valid() {
		return ""
	}
	return kindOf[t]
}

// TransactionEvent returns the event the driver publishes for transaction
// tx of controller serial in boot epoch epoch, read at received by driver
// driverID. Times are in UTC.
func TransactionEvent(serial string, epoch uint32, tx *scpbridge.Transaction, received time.Time, driverID string) scpgate.Event {
	ev := scpgate.Event{
		V:          scpgate.SchemaVersion,
		ID:         scpgate.EventID(serial, epoch, tx.Seq),
		Controller: serial,
		Kind:       KindOf(tx.Type),
		BootEpoch:  epoch,
		Seq:        tx.Seq,
		Time:       time.UnixMilli(tx.TimeMS).UTC(),
		Received:   received.UTC(),
		Driver:     driverID,
		Code:       scpbridge.CodeName(tx.Type, tx.Code),
		CodeNum:    tx.Code,
		Source:     &scpgate.Source{Type: tx.SourceType.String(), Number: tx.SourceNum},
	}
	if !simpleTime(ev.Time) {
		ev.Time, ev.TimeClamped, ev.TimeMS = clampTime(tx.TimeMS), true, tx.TimeMS
	}
	if tx.Type == scpbridge.TranAccess {
		ev.Card = &scpgate.Card{Number: tx.Card, Facility: tx.Facility}
	}
	if tx.Type == scpbridge.TranSystem && tx.Code == scpbridge.SystemLogOverLimit {
		ev.Lost = tx.Lost
	}
	return ev
}

// Bounds of an event's time: RFC 3339 writes years 0..9999 only.
var (
	minEventTime = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	maxEventTime = time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC)
)

// clampTime returns the bound of years 0..9999 nearest to the controller
// time ms (which lies outside them).
func clampTime(ms int64) time.Time {
	if ms < 0 {
		return minEventTime
	}
	return maxEventTime
}

// Presence event codes.
const (
	PresenceOnline  = "online"
	PresenceOffline = "offline"
)

// PresenceEvent returns the presence event of a session start (code
// PresenceOnline) or end (PresenceOffline, with the close reason).
func PresenceEvent(serial string, epoch uint32, p scpgate.Presence, code string, at time.Time, driverID string) scpgate.Event {
	return scpgate.Event{
		V:          scpgate.SchemaVersion,
		ID:         scpgate.PresenceEventID(serial, p.Session, code),
		Controller: serial,
		Kind:       scpgate.KindPresence,
		BootEpoch:  epoch,
		Time:       at.UTC(),
		Received:   at.UTC(),
		Driver:     driverID,
		Code:       code,
		Presence:   &p,
	}
}

// EncodeEvent encodes ev as the JSON document published to NATS: the
// bytes encoding/json writes for it.
func EncodeEvent(ev *scpgate.Event) ([]byte, error) {
	if b, ok := appendEvent(make([]byte, 0, 384), ev); ok {
		return b, nil
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	return b, nil
}
