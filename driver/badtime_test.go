package driver_test

import (
	"math"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/scpbridge"
)

// TestTransactionTimeOutOfRange sends transactions whose controller time
// lies outside years 0..9999, which JSON cannot encode as RFC 3339: each
// is acknowledged and stored with a clamped time and time_clamped set, and
// the transactions after them flow as usual.
func TestTransactionTimeOutOfRange(t *testing.T) {
	e := newEnv(t)
	d := e.startDriver("badtime", nil)
	r := dialRaw(t, d.Addr().String())
	r.hello("BADTIME-1", 5)

	r.tx(1)
	far := &scpbridge.Transaction{Seq: 2, TimeMS: math.MaxInt64, SourceType: scpbridge.SourceReader,
		SourceNum: 1, Type: scpbridge.TranAccess, Code: scpbridge.AccessGranted, Card: 42, Facility: 7}
	r.write(far)
	past := *far
	past.Seq, past.TimeMS = 3, math.MinInt64
	r.write(&past)
	r.tx(4)
	if err := r.waitAck(4, 10*time.Second); err != nil {
		t.Fatalf("transactions after out-of-range times: %v", err)
	}

	byID := map[string]scpgate.Event{}
	for _, se := range readEvents(t, e.js) {
		byID[se.Event.ID] = se.Event
	}
	maxTime := time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC)
	minTime := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		id      string
		time    time.Time
		clamped bool
	}{
		{"BADTIME-1.5.2", maxTime, true},
		{"BADTIME-1.5.3", minTime, true},
		{"BADTIME-1.5.4", time.Time{}, false},
	} {
		ev, ok := byID[c.id]
		if !ok {
			t.Errorf("event %s not stored; have %d events", c.id, len(byID))
			continue
		}
		if ev.TimeClamped != c.clamped {
			t.Errorf("%s: time_clamped %v, want %v", c.id, ev.TimeClamped, c.clamped)
		}
		if c.clamped && !ev.Time.Equal(c.time) {
			t.Errorf("%s: time %s, want %s", c.id, ev.Time, c.time)
		}
	}
	if ev := byID["BADTIME-1.5.2"]; ev.Card == nil || ev.Card.Number != 42 {
		t.Errorf("clamped event lost its body: %+v", ev)
	}
	if n := d.Stats().TimesClamped; n != 2 {
		t.Errorf("stats: %d times clamped, want 2", n)
	}
}

// TestTransactionEventClampsTime checks the clamp at the bounds.
func TestTransactionEventClampsTime(t *testing.T) {
	for _, c := range []struct {
		ms      int64
		clamped bool
	}{
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).UnixMilli(), false},
		{time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), false},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), true},
		{time.Date(-1, 12, 31, 0, 0, 0, 0, time.UTC).UnixMilli(), true},
	} {
		tx := &scpbridge.Transaction{Seq: 1, TimeMS: c.ms, Type: scpbridge.TranDoor, Code: scpbridge.DoorForcedOpen}
		ev := driver.TransactionEvent("P", 1, tx, time.Now(), "d")
		if ev.TimeClamped != c.clamped {
			t.Errorf("ms %d: clamped %v, want %v", c.ms, ev.TimeClamped, c.clamped)
		}
		if _, err := driver.EncodeEvent(&ev); err != nil {
			t.Errorf("ms %d: encode: %v", c.ms, err)
		}
	}
}
