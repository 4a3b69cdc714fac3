package scpgate_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/storetest"
)

func TestApplyAnyOrder(t *testing.T) {
	events := storetest.History(42, 4, 300)
	want := storetest.Expected(events)
	checkAnyOrder(t, events, want, 1, 2)
}

func doorEvent(seq uint32, code string) *scpgate.Event {
	return &scpgate.Event{ID: scpgate.EventID("C1", 1, seq), Controller: "C1", Kind: scpgate.KindDoor,
		BootEpoch: 1, Seq: seq, Time: time.Unix(int64(seq), 0), Code: code, Source: &scpgate.Source{Type: "door", Number: 2}}
}

func TestDoorState(t *testing.T) {
	tests := []struct {
		codes                                []string
		secure, open, forced, held, unlocked bool
	}{
		{[]string{"secure"}, true, false, false, false, false},
		{[]string{"opened"}, false, true, false, false, false},
		{[]string{"forced_open"}, false, true, true, false, false},
		{[]string{"held_open_prealarm"}, false, true, false, false, false},
		{[]string{"held_open"}, false, true, false, true, false},
		{[]string{"unlocked"}, false, false, false, false, true},
		{[]string{"forced_open", "unlocked"}, false, true, true, false, true},
		{[]string{"unlocked", "secure", "locked"}, true, false, false, false, false},
	}
	for _, tt := range tests {
		var c scpgate.ControllerState
		for i, code := range tt.codes {
			c.Apply(doorEvent(uint32(i+1), code))
		}
		d := c.Doors[0]
		if d.Door != 2 || d.Secure != tt.secure || d.Open != tt.open || d.ForcedOpen != tt.forced || d.HeldOpen != tt.held || d.Unlocked != tt.unlocked {
			t.Errorf("%v: got %s", tt.codes, storetest.JSON(d))
		}
	}
}

