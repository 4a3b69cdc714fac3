package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/storetest"
)

// doorEv returns a door event of serial at (epoch, seq).
func doorEv(serial string, epoch, seq uint32, code string, at time.Time) scpgate.Event {
	return scpgate.Event{
		V: 1, ID: scpgate.EventID(serial, epoch, seq), Controller: serial, Kind: scpgate.KindDoor,
		BootEpoch: epoch, Seq: seq, Time: at, Received: at, Code: code,
		Source: &scpgate.Source{Type: "door", Number: 1},
	}
}

// kvDoor reads door 1 of serial from the state bucket.
func kvDoor(e *env, serial string) (scpgate.DoorState, error) {
	var d scpgate.DoorState
	ent, err := e.h.State.Get(context.Background(), ingest.PointKey(serial, scpgate.PointDoor, 1))
	if err != nil {
		return d, err
	}
	return d, json.Unmarshal(ent.Value(), &d)
}

// TestBootEpochDown: a controller comes back with a lower boot epoch (its
// clock was reset, or the panel was replaced); its new events must move
// the state on, in the store and in the state bucket.
func TestBootEpochDown(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t)
		store := b.open(t, b.db(t))
		at := storetest.Epoch
		before := []scpgate.Event{
			doorEv("BE1", 1900000000, 41, "forced_open", at),
			doorEv("BE1", 1900000000, 42, "unlocked", at.Add(time.Second)),
		}
		e.publish(t, true, before, nil)
		run(t, ingest.Options{JS: e.js, Store: store, StateKV: e.h.State})
		e.waitDrained(t, store, len(before))
		// The panel comes back with a boot epoch from 1970 and its clock
		// reset: times are older too.
		after := []scpgate.Event{
			doorEv("BE1", 3, 1, "secure", time.Unix(3, 0).UTC()),
			doorEv("BE1", 3, 2, "locked", time.Unix(4, 0).UTC()),
		}
		e.publish(t, true, after, nil)
		all := append(before, after...)
		e.waitDrained(t, store, len(all))

		want := storetest.Expected(all)
		if d := want["BE1"].Doors[0]; !d.Secure || d.Unlocked {
			t.Fatalf("reference state: %s, want secure and locked", storetest.JSON(d))
		}
		storetest.SameStates(t, store, want)
		natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
			d, err := kvDoor(e, "BE1")
			if err != nil {
				return err
			}
			if g, w := storetest.JSON(d), storetest.JSON(want["BE1"].Doors[0]); g != w {
				return fmt.Errorf("bucket door:\n got %s\nwant %s", g, w)
			}
			return nil
		})
	})
}

// TestPresenceOwnership: the old session of a controller ends
// (heartbeat_timeout) only after the new session, on another driver, has
// claimed the controller and published its online. The late offline must
// not mark the controller offline: presence follows the scp_sessions
// revisions the sessions claimed, not the drivers' clocks.
func TestPresenceOwnership(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t)
		store := b.open(t, b.db(t))
		ctx := context.Background()
		claim := func(session string) uint64 {
			rev, err := e.h.Sessions.Put(ctx, "PO1", []byte(`{"session":"`+session+`"}`))
			if err != nil {
				t.Fatalf("claim PO1 for %s: %v", session, err)
			}
			return rev
		}
		ev := func(session, code, reason string, at time.Time, rev uint64) scpgate.Event {
			return scpgate.Event{V: 1, ID: scpgate.PresenceEventID("PO1", session, code), Controller: "PO1",
				Kind: scpgate.KindPresence, Time: at, Received: at, Code: code,
				Presence: &scpgate.Presence{Session: session, Model: "M", Reason: reason, SessionRev: rev}}
		}
		t0 := storetest.Epoch
		oldRev := claim("old")
		oldOn := ev("old", "online", "", t0, oldRev)
		e.publish(t, true, []scpgate.Event{oldOn}, nil)
		newRev := claim("new")
		newOn := ev("new", "online", "", t0.Add(time.Minute), newRev)
		// The old driver noticed the silence 10 s after the new session
		// started, and its offline is stored after the new online.
		oldOff := ev("old", "offline", string(scpgate.ReasonHeartbeatTimeout), t0.Add(70*time.Second), oldRev)
		all := []scpgate.Event{oldOn, newOn, oldOff}
		e.publish(t, true, all[1:], nil)
		run(t, ingest.Options{JS: e.js, Store: store, StateKV: e.h.State})
		e.waitDrained(t, store, len(all))

		st, err := store.ControllerState(ctx, "PO1")
		if err != nil {
			t.Fatalf("state: %v", err)
		}
		if !st.Online || st.Session != "new" {
			t.Fatalf("store: got %s, want online in session new", storetest.JSON(st))
		}
		want := storetest.Expected(all)
		storetest.SameStates(t, store, want)
		natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
			ent, err := e.h.State.Get(ctx, ingest.ControllerKey("PO1"))
			if err != nil {
				return err
			}
			var c scpgate.ControllerState
			if err := json.Unmarshal(ent.Value(), &c); err != nil {
				return err
			}
			if !c.Online || c.Session != "new" {
				return fmt.Errorf("bucket: got %s, want online in session new", ent.Value())
			}
			return nil
		})
	})
}

