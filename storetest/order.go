package storetest

import (
	"testing"

	"github.com/scpgate/scpgate"
)

// streamed returns ev with the stream sequence ingest would give it.
func streamed(ev scpgate.Event, seq uint64) scpgate.Event {
	ev.StreamSeq = seq
	return ev
}

// testBootEpochDown: a controller whose boot epoch goes down (clock reset,
// panel replaced) still moves state forward, in stream order; within one
// boot epoch the controller's seq decides, even against stream order.
func testBootEpochDown(t *testing.T, s scpgate.Store) {
	forced := streamed(door(9, 50, 1, "forced_open"), 10)
	unlocked := streamed(door(9, 51, 1, "unlocked"), 11)
	write(t, s, []scpgate.Event{forced, unlocked}, nil)
	// The panel comes back with a lower boot epoch.
	secure := streamed(door(3, 1, 1, "secure"), 20)
	write(t, s, []scpgate.Event{secure}, nil)
	st, err := s.ControllerState(ctx(t), "C")
	if err != nil {
		t.Fatalf("state: %v", err)
	}
	if d := st.Doors[0]; !d.Secure || d.ForcedOpen || !d.Unlocked || d.StatusAt.Event != secure.ID || d.StatusAt.StreamSeq != 20 {
		t.Fatalf("door after the boot epoch went down: got %s, want secure (set by %s at stream seq 20), still unlocked", JSON(d), secure.ID)
	}
	// Seq 3 of the new epoch landed before seq 2 (its first publish failed):
	// seq 3 stays, although seq 2 is later in the stream.
	locked := streamed(door(3, 3, 1, "locked"), 21)
	relock := streamed(door(3, 2, 1, "unlocked"), 22)
	write(t, s, []scpgate.Event{locked}, nil)
	write(t, s, []scpgate.Event{relock}, nil)
	// An old event of the first epoch delivered again changes nothing.
	write(t, s, []scpgate.Event{forced}, nil)
	st, _ = s.ControllerState(ctx(t), "C")
	if d := st.Doors[0]; !d.Secure || d.Unlocked || d.LockAt.Event != locked.ID {
		t.Fatalf("door after late seq 2: got %s, want secure and locked by %s", JSON(d), locked.ID)
	}
	SameStates(t, s, Expected([]scpgate.Event{forced, unlocked, secure, locked, relock}))

	// Any order of writing ends in the same state, for another controller.
	var evs []scpgate.Event
	var seq uint64
	for i, epoch := range []uint32{50, 7, 7, 30, 2} {
		for n := range uint32(3) {
			seq++
			ev := door(epoch, uint32(i)*10+n+1, uint16(1+n%2), []string{"secure", "opened", "locked", "unlocked", "forced_open"}[(i+int(n))%5])
			ev.ID, ev.Controller = scpgate.EventID("D", ev.BootEpoch, ev.Seq), "D"
			evs = append(evs, streamed(ev, 100+seq))
		}
	}
	for _, b := range Shuffled(9, evs, 30, 4) {
		write(t, s, b, nil)
	}
	SameStates(t, s, Expected(evs))
}

// owned returns presence event of controller P by a session that claimed
// it at scp_sessions revision rev.
func owned(session, code, reason string, sec int, rev uint64) scpgate.Event {
	ev := presence(session, code, reason, sec)
	ev.Presence.SessionRev = rev
	return ev
}

// testPresenceOwnership: an old session's offline that arrives (and is
// timed) after the new session's online leaves the controller online.
func testPresenceOwnership(t *testing.T, s scpgate.Store) {
	aOn := owned("a", "online", "", 1, 5)
	bOn := owned("b", "online", "", 5, 9)
	aOff := owned("a", "offline", string(scpgate.ReasonHeartbeatTimeout), 8, 5)
	write(t, s, []scpgate.Event{aOn}, nil)
	write(t, s, []scpgate.Event{bOn}, nil)
	write(t, s, []scpgate.Event{aOff}, nil)
	st, err := s.ControllerState(ctx(t), "P")
	if err != nil {
		t.Fatalf("state: %v", err)
	}
	if !st.Online || st.Session != "b" || st.Model != "M-b" || st.PresenceAt.SessionRev != 9 {
		t.Fatalf("after the old session's late offline: got %s, want online in session b (revision 9)", JSON(st))
	}
	// The new session's own end, timed before the old one's, still counts.
	bOff := owned("b", "offline", string(scpgate.ReasonDrained), 7, 9)
	write(t, s, []scpgate.Event{bOff}, nil)
	st, _ = s.ControllerState(ctx(t), "P")
	if st.Online || st.Session != "b" || st.Reason != string(scpgate.ReasonDrained) {
		t.Fatalf("after the new session's offline: got %s, want offline (drained) in session b", JSON(st))
	}
	all := []scpgate.Event{aOn, bOn, aOff, bOff}
	SameStates(t, s, Expected(all))
	// Events without a revision (older drivers) lose to those with one.
	legacy := presence("z", "online", "", 100)
	write(t, s, []scpgate.Event{legacy}, nil)
	SameStates(t, s, Expected(append(all, legacy)))
	if st, _ := s.ControllerState(ctx(t), "P"); st.Online {
		t.Fatalf("an online without revision overrode the owner's offline: %s", JSON(st))
	}
}