func TestPointUpdateOf(t *testing.T) {
	tests := []struct {
		kind   scpgate.Kind
		code   string
		src    string
		aspect string // "" when no update
	}{
		{scpgate.KindDoor, "forced_open", "door", scpgate.AspectStatus},
		{scpgate.KindDoor, "locked", "door", scpgate.AspectLock},
		{scpgate.KindDoor, "forced_open", "reader", ""},
		{scpgate.KindInput, "fault_short", "input", scpgate.AspectState},
		{scpgate.KindOutput, "pulse", "output", scpgate.AspectState},
		{scpgate.KindOutput, "blink", "output", ""},
		{scpgate.KindAccess, "granted", "door", ""},
	}
	for _, tt := range tests {
		ev := &scpgate.Event{ID: "x", Kind: tt.kind, Code: tt.code, Source: &scpgate.Source{Type: tt.src, Number: 3}}
		u, ok := scpgate.PointUpdateOf(ev)
		if ok != (tt.aspect != "") || u.Aspect != tt.aspect {
			t.Errorf("%s/%s from %s: got %+v %v, want aspect %q", tt.kind, tt.code, tt.src, u, ok, tt.aspect)
		}
	}
	var in scpgate.InputState
	in.Apply(scpgate.PointUpdate{Type: scpgate.PointInput, Aspect: scpgate.AspectState, Code: "fault_open", At: scpgate.Mark{Event: "e", Seq: 1}})
	if in.State != "fault" || in.Code != "fault_open" {
		t.Errorf("input after fault_open: got %+v, want state fault", in)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []scpgate.Cursor{
		{Order: scpgate.OrderAsc, TimeNS: 1767225600123456789, ID: "SC1.7.42"},
		{Order: scpgate.OrderDesc, TimeNS: -5, ID: "SC1.presence.s:1.online"},
	} {
		got, err := scpgate.ParseCursor(c.String())
		if err != nil || got != c {
			t.Errorf("ParseCursor(%v.String()) = %v, %v", c, got, err)
		}
	}
	for _, bad := range []string{"", "!!", "YTox", "eDoxOmE"} {
		if _, err := scpgate.ParseCursor(bad); err == nil {
			t.Errorf("ParseCursor(%q): no error", bad)
		}
	}
}

func TestCheckEvent(t *testing.T) {
	good := *doorEvent(5, "secure")
	mut := []func(*scpgate.Event){
		func(e *scpgate.Event) { e.ID = "" },
		func(e *scpgate.Event) { e.Controller = "" },
		func(e *scpgate.Event) { e.Kind = "doors" },
		func(e *scpgate.Event) { e.Time = time.Time{} },
		func(e *scpgate.Event) { e.Seq = 6 },
		func(e *scpgate.Event) { e.Kind, e.Code = scpgate.KindPresence, "away" },
	}
	if err := scpgate.CheckEvent(&good); err != nil {
		t.Fatalf("good event: %v", err)
	}
	for i, m := range mut {
		ev := good
		m(&ev)
		if err := scpgate.CheckEvent(&ev); !errors.Is(err, scpgate.ErrInvalidEvent) {
			t.Errorf("mutation %d: got %v, want ErrInvalidEvent", i, err)
		}
	}
}

// A door that was forced open stays forced open when an older event of it
// arrives late.
func ExampleControllerState_Apply() {
	at := func(seq uint32) time.Time { return time.Date(2026, 1, 1, 0, 0, int(seq), 0, time.UTC) }
	ev := func(seq uint32, code string) *scpgate.Event {
		return &scpgate.Event{ID: scpgate.EventID("C1", 7, seq), Controller: "C1", Kind: scpgate.KindDoor,
			BootEpoch: 7, Seq: seq, Time: at(seq), Received: at(seq), Code: code,
			Source: &scpgate.Source{Type: "door", Number: 1}}
	}
	var c scpgate.ControllerState
	fmt.Println(c.Apply(ev(10, "forced_open")))
	fmt.Println(c.Apply(ev(9, "secure"))) // older: ignored
	d := c.Doors[0]
	fmt.Println(d.Status, d.ForcedOpen, d.StatusAt.Event)
	// Output:
	// true
	// false
	// forced_open true C1.7.10
}

func TestMarkAfter(t *testing.T) {
	m := func(epoch, seq uint32, stream uint64) scpgate.Mark {
		return scpgate.Mark{Event: fmt.Sprintf("C.%d.%d", epoch, seq), BootEpoch: epoch, Seq: seq, StreamSeq: stream}
	}
	tests := []struct {
		name string
		a, b scpgate.Mark
		want bool
	}{
		{"set after unset", m(1, 1, 0), scpgate.Mark{}, true},
		{"unset never after", scpgate.Mark{}, m(1, 1, 0), false},
		{"same epoch: seq decides", m(5, 9, 10), m(5, 8, 20), true},
		{"same epoch: landed later but older seq", m(5, 8, 20), m(5, 9, 10), false},
		{"epoch went down, stored later", m(3, 1, 30), m(9, 50, 29), true},
		{"epoch went up, stored later", m(9, 1, 30), m(3, 50, 29), true},
		{"other epoch stored earlier", m(9, 50, 29), m(3, 1, 30), false},
		{"with stream seq after without", m(3, 1, 1), m(9, 50, 0), true},
		{"both without: higher epoch", m(9, 1, 0), m(3, 50, 0), true},
		{"same event", m(5, 9, 10), m(5, 9, 10), false},
	}
	for _, tt := range tests {
		if got := tt.a.After(tt.b); got != tt.want {
			t.Errorf("%s: %+v after %+v: got %v, want %v", tt.name, tt.a, tt.b, got, tt.want)
		}
	}
}

func TestPresenceAfter(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := func(id string, sec int, rev uint64) scpgate.Mark {
		return scpgate.Mark{Event: id, Time: at.Add(time.Duration(sec) * time.Second), SessionRev: rev}
	}
	tests := []struct {
		name string
		a    scpgate.Mark
		aOn  bool
		b    scpgate.Mark
		bOn  bool
		want bool
	}{
		{"old session's late offline", m("a.off", 70, 5), false, m("b.on", 60, 9), true, false},
		{"new session's online, earlier clock", m("b.on", 60, 9), true, m("a.off", 70, 5), false, true},
		{"same session: offline after online", m("b.off", 50, 9), false, m("b.on", 60, 9), true, true},
		{"same session: online not after offline", m("b.on", 60, 9), true, m("b.off", 50, 9), false, false},
		{"with revision after without", m("b.on", 1, 1), true, m("z.on", 100, 0), true, true},
		{"without revisions: by time", m("z.off", 100, 0), false, m("y.on", 99, 0), true, true},
		{"without revisions: offline after online at the same time", m("z.off", 5, 0), false, m("y.on", 5, 0), true, true},
	}
	for _, tt := range tests {
		if got := scpgate.PresenceAfter(tt.a, tt.aOn, tt.b, tt.bOn); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestApplyAnyOrderStreamSeq: with boot epochs going down and stream
// sequences known, state is the same in any order of applying events, and
// is the one of the events in stream order.
func TestApplyAnyOrderStreamSeq(t *testing.T) {
	events := storetest.History(43, 4, 300)
	for i := range events {
		ev := &events[i]
		ev.BootEpoch = 1<<31 - ev.BootEpoch
		if ev.Kind != scpgate.KindPresence {
			ev.ID = scpgate.EventID(ev.Controller, ev.BootEpoch, ev.Seq)
		}
		ev.StreamSeq = uint64(i + 1)
	}
	want := storetest.Expected(events)
	checkAnyOrder(t, events, want, 3, 4)
	// In stream order, each door ends with the code of its last event.
	lastDoor := map[string]string{}
	for i := range events {
		if u, ok := scpgate.PointUpdateOf(&events[i]); ok && u.Type == scpgate.PointDoor && u.Aspect == scpgate.AspectStatus {
			lastDoor[fmt.Sprintf("%s/%d", events[i].Controller, u.Number)] = u.Code
		}
	}
	for serial, c := range want {
		for _, d := range c.Doors {
			if k := fmt.Sprintf("%s/%d", serial, d.Door); d.StatusAt.Event != "" && d.Status != lastDoor[k] {
				t.Fatalf("door %s: state %s, last event in stream order %s", k, d.Status, lastDoor[k])
			}
		}
	}
}

// checkAnyOrder applies events shuffled, with some repeated, in 20
// rounds (randomness seeded with seed1, seed2) and wants the state want
// every time.
func checkAnyOrder(t *testing.T, events []scpgate.Event, want map[string]*scpgate.ControllerState, seed1, seed2 uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed1, seed2))
	for round := range 20 {
		shuffled := append([]scpgate.Event(nil), events...)
		shuffled = append(shuffled, events[:round*10]...) // repeats
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got := storetest.Expected(shuffled)
		for serial, w := range want {
			if g, w := storetest.JSON(got[serial]), storetest.JSON(w); g != w {
				t.Fatalf("round %d, %s:\n got %s\nwant %s", round, serial, g, w)
			}
		}
	}
}
