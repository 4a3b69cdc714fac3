package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
)

// Epoch is the time of the first event History generates.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Serial returns the serial of the i-th generated controller.
func Serial(i int) string { return fmt.Sprintf("SC%05d", i) }

// History returns a plausible event history of the given number of
// controllers, perController events each (a little more with presence
// take-overs), ordered by controller then time. It is deterministic for a
// seed. Each controller starts online, then mixes access, door, input,
// output, tamper, power and system events with sessions going offline,
// coming back, being taken over, and now and then a reboot (a new boot
// epoch, seq restarting at 1).
func History(seed uint64, controllers, perController int) []scpgate.Event {
	return HistoryFrom(seed, 0, controllers, perController)
}

// HistoryFrom is History for the controllers numbered first to
// first+controllers-1.
func HistoryFrom(seed uint64, first, controllers, perController int) []scpgate.Event {
	r := rand.New(rand.NewPCG(seed, seed^0x5c9a7e))
	var out []scpgate.Event
	for c := first; c < first+controllers; c++ {
		g := &gen{r: r, serial: Serial(c), epoch: uint32(1000 + c), t: Epoch.Add(time.Duration(c) * time.Millisecond)}
		out = append(out, g.presence("online", ""))
		for len(out) < (c-first+1)*perController {
			out = append(out, g.next()...)
		}
	}
	return out
}

// gen generates the events of one controller.
type gen struct {
	r        *rand.Rand
	serial   string
	epoch    uint32
	seq      uint32
	t        time.Time
	sessions int
	online   bool
	session  string
}

func (g *gen) tick() {
	g.t = g.t.Add(time.Duration(1+g.r.IntN(2000)) * time.Millisecond)
}

func (g *gen) presence(code, reason string) scpgate.Event {
	g.tick()
	if code == "online" {
		g.sessions++
		g.session = fmt.Sprintf("%s-s%d", g.serial, g.sessions)
		g.online = true
	} else {
		g.online = false
	}
	return scpgate.Event{
		V: scpgate.SchemaVersion, ID: scpgate.PresenceEventID(g.serial, g.session, code),
		Controller: g.serial, Kind: scpgate.KindPresence, BootEpoch: g.epoch,
		Time: g.t, Received: g.t.Add(time.Millisecond), Driver: "d1", Code: code,
		Presence: &scpgate.Presence{Session: g.session, Remote: "10.0.0.1:40000", Model: "SCP-2",
			Firmware: fmt.Sprintf("1.%d", g.sessions), Reason: reason},
	}
}

func (g *gen) tx(kind scpgate.Kind, code string, src *scpgate.Source) scpgate.Event {
	g.tick()
	g.seq++
	return scpgate.Event{
		V: scpgate.SchemaVersion, ID: scpgate.EventID(g.serial, g.epoch, g.seq),
		Controller: g.serial, Kind: kind, BootEpoch: g.epoch, Seq: g.seq,
		Time: g.t, Received: g.t.Add(2 * time.Millisecond), Driver: "d1", Code: code,
		CodeNum: uint8(len(code)), Source: src,
	}
}

func (g *gen) pick(codes ...string) string { return codes[g.r.IntN(len(codes))] }

// next returns the next one or two events.
func (g *gen) next() []scpgate.Event {
	if !g.online {
		return []scpgate.Event{g.presence("online", "")}
	}
	switch n := g.r.IntN(100); {
	case n < 35:
		ev := g.tx(scpgate.KindAccess, g.pick("granted", "granted", "denied_bad_facility", "denied_not_in_card_file",
			"denied_expired", "denied_bad_pin", "denied_anti_passback", "denied_no_access"),
			&scpgate.Source{Type: "reader", Number: uint16(1 + g.r.IntN(4))})
		ev.Card = &scpgate.Card{Number: uint64(g.r.IntN(100000)), Facility: 17}
		return []scpgate.Event{ev}
	case n < 60:
		return []scpgate.Event{g.tx(scpgate.KindDoor, g.pick("secure", "opened", "forced_open", "held_open",
			"held_open_prealarm", "unlocked", "locked"), &scpgate.Source{Type: "door", Number: uint16(1 + g.r.IntN(4))})}
	case n < 75:
		return []scpgate.Event{g.tx(scpgate.KindInput, g.pick("normal", "alarm", "fault_open", "fault_short"),
			&scpgate.Source{Type: "input", Number: uint16(1 + g.r.IntN(8))})}
	case n < 85:
		return []scpgate.Event{g.tx(scpgate.KindOutput, g.pick("off", "on", "pulse"),
			&scpgate.Source{Type: "output", Number: uint16(1 + g.r.IntN(4))})}
	case n < 88:
		return []scpgate.Event{g.tx(scpgate.KindTamper, g.pick("alarm", "normal"), &scpgate.Source{Type: "controller"})}
	case n < 91:
		return []scpgate.Event{g.tx(scpgate.KindPower, g.pick("fail", "restore", "battery_low", "battery_normal"),
			&scpgate.Source{Type: "controller"})}
	case n < 94:
		ev := g.tx(scpgate.KindSystem, g.pick("comm_online", "comm_offline", "log_over_limit", "time_set"),
			&scpgate.Source{Type: "controller"})
		if ev.Code == "log_over_limit" {
			ev.Lost = uint32(g.r.IntN(50))
		}
		return []scpgate.Event{ev}
	case n < 95:
		g.epoch++ // reboot: a new log
		g.seq = 0
		return []scpgate.Event{g.tx(scpgate.KindSystem, "reset", &scpgate.Source{Type: "controller"})}
	case n < 98:
		return []scpgate.Event{g.presence("offline", g.pick(string(scpgate.ReasonHeartbeatTimeout), string(scpgate.ReasonControllerClosed)))}
	default:
		old := g.session
		on := g.presence("online", "")
		off := g.presence("offline", string(scpgate.ReasonTakenOver))
		off.ID = scpgate.PresenceEventID(g.serial, old, "offline")
		off.Presence.Session = old
		g.online = true
		return []scpgate.Event{on, off}
	}
}

