package driver

import (
	"strconv"
	"time"

	"github.com/scpgate/scpgate"
)

// appendEvent appends ev as encoding/json would encode it (with
// scpgate.Event.MarshalJSON), byte for byte,
// when that is simple to do: every string plain printable ASCII that JSON
// does not escape, every time in UTC within years 0..9999. It reports
// false otherwise, and the caller falls back to encoding/json. The read
// loop encodes every transaction: this costs a fifth of json.Marshal and
// one allocation. TestAppendEventMatchesJSON holds it to encoding/json.
func appendEvent(b []byte, ev *scpgate.Event) ([]byte, bool) {
	if !plain(ev.ID) || !plain(ev.Controller) || !plain(string(ev.Kind)) || !plain(ev.Driver) || !plain(ev.Code) ||
		!simpleTime(ev.Time) || !simpleTime(ev.Received) || ev.TimeClamped || ev.TimeMS != 0 {
		return b, false
	}
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(ev.V), 10)
	b = appendField(b, "id", ev.ID)
	b = appendField(b, "controller", ev.Controller)
	b = appendField(b, "kind", string(ev.Kind))
	b = append(b, `,"boot_epoch":`...)
	b = strconv.AppendUint(b, uint64(ev.BootEpoch), 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, uint64(ev.Seq), 10)
	b = append(b, `,"time":"`...)
	b = ev.Time.AppendFormat(b, scpgate.TimeFormatMS)
	b = append(b, `","received":"`...)
	b = ev.Received.AppendFormat(b, scpgate.TimeFormatNS)
	b = append(b, '"')
	if ev.Driver != "" {
		b = appendField(b, "driver", ev.Driver)
	}
	b = appendField(b, "code", ev.Code)
	if ev.CodeNum != 0 {
		b = append(b, `,"code_num":`...)
		b = strconv.AppendUint(b, uint64(ev.CodeNum), 10)
	}
	if s := ev.Source; s != nil {
		if !plain(s.Type) {
			return b, false
		}
		b = append(b, `,"source":{"type":"`...)
		b = append(b, s.Type...)
		b = append(b, `","number":`...)
		b = strconv.AppendUint(b, uint64(s.Number), 10)
		b = append(b, '}')
	}
	if c := ev.Card; c != nil {
		b = append(b, `,"card":{"number":`...)
		b = strconv.AppendUint(b, c.Number, 10)
		b = append(b, `,"number_str":"`...)
		b = strconv.AppendUint(b, c.Number, 10)
		b = append(b, `","facility":`...)
		b = strconv.AppendUint(b, uint64(c.Facility), 10)
		b = append(b, '}')
	}
	if ev.Lost != 0 {
		b = append(b, `,"lost":`...)
		b = strconv.AppendUint(b, uint64(ev.Lost), 10)
	}
	if ev.Presence != nil {
		return b, false // presence events are rare: encoding/json encodes them
	}
	return append(b, '}'), true
}

// appendField appends ,"name":"value" (value plain).
func appendField(b []byte, name, value string) []byte {
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":"`...)
	b = append(b, value...)
	return append(b, '"')
}

// plain reports whether encoding/json writes s between quotes unchanged:
// printable ASCII without the quote, the backslash and the characters it
// escapes for HTML (<, >, &).
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// simpleTime reports whether t is encoded by appendEvent as by
// scpgate.Event.MarshalJSON: in UTC, within years 0..9999.
func simpleTime(t time.Time) bool {
	y := t.Year()
	return t.Location() == time.UTC && y >= 0 && y <= 9999
}