// reversedEpochs returns events (storetest.History order) with every boot
// epoch turned around, so that each reboot comes back with a LOWER boot
// epoch, and with presence events carrying increasing scp_sessions
// revisions in the order their sessions started, as drivers claim them.
func reversedEpochs(events []scpgate.Event) []scpgate.Event {
	out := make([]scpgate.Event, len(events))
	revs := map[string]uint64{} // session -> revision
	var next uint64
	for i, ev := range events {
		ev.BootEpoch = 1<<31 - ev.BootEpoch
		if ev.Kind == scpgate.KindPresence {
			p := *ev.Presence
			if revs[p.Session] == 0 {
				next++
				revs[p.Session] = next
			}
			p.SessionRev = revs[p.Session]
			ev.Presence = &p
		} else {
			ev.ID = scpgate.EventID(ev.Controller, ev.BootEpoch, ev.Seq)
		}
		out[i] = ev
	}
	return out
}

// TestSharedConsumerOrder: two instances share the durable consumer and
// write batches in whatever order they finish; per-controller state still
// ends as the stream order says, with boot epochs going down and presence
// moving between sessions, in the store and in the state bucket.
func TestSharedConsumerOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t)
		db := b.db(t)
		stores := []scpgate.Store{b.open(t, db), b.open(t, db)}
		var svcs []*ingest.Service
		for _, s := range stores {
			svcs = append(svcs, run(t, ingest.Options{JS: e.js, Store: s, StateKV: e.h.State, Batch: 20}))
		}
		events := reversedEpochs(storetest.History(21, 6, 150))
		down := 0
		for i := 1; i < len(events); i++ {
			if events[i].Controller == events[i-1].Controller && events[i].Kind != scpgate.KindPresence &&
				events[i].BootEpoch < events[i-1].BootEpoch {
				down++
			}
		}
		if down == 0 {
			t.Fatal("no boot epoch goes down in the generated history")
		}
		for i := 0; i < len(events); i += 60 {
			e.publish(t, true, events[i:min(i+60, len(events))], nil)
		}
		e.waitDrained(t, stores[0], len(events))
		want := storetest.Expected(events)
		checkLastInStreamOrder(t, events, want)
		storetest.SameStates(t, stores[1], want)
		checkKV(t, e.h.State, want)
		busy := 0
		for _, s := range svcs {
			if s.Stats().Events > 0 {
				busy++
			}
		}
		t.Logf("%d boot epochs went down; %d of %d instances stored events", down, busy, len(svcs))
	})
}

// checkLastInStreamOrder fails t unless every point and presence register
// of want holds what the last event setting it says, in the order events
// were published: the rule, written without scpgate.Mark.
func checkLastInStreamOrder(t *testing.T, events []scpgate.Event, want map[string]*scpgate.ControllerState) {
	t.Helper()
	last := map[string]string{} // register -> code
	type pres struct {
		online  bool
		session string
	}
	presence := map[string]pres{}
	for i := range events {
		ev := &events[i]
		if ev.Kind == scpgate.KindPresence {
			if ev.Code == "offline" && ev.Presence.Reason == string(scpgate.ReasonTakenOver) {
				continue
			}
			presence[ev.Controller] = pres{ev.Code == "online", ev.Presence.Session}
			continue
		}
		if u, ok := scpgate.PointUpdateOf(ev); ok {
			last[fmt.Sprintf("%s/%s/%d/%s", ev.Controller, u.Type, u.Number, u.Aspect)] = u.Code
		}
	}
	for serial, c := range want {
		if p := presence[serial]; c.Online != p.online || c.Session != p.session {
			t.Fatalf("%s: state online=%v in %s, last presence says online=%v in %s", serial, c.Online, c.Session, p.online, p.session)
		}
		for _, u := range c.Points() {
			key := fmt.Sprintf("%s/%s/%d/%s", serial, u.Type, u.Number, u.Aspect)
			if last[key] != u.Code {
				t.Fatalf("%s: state %s, last event in stream order says %s", key, u.Code, last[key])
			}
		}
	}
}
