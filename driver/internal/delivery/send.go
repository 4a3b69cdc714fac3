package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commands"
	"github.com/scpgate/scpgate/streams"
)

// fill takes pending commands after the window (from the hints, or read
// from the stream) and sends them while fewer than the window are
// unanswered. It reports whether it added a command that is already final
// (expired, or completed by an earlier session), that the caller stores
// and commits again.
func (h *Delivery) fill(ctx context.Context, cs *cmdSession, dl *cmdState) (final bool, err error) {
	for dl.outstanding() < h.window && len(dl.win) < 4*h.window {
		msg := dl.peek
		dl.peek = nil
		if msg == nil || msg.Sequence < dl.next {
			if msg, err = h.nextCommand(ctx, cs, dl.next); err != nil {
				return final, err
			}
		}
		if msg == nil {
			dl.recovering = false
			return final, nil
		}
		e, err := h.entryOf(ctx, cs, dl, msg)
		if err != nil {
			dl.peek = msg // try again
			return final, err
		}
		dl.next = msg.Sequence + 1
		dl.win = append(dl.win, e)
		if e.res != nil {
			final = true
			continue
		}
		if !h.send(cs, dl, e) {
			return final, nil
		}
		final = final || e.res != nil // not a valid command
	}
	return final, nil
}

// entryOf decodes a stored command. The entry carries its result already
// when the command is final: completed by an earlier session (recovery),
// expired, or not a valid command.
func (h *Delivery) entryOf(ctx context.Context, cs *cmdSession, dl *cmdState, msg *jetstream.RawStreamMsg) (*entry, error) {
	e := &entry{seq: msg.Sequence, tag: tagOf(msg.Sequence)}
	if err := json.Unmarshal(msg.Data, &e.cmd); err != nil {
		e.res = h.result(cs.serial, e, scpgate.StatusFailed, "invalid_command", "stored command does not decode: "+err.Error())
		return e, nil
	}
	var prior *commands.Record
	if dl.recovering {
		rec, err := h.record(ctx, commands.ID(cs.serial, e.seq))
		if err != nil {
			return nil, err
		}
		if rec != nil && !sameCommand(rec, &e.cmd) {
			rec = nil // the record of a command of an earlier stream with the same id
		}
		prior = rec
	}
	now := time.Now()
	expired := !e.cmd.Expires.IsZero() && now.After(e.cmd.Expires)
	switch {
	case prior != nil && prior.Status.Final():
		// An earlier session finished it but did not move the cursor:
		// publish its result again (it may be missing) and commit it.
		res, _ := prior.Result()
		e.res, e.recorded, e.recovered = &res, true, true
	case prior != nil && prior.Status == scpgate.StatusSent && expired:
		e.sent = derefTime(prior.Sent)
		e.res = h.result(cs.serial, e, scpgate.StatusFailed, "unanswered",
			"sent in an earlier session without a status before it expired")
	case expired:
		e.res = h.result(cs.serial, e, scpgate.StatusExpired, "", "expired before it could be sent")
	case prior != nil && prior.Status == scpgate.StatusSent:
		e.sent = derefTime(prior.Sent) // sent again below, same tag
	}
	return e, nil
}

// derefTime returns *t, or the zero time for nil.
func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// send puts e on the session's writer and writes its "sent" record without
// waiting for it. It reports false when the session is closing: e is
// dropped from the window and sent again by a later session.
func (h *Delivery) send(cs *cmdSession, dl *cmdState, e *entry) bool {
	w, err := commands.ToWire(&e.cmd, e.tag)
	if err != nil {
		e.res = h.result(cs.serial, e, scpgate.StatusFailed, "invalid_command", err.Error())
		return true
	}
	resent := !e.sent.IsZero()
	cs.awaiting.Add(1) // before the controller can see it; noteAwaiting sets the exact count after the step
	if err := cs.s.Send(w); err != nil {
		dl.win = dl.win[:len(dl.win)-1]
		dl.next = e.seq
		cs.forget() // stepped back over a hint already taken
		return false
	}
	e.sent = time.Now()
	h.stats.sent.Add(1)
	if resent {
		h.stats.resent.Add(1)
	}
	h.after(cs, h.answerBy) // expireUnanswered
	sent := e.sent.UTC()
	rec := commands.Record{
		ID: commands.ID(cs.serial, e.seq), Controller: cs.serial, Type: e.cmd.Type,
		Status: scpgate.StatusSent, Seq: e.seq, Created: e.cmd.Created, Expires: e.cmd.Expires,
		Sent: &sent, Driver: h.driverID,
	}
	e.sentAck = h.putSentRecord(cs, &rec)
	return true
}

// putSentRecord writes the "sent" record of a command without waiting for
// its acknowledgement: it is informational, and the final record follows.
// Both are published on the driver's one connection to the same key, so
// the server stores them in that order; the "sent" one is therefore never
// retried (a retry could land after the final record). A failure is
// counted and logged by onSentErr. The returned future (nil on failure)
// gives the record's revision, which the final record expects.
func (h *Delivery) putSentRecord(cs *cmdSession, rec *commands.Record) jetstream.PubAckFuture {
	data, err := rec.MarshalJSON() // not json.Marshal, which would check and compact it again
	var f jetstream.PubAckFuture
	if err == nil {
		msg := &nats.Msg{Subject: streams.CommandRecordSubject(rec.ID), Data: data}
		f, err = h.sentJS.PublishMsgAsync(msg, jetstream.WithRetryAttempts(0), jetstream.WithStallWait(h.opTimeout))
	}
	if err != nil {
		h.stats.errors.Add(1)
		cs.log().Debug().Err(err).Str("id", rec.ID).Msg("write sent record")
		return nil
	}
	return f
}

// onSentErr hears a "sent" record that was not stored. The final record
// follows; a missing "sent" is cosmetic.
func (h *Delivery) onSentErr(_ jetstream.JetStream, m *nats.Msg, err error) {
	h.stats.errors.Add(1)
	h.log.Debug().Err(err).Str("subject", m.Subject).Msg("write sent record")
}

// expireUnanswered ends with status failed, reason "unanswered", every
// command sent in this session that got no status within answerBy, so the
// queue moves on; and arms the session's timer for the next one due.
func (h *Delivery) expireUnanswered(cs *cmdSession, dl *cmdState) {
	now := time.Now()
	var next time.Duration
	for _, e := range dl.win {
		if e.res != nil || e.sent.IsZero() || !e.retryAt.IsZero() {
			continue
		}
		if wait := h.answerBy - now.Sub(e.sent); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		h.stats.unanswered.Add(1)
		e.res = h.result(cs.serial, e, scpgate.StatusFailed, "unanswered",
			fmt.Sprintf("no status from the controller within %s", h.answerBy))
		cs.log().Warn().Str("id", e.res.ID).Uint32("tag", e.tag).Dur("waited", now.Sub(e.sent)).
			Msg("command unanswered; failed")
	}
	if next > 0 {
		h.after(cs, next)
	}
}
