package delivery

// Drain and commands: a session released by the driver's Drain stays open
// until the commands already sent to it are answered (bounded by the
// driver), so that the next driver need not send them again.

// AwaitingAnswers reports whether commands sent to s wait for their
// status, or received statuses wait to be applied. Once none does any
// more, a draining session is told (Session.CheckDrained).
func (h *Delivery) AwaitingAnswers(s Session) bool {
	cs := h.lookup(s)
	if cs == nil {
		return false
	}
	cs.mu.Lock()
	pending := len(cs.statuses) > 0 // received, not applied yet
	cs.mu.Unlock()
	return pending || cs.awaiting.Load() > 0
}

// noteAwaiting publishes how many commands of dl wait for their status,
// for a draining session (see awaitingAnswers); when none does any more,
// a draining session may be released.
func (h *Delivery) noteAwaiting(cs *cmdSession, dl *cmdState) {
	n := 0
	for _, e := range dl.win {
		if e.res == nil && !e.sent.IsZero() && e.retryAt.IsZero() {
			n++
		}
	}
	cs.awaiting.Store(int32(n))
	if n == 0 && h.draining() {
		cs.s.CheckDrained()
	}
}
