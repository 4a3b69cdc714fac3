package driver

import (
	"testing"
	"time"
)

// TestPingRoundParts: a heartbeat round looks at every session exactly
// once, a bounded share per step, and lists the sessions once per round;
// a driver with 10,000 sessions must not look at (and ping) them all at
// one tick.
func TestPingRoundParts(t *testing.T) {
	for _, tc := range []struct {
		round     time.Duration
		n         int
		wantParts int
	}{
		{250 * time.Millisecond, 10_000, 25},
		{250 * time.Millisecond, 7, 25},
		{100 * time.Millisecond, 1_000, 10},
		{10 * time.Millisecond, 50, 1},
		{time.Millisecond, 3, 1},
	} {
		sessions := make([]*session, tc.n)
		for i := range sessions {
			sessions[i] = &session{idNum: uint64(i)}
		}
		r := newPingRound(tc.round)
		if r.parts != tc.wantParts || r.step < heartbeatStep && tc.round >= heartbeatStep {
			t.Errorf("round %s: %d parts of %s, want %d parts of at least %s", tc.round, r.parts, r.step, tc.wantParts, heartbeatStep)
		}
		lists := 0
		list := func(buf []*session) []*session {
			lists++
			return append(buf, sessions...)
		}
		for round := range 3 {
			seen := make(map[uint64]int)
			most := 0
			for range r.parts {
				part := r.next(list)
				most = max(most, len(part))
				for _, s := range part {
					seen[s.idNum]++
				}
				r.done()
			}
			if len(seen) != tc.n {
				t.Errorf("round %s, %d sessions, round %d: looked at %d sessions", tc.round, tc.n, round, len(seen))
			}
			for id, k := range seen {
				if k != 1 {
					t.Errorf("round %s: session %d looked at %d times in one round", tc.round, id, k)
				}
			}
			if limit := (tc.n + r.parts - 1) / r.parts; most > limit {
				t.Errorf("round %s, %d sessions: a part of %d, want at most %d", tc.round, tc.n, most, limit)
			}
			for _, s := range r.list {
				if s != nil {
					t.Fatalf("round %s: the list holds sessions between rounds", tc.round)
				}
			}
		}
		if lists != 3 {
			t.Errorf("round %s: listed the sessions %d times in 3 rounds, want 3", tc.round, lists)
		}
	}
}
