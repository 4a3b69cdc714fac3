package delivery

// Busy: a controller that answers a command NAK busy cannot take it now;
// the host sends it again later (docs/protocol.md). The command stays in
// the window, unanswered, and is sent again with the same tag after a
// backoff that doubles with every busy answer, until it is answered
// otherwise or expires; then it ends nak, reason busy. While a command
// waits, no further command is sent: only those sent before its busy
// answer (within the window) can overtake it.

import (
	"fmt"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commands"
)

// busyAnswer handles a NAK busy for e: it schedules e to be sent again,
// or, when the next try would come after the command expired, ends it nak
// busy.
func (h *Delivery) busyAnswer(cs *cmdSession, e *entry, detail string) {
	wait := h.busyRetry
	for range min(e.busy, 16) {
		wait *= 2
		if wait >= h.busyRetryMax {
			wait = h.busyRetryMax
			break
		}
	}
	now := time.Now()
	at := now.Add(wait)
	if !e.cmd.Expires.IsZero() && !at.Before(e.cmd.Expires) {
		e.res = h.result(cs.serial, e, scpgate.StatusNAK, "busy",
			fmt.Sprintf("busy until it expired, sent %d times: %s", e.busy+1, detail))
		return
	}
	e.retryAt = at
	cs.log().Debug().Uint32("tag", e.tag).Int("busy", e.busy+1).Dur("retry_in", wait).Msg("command busy; sending again later")
	h.after(cs, wait)
}

// retryBusy sends again every command whose busy backoff passed, ends
// those that expired meanwhile, and arms the session's timer for the next
// one due.
func (h *Delivery) retryBusy(cs *cmdSession, dl *cmdState) {
	now := time.Now()
	var next time.Duration
	for _, e := range dl.win {
		if e.res != nil || e.retryAt.IsZero() {
			continue
		}
		if !e.cmd.Expires.IsZero() && now.After(e.cmd.Expires) {
			e.res = h.result(cs.serial, e, scpgate.StatusNAK, "busy",
				fmt.Sprintf("busy until it expired, sent %d times", e.busy+1))
			continue
		}
		if wait := e.retryAt.Sub(now); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		w, err := commands.ToWire(&e.cmd, e.tag)
		if err != nil { // it was sent once, so it encodes
			e.res = h.result(cs.serial, e, scpgate.StatusFailed, "invalid_command", err.Error())
			continue
		}
		cs.awaiting.Add(1) // before the controller can see it
		if cs.s.Send(w) != nil {
			return // closing: a later session sends it again
		}
		e.busy++
		e.retryAt = time.Time{}
		e.sent = now
		h.stats.sent.Add(1)
		h.stats.busyRetries.Add(1)
		h.after(cs, h.answerBy) // expireUnanswered
	}
	if next > 0 {
		h.after(cs, next)
	}
}
