package scpgate

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// Times in the JSON documents are RFC 3339 in UTC with a fixed number of
// fractional digits, so that comparing two of the same field as text
// compares them as times:
//
//	TimeFormatMS  event time and the times of state values (marks), which
//	              come from the controller's millisecond clock
//	TimeFormatNS  every other time: an event's received, a command's
//	              created, expires, sent and finished, command parameters,
//	              a controller's last_seen
//
// Decoding accepts any RFC 3339 time.
const (
	TimeFormatMS = "2006-01-02T15:04:05.000Z07:00"
	TimeFormatNS = "2006-01-02T15:04:05.000000000Z07:00"
)

// msTime and nsTime encode a time in UTC with TimeFormatMS and
// TimeFormatNS. A zero time is encoded like any other (documents that may
// omit a time use a pointer or omitzero).
type (
	msTime time.Time
	nsTime time.Time
)

// MarshalJSON implements json.Marshaler.
func (t msTime) MarshalJSON() ([]byte, error) { return appendTime(time.Time(t), TimeFormatMS) }

// MarshalText implements encoding.TextMarshaler: encoding/json writes it
// as a string, without the validation and compaction it gives to what a
// MarshalJSON returns (nsTime is in every command document, on the path
// of each command).
func (t nsTime) MarshalText() ([]byte, error) {
	t0 := time.Time(t).UTC()
	if y := t0.Year(); y < 0 || y > 9999 {
		return nil, errors.New("time outside years 0 to 9999")
	}
	return t0.AppendFormat(make([]byte, 0, len(TimeFormatNS)), TimeFormatNS), nil
}

// IsZero lets omitzero omit a zero time.
func (t nsTime) IsZero() bool { return time.Time(t).IsZero() }

// IsZero lets omitzero omit a zero time.
func (t msTime) IsZero() bool { return time.Time(t).IsZero() }

func appendTime(t time.Time, layout string) ([]byte, error) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, errors.New("time outside years 0 to 9999")
	}
	b := make([]byte, 0, len(layout)+2)
	b = append(b, '"')
	b = t.AppendFormat(b, layout)
	return append(b, '"'), nil
}

// nsPtr returns t as an nsTime pointer, nil for nil.
func nsPtr(t *time.Time) *nsTime {
	if t == nil {
		return nil
	}
	v := nsTime(*t)
	return &v
}

// AppendTimeMS appends t as TimeFormatMS in UTC, for encoders that write
// documents by hand and must match MarshalJSON.
func AppendTimeMS(b []byte, t time.Time) []byte { return t.UTC().AppendFormat(b, TimeFormatMS) }

// AppendTimeNS appends t as TimeFormatNS in UTC.
func AppendTimeNS(b []byte, t time.Time) []byte { return t.UTC().AppendFormat(b, TimeFormatNS) }

// MarshalJSON encodes e with its time in TimeFormatMS and received in
// TimeFormatNS, fields in the order of the struct.
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		V          int       `json:"v"`
		ID         string    `json:"id"`
		Controller string    `json:"controller"`
		Kind       Kind      `json:"kind"`
		BootEpoch  uint32    `json:"boot_epoch"`
		Seq        uint32    `json:"seq"`
		Time       msTime    `json:"time"`
		Clamped    bool      `json:"time_clamped,omitempty"`
		TimeMS     int64     `json:"time_ms,omitempty"`
		Received   nsTime    `json:"received"`
		Driver     string    `json:"driver,omitempty"`
		Code       string    `json:"code"`
		CodeNum    uint8     `json:"code_num,omitempty"`
		Source     *Source   `json:"source,omitempty"`
		Card       *Card     `json:"card,omitempty"`
		Lost       uint32    `json:"lost,omitempty"`
		Presence   *Presence `json:"presence,omitempty"`
	}{e.V, e.ID, e.Controller, e.Kind, e.BootEpoch, e.Seq, msTime(e.Time), e.TimeClamped, e.TimeMS, nsTime(e.Received), e.Driver,
		e.Code, e.CodeNum, e.Source, e.Card, e.Lost, e.Presence})
}

// MarshalJSON encodes c with its number twice: as a JSON number and, as
// number_str, as a decimal string, since card numbers go up to 2^64-1 and
// JavaScript numbers are exact only up to 2^53.
func (c Card) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 80)
	b = append(b, `{"number":`...)
	b = strconv.AppendUint(b, c.Number, 10)
	b = append(b, `,"number_str":"`...)
	b = strconv.AppendUint(b, c.Number, 10)
	b = append(b, `","facility":`...)
	b = strconv.AppendUint(b, uint64(c.Facility), 10)
	return append(b, '}'), nil
}

