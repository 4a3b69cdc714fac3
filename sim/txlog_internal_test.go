package sim

import (
	"testing"

	sb "github.com/scpgate/scpgate/scpbridge"
)

func TestTxlogRingGrowsWrapsAndShrinks(t *testing.T) {
	l := newTxlog(1000)
	if len(l.buf) != 0 {
		t.Fatalf("new log allocated %d entries, want none", len(l.buf))
	}
	for i := 0; i < 100; i++ {
		l.append(entry{card: uint64(i + 1), typ: sb.TranAccess}, false)
	}
	if len(l.buf) != 128 || l.n != 100 {
		t.Fatalf("after 100 appends: ring %d, held %d; want 128, 100", len(l.buf), l.n)
	}
	if got := l.ack(60); got != 60 {
		t.Fatalf("ack 60 released %d, want 60", got)
	}
	for i := 100; i < 150; i++ { // wraps around the ring
		l.append(entry{card: uint64(i + 1), typ: sb.TranAccess}, false)
	}
	for seq := uint32(61); seq <= 150; seq++ {
		if got := l.at(seq).card; got != uint64(seq) {
			t.Fatalf("serial %d holds card %d, want %d", seq, got, seq)
		}
	}
	if got := l.ack(149); got != 89 {
		t.Fatalf("ack 149 released %d, want 89", got)
	}
	if len(l.buf) > 64 {
		t.Fatalf("ring still %d entries with 1 held, want it shrunk", len(l.buf))
	}
	if got := l.at(150).card; got != 150 {
		t.Fatalf("after shrink serial 150 holds card %d", got)
	}
	if got := l.ack(10); got != 0 {
		t.Fatalf("an old ack released %d", got)
	}
	if got := l.ack(9999); got != 1 || l.lastAcked != 150 {
		t.Fatalf("ack past the end released %d, last acked %d; want 1, 150", got, l.lastAcked)
	}
	if s := l.status(); s != (sb.LogStatus{Capacity: 1000, LastLogged: 150, LastAcked: 150}) {
		t.Fatalf("status %+v", s)
	}
}

func TestTxlogNeverExceedsCapacityPlusMarker(t *testing.T) {
	l := newTxlog(4)
	dropped := 0
	for i := 0; i < 10; i++ {
		dropped += l.append(entry{}, false)
		if i%3 == 0 {
			l.append(entry{typ: sb.TranSystem, code: sb.SystemLogOverLimit, aux: l.takeLost()}, true)
		}
		if l.n > 5 || len(l.buf) > 5 {
			t.Fatalf("log holds %d in a ring of %d, capacity 4", l.n, len(l.buf))
		}
	}
	if int(l.lastLogged)-l.n != dropped {
		t.Fatalf("logged %d, held %d, dropped %d: does not add up", l.lastLogged, l.n, dropped)
	}
}
