package scpgate_test

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
)

var (
	reMS = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	reNS = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$`)
)

// TestFixedWidthTimes: every time of the documents has a fixed number of
// fractional digits in UTC, so that text order is time order, whatever
// zone or precision the Go value holds.
func TestFixedWidthTimes(t *testing.T) {
	zone := time.FixedZone("X", 5*3600)
	at := []time.Time{
		time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC),
		time.Date(2026, 3, 14, 9, 26, 53, 10, time.UTC),
		time.Date(2026, 3, 14, 9, 26, 53, 500_000_000, time.UTC),
		time.Date(2026, 3, 14, 14, 26, 53, 589_123_456, zone),
	}
	var ms, ns []string
	for _, tm := range at {
		ev := scpgate.Event{V: 1, ID: "S.1.1", Controller: "S", Kind: scpgate.KindAccess, Time: tm, Received: tm,
			Card: &scpgate.Card{Number: 1<<63 + 1, Facility: 7}}
		var got struct {
			Time, Received string
			Card           struct {
				Number    json.Number `json:"number"`
				NumberStr string      `json:"number_str"`
			}
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.UseNumber()
		if err := dec.Decode(&got); err != nil {
			t.Fatal(err)
		}
		if !reMS.MatchString(got.Time) || !reNS.MatchString(got.Received) {
			t.Errorf("event times: got time %q received %q, want 3 and 9 fractional digits in UTC", got.Time, got.Received)
		}
		if got.Card.NumberStr != "9223372036854775809" || got.Card.Number.String() != got.Card.NumberStr {
			t.Errorf("card: got %s / %q, want 9223372036854775809 twice", got.Card.Number, got.Card.NumberStr)
		}
		var back scpgate.Event
		if err := json.Unmarshal(b, &back); err != nil || !back.Received.Equal(tm) || back.Card.Number != 1<<63+1 {
			t.Errorf("round trip: got %+v, %v", back, err)
		}
		ms, ns = append(ms, got.Time), append(ns, got.Received)

		sent := tm
		r := scpgate.Result{ID: "S.1", Controller: "S", Status: scpgate.StatusOK, Created: tm, Expires: tm, Sent: &sent, Finished: tm}
		b, _ = json.Marshal(r)
		var rd map[string]any
		_ = json.Unmarshal(b, &rd)
		for _, k := range []string{"created", "expires", "sent", "finished"} {
			if s, _ := rd[k].(string); !reNS.MatchString(s) {
				t.Errorf("result %s: got %q, want 9 fractional digits in UTC", k, s)
			}
		}
		if rd["v"] != float64(1) {
			t.Errorf("result v: got %v, want 1", rd["v"])
		}
	}
	for _, list := range [][]string{ms, ns} {
		if !sort.StringsAreSorted(list) {
			t.Errorf("times in time order do not sort as text: %q", list)
		}
	}
}

// TestCardNumber: a card number in a command decodes from a JSON number
// or a string of digits.
func TestCardNumber(t *testing.T) {
	for in, want := range map[string]uint64{`{"card":5}`: 5, `{"card":"18446744073709551615"}`: 1<<64 - 1} {
		var p scpgate.CommandParams
		if err := json.Unmarshal([]byte(in), &p); err != nil || uint64(p.Card) != want {
			t.Errorf("%s: got %d, %v; want %d", in, p.Card, err, want)
		}
	}
	for _, in := range []string{`{"card":"-1"}`, `{"card":"1e3"}`, `{"card":""}`, `{"card":"18446744073709551616"}`, `{"card":-1}`} {
		var p scpgate.CommandParams
		if err := json.Unmarshal([]byte(in), &p); err == nil {
			t.Errorf("%s: got %d, want an error", in, p.Card)
		}
	}
}
