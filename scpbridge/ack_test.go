package scpbridge_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/scpgate/scpgate/scpbridge"
)

// ackOp is one step of an AckTracker table test. add > 0 adds that seq
// (or 0 with addZero); otherwise it confirms the ticket with confirm, or
// resets.
type ackOp struct {
	add     uint32
	addZero bool
	confirm uint64
	reset   bool

	wantOK     bool   // add accepted / confirm advanced the ack
	wantTicket uint64 // add
	wantAck    uint32 // confirm
}

func add(seq uint32, ticket uint64) ackOp { return ackOp{add: seq, wantOK: true, wantTicket: ticket} }
func refuse(seq uint32) ackOp             { return ackOp{add: seq, addZero: seq == 0} }
func confirm(ticket uint64, ack uint32) ackOp {
	return ackOp{confirm: ticket, wantOK: ack != 0, wantAck: ack}
}
func reset() ackOp { return ackOp{reset: true} }

func TestAckTracker(t *testing.T) {
	tests := []struct {
		name        string
		window      int
		ops         []ackOp
		wantPending int
		wantLast    uint32
		wantFull    bool
	}{
		{"in order", 8, []ackOp{add(1, 0), add(2, 1), add(3, 2), confirm(0, 1), confirm(1, 2), confirm(2, 3)}, 0, 3, false},
		{"out of order", 8, []ackOp{add(10, 0), add(11, 1), add(12, 2), confirm(2, 0), confirm(1, 0), confirm(0, 12)}, 0, 12, false},
		{"partial", 8, []ackOp{add(10, 0), add(11, 1), add(12, 2), confirm(1, 0), confirm(0, 11)}, 1, 12, false},
		{"gaps in serials", 8, []ackOp{add(1, 0), add(5, 1), add(9, 2), confirm(1, 0), confirm(0, 5)}, 1, 9, false},
		{"window full", 2, []ackOp{add(1, 0), add(2, 1), refuse(3)}, 2, 2, true},
		{"window frees on confirm", 2, []ackOp{add(1, 0), add(2, 1), refuse(3), confirm(0, 1), add(3, 2), refuse(4)}, 2, 3, true},
		{"window stays full on out-of-order confirm", 2, []ackOp{add(1, 0), add(2, 1), confirm(1, 0), refuse(3)}, 2, 2, true},
		{"repeated seq refused", 8, []ackOp{add(5, 0), refuse(5)}, 1, 5, false},
		{"lower seq refused", 8, []ackOp{add(5, 0), refuse(4), add(6, 1)}, 2, 6, false},
		{"zero seq refused", 8, []ackOp{refuse(0), add(1, 0)}, 1, 1, false},
		{"confirm unknown ticket", 8, []ackOp{add(1, 0), confirm(5, 0), confirm(1, 0)}, 1, 1, false},
		{"confirm twice", 8, []ackOp{add(1, 0), add(2, 1), confirm(1, 0), confirm(1, 0), confirm(0, 2), confirm(0, 0)}, 0, 2, false},
		{"window of one", 1, []ackOp{add(1, 0), refuse(2), confirm(0, 1), add(2, 1), confirm(1, 2)}, 0, 2, false},
		{"reset forgets pending", 4, []ackOp{add(7, 0), add(8, 1), reset(), add(3, 2)}, 1, 3, false},
		{"late confirm after reset ignored", 4, []ackOp{add(7, 0), add(8, 1), reset(), add(3, 2), confirm(0, 0), confirm(1, 0), confirm(2, 3)}, 0, 3, false},
		{"window below one is one", 0, []ackOp{add(1, 0), refuse(2)}, 1, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := scpbridge.NewAckTracker(tt.window)
			for i, op := range tt.ops {
				switch {
				case op.reset:
					a.Reset()
				case op.add != 0 || op.addZero:
					ticket, ok := a.Add(op.add)
					if ok != op.wantOK || (ok && ticket != op.wantTicket) {
						t.Fatalf("op %d Add(%d): got ticket %d ok %v, want ticket %d ok %v", i, op.add, ticket, ok, op.wantTicket, op.wantOK)
					}
				default:
					ack, ok := a.Confirm(op.confirm)
					if ok != op.wantOK || ack != op.wantAck {
						t.Fatalf("op %d Confirm(%d): got ack %d advanced %v, want ack %d advanced %v", i, op.confirm, ack, ok, op.wantAck, op.wantOK)
					}
				}
			}
			if got := a.Pending(); got != tt.wantPending {
				t.Errorf("Pending() = %d, want %d", got, tt.wantPending)
			}
			if got := a.Last(); got != tt.wantLast {
				t.Errorf("Last() = %d, want %d", got, tt.wantLast)
			}
			if got := a.Full(); got != tt.wantFull {
				t.Errorf("Full() = %v, want %v", got, tt.wantFull)
			}
		})
	}
}

// ackModel is the obvious implementation AckTracker must agree with.
type ackModel struct {
	window  int
	next    uint64 // next ticket
	last    uint32
	pending []modelEntry
}

type modelEntry struct {
	ticket uint64
	seq    uint32
	done   bool
}

func (m *ackModel) add(seq uint32) (uint64, bool) {
	if len(m.pending) == m.window || seq == 0 || seq <= m.last {
		return 0, false
	}
	m.pending = append(m.pending, modelEntry{ticket: m.next, seq: seq})
	m.last = seq
	m.next++
	return m.next - 1, true
}

func (m *ackModel) confirm(ticket uint64) (uint32, bool) {
	for i := range m.pending {
		if m.pending[i].ticket == ticket {
			m.pending[i].done = true
		}
	}
	var ack uint32
	n := 0
	for n < len(m.pending) && m.pending[n].done {
		ack = m.pending[n].seq
		n++
	}
	m.pending = m.pending[n:]
	return ack, n > 0
}

func (m *ackModel) reset() { m.pending, m.last = nil, 0 }

func TestAckTrackerMatchesModel(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x5c9))
			window := 1 + rng.IntN(16)
			a := scpbridge.NewAckTracker(window)
			m := &ackModel{window: window}
			for step := 0; step < 5000; step++ {
				switch r := rng.IntN(100); {
				case r < 1:
					a.Reset()
					m.reset()
				case r < 50:
					// Mostly the next serials, sometimes a gap, a repeat or a step back.
					seq := m.last + uint32(rng.IntN(4))
					if rng.IntN(20) == 0 && seq > 2 {
						seq -= 2
					}
					gt, gok := a.Add(seq)
					wt, wok := m.add(seq)
					if gt != wt || gok != wok {
						t.Fatalf("step %d Add(%d): got %d %v, want %d %v", step, seq, gt, gok, wt, wok)
					}
				default:
					// Any recent ticket, including stale and future ones.
					ticket := m.next + uint64(rng.IntN(window+4))
					ticket -= min(ticket, uint64(window+2))
					ga, gok := a.Confirm(ticket)
					wa, wok := m.confirm(ticket)
					if ga != wa || gok != wok {
						t.Fatalf("step %d Confirm(%d): got %d %v, want %d %v", step, ticket, ga, gok, wa, wok)
					}
				}
				if a.Pending() != len(m.pending) || a.Last() != m.last || a.Full() != (len(m.pending) == window) {
					t.Fatalf("step %d: got pending %d last %d full %v, want %d %d %v",
						step, a.Pending(), a.Last(), a.Full(), len(m.pending), m.last, len(m.pending) == window)
				}
			}
		})
	}
}