// UnmarshalJSON decodes a card from number and facility; number_str, when
// present, must name the same number.
func (c *Card) UnmarshalJSON(b []byte) error {
	var v struct {
		Number    uint64  `json:"number"`
		NumberStr *string `json:"number_str"`
		Facility  uint32  `json:"facility"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if v.NumberStr != nil && *v.NumberStr != strconv.FormatUint(v.Number, 10) {
		return errors.New("card: number_str " + strconv.Quote(*v.NumberStr) + " is not number " + strconv.FormatUint(v.Number, 10))
	}
	c.Number, c.Facility = v.Number, v.Facility
	return nil
}

// MarshalJSON encodes m with its time in TimeFormatMS.
func (m Mark) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Event      string `json:"event"`
		BootEpoch  uint32 `json:"boot_epoch,omitempty"`
		Seq        uint32 `json:"seq,omitempty"`
		StreamSeq  uint64 `json:"stream_seq,omitempty"`
		SessionRev uint64 `json:"session_rev,omitempty"`
		Time       msTime `json:"time"`
	}{m.Event, m.BootEpoch, m.Seq, m.StreamSeq, m.SessionRev, msTime(m.Time)})
}

// MarshalJSON encodes c with last_seen in TimeFormatNS.
func (c ControllerState) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Controller string        `json:"controller"`
		Online     bool          `json:"online"`
		Session    string        `json:"session,omitempty"`
		Reason     string        `json:"reason,omitempty"`
		LastSeen   nsTime        `json:"last_seen"`
		Model      string        `json:"model,omitempty"`
		Firmware   string        `json:"firmware,omitempty"`
		Remote     string        `json:"remote,omitempty"`
		PresenceAt Mark          `json:"presence_at,omitzero"`
		InfoAt     Mark          `json:"info_at,omitzero"`
		Doors      []DoorState   `json:"doors,omitempty"`
		Inputs     []InputState  `json:"inputs,omitempty"`
		Outputs    []OutputState `json:"outputs,omitempty"`
	}{c.Serial, c.Online, c.Session, c.Reason, nsTime(c.LastSeen), c.Model, c.Firmware, c.Remote,
		c.PresenceAt, c.InfoAt, c.Doors, c.Inputs, c.Outputs})
}

// MarshalJSON encodes p with its times in TimeFormatNS.
func (p CommandParams) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Time     *nsTime    `json:"time,omitempty"`
		Door     *uint16    `json:"door,omitempty"`
		Seconds  uint16     `json:"seconds,omitempty"`
		Mode     string     `json:"mode,omitempty"`
		Output   *uint16    `json:"output,omitempty"`
		Action   string     `json:"action,omitempty"`
		MS       uint32     `json:"ms,omitempty"`
		Card     CardNumber `json:"card,omitempty"`
		Facility uint32     `json:"facility,omitempty"`
		PIN      string     `json:"pin,omitempty"`
		Levels   []uint16   `json:"levels,omitempty"`
		Activate *nsTime    `json:"activate,omitempty"`
		Expire   *nsTime    `json:"expire,omitempty"`
		Level    *uint16    `json:"level,omitempty"`
		Doors    []uint16   `json:"doors,omitempty"`
	}{nsPtr(p.Time), p.Door, p.Seconds, p.Mode, p.Output, p.Action, p.MS, p.Card, p.Facility, p.PIN,
		p.Levels, nsPtr(p.Activate), nsPtr(p.Expire), p.Level, p.Doors})
}

// MarshalJSON encodes c with its times in TimeFormatNS.
func (c Command) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		V          int           `json:"v"`
		ID         string        `json:"id,omitempty"`
		Controller string        `json:"controller"`
		Type       CommandType   `json:"type"`
		Params     CommandParams `json:"params"`
		Created    nsTime        `json:"created"`
		Expires    nsTime        `json:"expires"`
	}{c.V, c.ID, c.Controller, c.Type, c.Params, nsTime(c.Created), nsTime(c.Expires)})
}

// MarshalJSON encodes r, the command document (see docs/api.md), with its
// times in TimeFormatNS and v set to SchemaVersion when zero.
func (r Result) MarshalJSON() ([]byte, error) {
	if r.V == 0 {
		r.V = SchemaVersion
	}
	return json.Marshal(struct {
		V          int           `json:"v"`
		ID         string        `json:"id"`
		Controller string        `json:"controller"`
		Type       CommandType   `json:"type"`
		Status     CommandStatus `json:"status"`
		Reason     string        `json:"reason,omitempty"`
		Detail     string        `json:"detail,omitempty"`
		Seq        uint64        `json:"seq"`
		Created    nsTime        `json:"created"`
		Expires    nsTime        `json:"expires,omitzero"`
		Sent       *nsTime       `json:"sent,omitempty"`
		Finished   nsTime        `json:"finished,omitzero"`
		Driver     string        `json:"driver,omitempty"`
		Duplicate  bool          `json:"duplicate,omitempty"`
	}{r.V, r.ID, r.Controller, r.Type, r.Status, r.Reason, r.Detail, r.Seq, nsTime(r.Created),
		nsTime(r.Expires), nsPtr(r.Sent), nsTime(r.Finished), r.Driver, r.Duplicate})
}

// CardNumber is a card number in a command. It is encoded as a JSON number
// and decoded from a JSON number or a string of decimal digits, so that a
// JavaScript client can send numbers past 2^53 as strings.
type CardNumber uint64

// UnmarshalJSON implements json.Unmarshaler.
func (c *CardNumber) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if s == "" || s[0] == '+' || s[0] == '-' {
		return errors.New("card: not a number from 0 to 18446744073709551615")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return errors.New("card: not a number from 0 to 18446744073709551615 (as a JSON number or a string of digits)")
	}
	*c = CardNumber(n)
	return nil
}