// Expected returns the state of every controller of events, applied in
// order with the reference rules of scpgate.ControllerState.
func Expected(events []scpgate.Event) map[string]*scpgate.ControllerState {
	out := map[string]*scpgate.ControllerState{}
	for i := range events {
		ev := &events[i]
		c := out[ev.Controller]
		if c == nil {
			c = &scpgate.ControllerState{Serial: ev.Controller}
			out[ev.Controller] = c
		}
		c.Apply(ev)
	}
	return out
}

// Shuffled returns events in a random order with about dupPercent percent
// of them repeated, cut into batches of 1 to maxBatch events.
func Shuffled(seed uint64, events []scpgate.Event, dupPercent, maxBatch int) [][]scpgate.Event {
	r := rand.New(rand.NewPCG(seed, 7))
	all := slices.Clone(events)
	for i := range events {
		if r.IntN(100) < dupPercent {
			all = append(all, events[i])
		}
	}
	r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	var out [][]scpgate.Event
	for len(all) > 0 {
		n := min(len(all), 1+r.IntN(maxBatch))
		out = append(out, all[:n:n])
		all = all[n:]
	}
	return out
}

// Sorted returns events in query order, (time, id) ascending, without
// repeated ids.
func Sorted(events []scpgate.Event) []scpgate.Event {
	out := slices.Clone(events)
	slices.SortFunc(out, func(a, b scpgate.Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return slices.CompactFunc(out, func(a, b scpgate.Event) bool { return a.ID == b.ID })
}

// All reads every event matching q, page by page with page size limit,
// and fails t if a page is malformed.
func All(t testing.TB, s scpgate.Store, q scpgate.EventQuery) []scpgate.Event {
	t.Helper()
	var out []scpgate.Event
	for pages := 0; ; pages++ {
		page, err := s.QueryEvents(context.Background(), q)
		if err != nil {
			t.Fatalf("query events %+v: %v", q, err)
		}
		out = append(out, page.Events...)
		if page.Next == "" {
			return out
		}
		if len(page.Events) == 0 {
			t.Fatalf("query %+v: empty page with a next cursor", q)
		}
		if pages > 1_000_000 {
			t.Fatalf("query %+v: no end after %d pages", q, pages)
		}
		q.After = page.Next
	}
}

// JSON encodes v for comparisons and messages.
func JSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}

// SameEvents fails t unless got and want hold the same events in the same
// order.
func SameEvents(t testing.TB, what string, got, want []scpgate.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d events, want %d", what, len(got), len(want))
	}
	for i := range got {
		if g, w := JSON(got[i]), JSON(want[i]); g != w {
			t.Fatalf("%s: event %d:\n got %s\nwant %s", what, i, g, w)
		}
	}
}

// SameStates fails t unless s holds want as the state of every controller
// in want.
func SameStates(t testing.TB, s scpgate.Store, want map[string]*scpgate.ControllerState) {
	t.Helper()
	for serial, w := range want {
		got, err := s.ControllerState(context.Background(), serial)
		if err != nil {
			t.Fatalf("state of %s: %v", serial, err)
		}
		if g, w := JSON(got), JSON(w); g != w {
			t.Fatalf("state of %s:\n got %s\nwant %s", serial, g, w)
		}
	}
}
