package sim

import "github.com/scpgate/scpgate/scpbridge"

// entry is one logged transaction in compact form (32 bytes). Its serial is
// implicit: the log knows the serial of its oldest entry.
type entry struct {
	timeMS int64
	card   uint64 // access: card number
	aux    uint32 // access: facility; system/log_over_limit: lost
	num    uint16 // source number
	src    scpbridge.SourceType
	typ    scpbridge.TranType
	code   uint8
}

// fill writes e, with serial seq, into t.
func (e *entry) fill(t *scpbridge.Transaction, seq uint32) {
	*t = scpbridge.Transaction{
		Seq: seq, TimeMS: e.timeMS, SourceType: e.src, SourceNum: e.num,
		Type: e.typ, Code: e.code,
	}
	switch {
	case e.typ == scpbridge.TranAccess:
		t.Card, t.Facility = e.card, e.aux
	case e.typ == scpbridge.TranSystem && e.code == scpbridge.SystemLogOverLimit:
		t.Lost = e.aux
	}
}

// Log sizes: the ring starts small and doubles up to capacity+1, and
// shrinks again once the host has caught up, so that idle controllers cost
// a few hundred bytes however large their capacity.
const (
	minRing    = 8
	shrinkRing = 64
)

// txlog is a controller's transaction log: a ring of the unacknowledged
// transactions of one boot epoch, serials lastLogged-n+1 .. lastLogged.
// Acknowledged transactions leave the ring (a real panel keeps them as
// history until overwritten; the simulator has no use for them).
//
// The ring holds at most capacity ordinary transactions. Appending to a
// full ring overwrites (drops) the oldest and adds it to pendingLost; the
// log_over_limit transaction that reports pendingLost never overwrites, so
// the ring may briefly hold capacity+1 entries, and every overwritten
// transaction is reported exactly once.
//
// txlog is not safe for concurrent use; Controller.mu guards it.
type txlog struct {
	capacity    int
	buf         []entry // ring; len(buf) is the allocated size
	head        int     // index of the oldest entry
	n           int     // entries held
	lastLogged  uint32
	lastAcked   uint32
	pendingLost uint32 // overwritten since the last log_over_limit
}

func newTxlog(capacity int) *txlog { return &txlog{capacity: capacity} }

// first returns the serial of the oldest entry (lastLogged+1 when empty).
func (l *txlog) first() uint32 { return l.lastLogged - uint32(l.n) + 1 }

// status returns the log status a hello or tran_status reports. Oldest is
// the oldest unacknowledged serial still held, 0 when none is.
func (l *txlog) status() scpbridge.LogStatus {
	s := scpbridge.LogStatus{Capacity: uint32(l.capacity), LastLogged: l.lastLogged, LastAcked: l.lastAcked}
	if l.n > 0 {
		s.Oldest = l.first()
	}
	return s
}

// append logs e and returns how many unacknowledged entries it overwrote.
// A marker (the log_over_limit report) never overwrites.
func (l *txlog) append(e entry, marker bool) (dropped int) {
	if !marker {
		for l.n >= l.capacity {
			l.head = (l.head + 1) % len(l.buf)
			l.n--
			dropped++
		}
		l.pendingLost += uint32(dropped)
	}
	if l.n == len(l.buf) {
		l.resize(min(max(2*len(l.buf), minRing), l.capacity+1))
	}
	l.buf[(l.head+l.n)%len(l.buf)] = e
	l.n++
	l.lastLogged++
	return dropped
}

// at returns the entry with serial seq, which must be held.
func (l *txlog) at(seq uint32) *entry {
	return &l.buf[(l.head+int(seq-l.first()))%len(l.buf)]
}

// ack records a cumulative acknowledgement up to seq (clamped to
// lastLogged) and releases the entries it covers. It returns how many held
// entries were released; an ack at or below the previous one releases
// nothing.
func (l *txlog) ack(seq uint32) (released int) {
	if seq > l.lastLogged {
		seq = l.lastLogged
	}
	if seq <= l.lastAcked {
		return 0
	}
	l.lastAcked = seq
	if l.n > 0 && seq >= l.first() {
		released = min(l.n, int(seq-l.first())+1)
		l.head = (l.head + released) % len(l.buf)
		l.n -= released
	}
	if len(l.buf) > shrinkRing && l.n < len(l.buf)/4 {
		l.resize(max(minRing, len(l.buf)/2))
	}
	return released
}

// takeLost returns and clears the count of overwritten entries not yet
// reported.
func (l *txlog) takeLost() uint32 {
	n := l.pendingLost
	l.pendingLost = 0
	return n
}

// resize moves the entries into a ring of size entries (size >= n).
func (l *txlog) resize(size int) {
	nb := make([]entry, size)
	for i := 0; i < l.n; i++ {
		nb[i] = l.buf[(l.head+i)%len(l.buf)]
	}
	l.buf, l.head = nb, 0
}

// reset empties the log for a new boot epoch and returns how many
// unacknowledged entries it held.
func (l *txlog) reset() int {
	n := l.n
	*l = txlog{capacity: l.capacity}
	return n
}
