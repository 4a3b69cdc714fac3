package scpbridge

// AckTracker does the host's cumulative-acknowledgement bookkeeping for one
// session. Transactions are added in the order they arrive; their durable
// confirmations may come back in any order; the cumulative ack only moves
// past a transaction once it and every transaction before it are
// confirmed. It holds at most a fixed window of unconfirmed transactions,
// which is how the host bounds what one session has in flight.
//
// AckTracker is not safe for concurrent use; the session guards it.
type AckTracker struct {
	seqs []uint32 // ring: seq of each pending slot
	done []bool   // ring: confirmed?
	head uint64   // ticket of the oldest pending slot
	tail uint64   // ticket the next Add gets
	last uint32   // newest seq added
}

// NewAckTracker returns a tracker holding up to window unconfirmed
// transactions.
func NewAckTracker(window int) *AckTracker {
	if window < 1 {
		window = 1
	}
	return &AckTracker{seqs: make([]uint32, window), done: make([]bool, window)}
}

// Full reports whether the window is full: the caller must stop reading
// transactions from the controller until confirmations arrive.
func (a *AckTracker) Full() bool { return a.tail-a.head == uint64(len(a.seqs)) }

// Pending returns the number of transactions added but not yet acknowledged.
func (a *AckTracker) Pending() int { return int(a.tail - a.head) }

// Last returns the newest sequence number added (0 before any).
func (a *AckTracker) Last() uint32 { return a.last }

// Add records a transaction and returns its ticket for Confirm. It reports
// false when seq is 0 (serials start at 1) or does not follow the previous
// one (a resend within one session, which the protocol forbids), or when the
// window is full.
func (a *AckTracker) Add(seq uint32) (ticket uint64, ok bool) {
	if a.Full() || seq == 0 || seq <= a.last {
		return 0, false
	}
	i := a.tail % uint64(len(a.seqs))
	a.seqs[i], a.done[i] = seq, false
	a.last = seq
	a.tail++
	return a.tail - 1, true
}

// Confirm marks the transaction with ticket as durably stored. When that
// lets the cumulative ack move, it returns the new ack sequence and true.
func (a *AckTracker) Confirm(ticket uint64) (ackSeq uint32, advanced bool) {
	if ticket < a.head || ticket >= a.tail {
		return 0, false
	}
	a.done[ticket%uint64(len(a.seqs))] = true
	for a.head < a.tail && a.done[a.head%uint64(len(a.seqs))] {
		ackSeq = a.seqs[a.head%uint64(len(a.seqs))]
		a.head++
		advanced = true
	}
	return ackSeq, advanced
}

// Reset forgets every pending transaction (a session ending). Tickets keep
// counting up, so a confirmation that arrives late for a forgotten
// transaction is ignored instead of confirming a new one.
func (a *AckTracker) Reset() { a.head, a.last = a.tail, 0 }
