package driver

// Drain and commands: a session released by Drain stays open until the
// commands already sent to it are answered (at most
// Options.DrainAnswerWait; see session.checkDrained), so that the next
// driver need not send them again.

// awaitingAnswers reports whether commands sent to s wait for their
// status, or received statuses wait to be applied.
func (h *commandHooks) awaitingAnswers(s *session) bool {
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
func (h *commandHooks) noteAwaiting(cs *cmdSession, dl *delivery) {
	n := 0
	for _, e := range dl.win {
		if e.res == nil && !e.sent.IsZero() && e.retryAt.IsZero() {
			n++
		}
	}
	cs.awaiting.Store(int32(n))
	if n == 0 && h.d.draining.Load() {
		cs.s.checkDrained()
	}
}
