package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commands"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/streams"
)

// applyStatus records the controller's answer to one outstanding command.
func (h *commandHooks) applyStatus(cs *cmdSession, dl *delivery, st *scpbridge.CommandStatus) {
	for _, e := range dl.win {
		if e.tag != st.Tag || e.sent.IsZero() || e.res != nil || !e.retryAt.IsZero() {
			continue
		}
		switch {
		case st.Status == scpbridge.StatusNAK && st.NakReason == scpbridge.NakBusy:
			h.busyAnswer(cs, e, st.Detail)
		case st.Status == scpbridge.StatusOK:
			e.res = h.result(cs.s.serial, e, scpgate.StatusOK, "", st.Detail)
		case st.Status == scpbridge.StatusNAK:
			e.res = h.result(cs.s.serial, e, scpgate.StatusNAK, st.NakReason.String(), st.Detail)
		default:
			e.res = h.result(cs.s.serial, e, scpgate.StatusFailed, "controller", st.Detail)
		}
		return
	}
	h.stats.unknown.Add(1)
	cs.s.log.Debug().Uint32("tag", st.Tag).Msg("status for no outstanding command")
}

// result returns the final result of e.
func (h *commandHooks) result(serial string, e *entry, st scpgate.CommandStatus, reason, detail string) *scpgate.Result {
	r := &scpgate.Result{
		V: scpgate.SchemaVersion, ID: commands.ID(serial, e.seq), Controller: serial,
		Type: e.cmd.Type, Status: st, Reason: reason, Detail: detail, Seq: e.seq,
		Created: e.cmd.Created, Expires: e.cmd.Expires, Finished: time.Now().UTC(), Driver: h.d.opts.ID,
	}
	if !e.sent.IsZero() {
		t := e.sent.UTC()
		r.Sent = &t
	}
	return r
}

// storeResults writes the final record of every known result not yet
// stored, then publishes the result. The record goes first, acknowledged,
// so that a caller told the result (the commander hears the publish as a
// core message, before SCP_RESULTS stored it) finds the same in
// scp_commands: issued together, the record could still be queued in the
// server behind the result when the caller reads it, and a result cannot
// be looked up by id in SCP_RESULTS to make up for that. A result whose
// record is final but whose publish may be missing is published again on
// recovery (the message id makes that harmless).
func (h *commandHooks) storeResults(ctx context.Context, cs *cmdSession, dl *delivery) error {
	for _, e := range dl.win {
		if e.res == nil || e.stored {
			continue
		}
		if !e.recorded {
			if err := h.finalRecord(ctx, cs, e); err != nil {
				return err
			}
			e.recorded = true
		}
		if err := h.publishResult(ctx, e.res); err != nil {
			return err
		}
		e.stored = true
		if !e.recovered {
			h.stats.countResult(e.res.Status)
		}
		cs.s.log.Debug().Str("id", e.res.ID).Str("status", string(e.res.Status)).Str("reason", e.res.Reason).Msg("command result")
	}
	return nil
}

// publishResult publishes r to scp.res.<serial> with the command id as
// message id, so a repeat is stored once.
func (h *commandHooks) publishResult(ctx context.Context, r *scpgate.Result) error {
	subject, err := streams.ResultSubject(r.Controller)
	if err != nil {
		return err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode result %s: %w", r.ID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.opTimeout)
	defer cancel()
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{r.ID}}}
	if _, err := h.d.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(streams.ResultsStream)); err != nil {
		return fmt.Errorf("publish result %s: %w", r.ID, err)
	}
	return nil
}

// fill takes pending commands after the window (from the hints, or read
// from the stream) and sends them while fewer than the window are
// unanswered. It reports whether it added a command that is already final
// (expired, or completed by an earlier session), that the caller stores
// and commits again.
func (h *commandHooks) fill(ctx context.Context, cs *cmdSession, dl *delivery) (final bool, err error) {
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
func (h *commandHooks) entryOf(ctx context.Context, cs *cmdSession, dl *delivery, msg *jetstream.RawStreamMsg) (*entry, error) {
	e := &entry{seq: msg.Sequence, tag: tagOf(msg.Sequence)}
	if err := json.Unmarshal(msg.Data, &e.cmd); err != nil {
		e.res = h.result(cs.s.serial, e, scpgate.StatusFailed, "invalid_command", "stored command does not decode: "+err.Error())
		return e, nil
	}
	var prior *commands.Record
	if dl.recovering {
		rec, err := h.record(ctx, commands.ID(cs.s.serial, e.seq))
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
		e.res = h.result(cs.s.serial, e, scpgate.StatusFailed, "unanswered",
			"sent in an earlier session without a status before it expired")
	case expired:
		e.res = h.result(cs.s.serial, e, scpgate.StatusExpired, "", "expired before it could be sent")
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

// record reads the scp_commands record of id; nil when there is none.
func (h *commandHooks) record(ctx context.Context, id string) (*commands.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opTimeout)
	defer cancel()
	e, err := h.d.handles.CommandStatus.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read record of %s: %w", id, err)
	}
	var rec commands.Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, nil // unreadable: treat as absent, it is rewritten
	}
	return &rec, nil
}

// send puts e on the session's writer and writes its "sent" record without
// waiting for it. It reports false when the session is closing: e is
// dropped from the window and sent again by a later session.
func (h *commandHooks) send(cs *cmdSession, dl *delivery, e *entry) bool {
	w, err := commands.ToWire(&e.cmd, e.tag)
	if err != nil {
		e.res = h.result(cs.s.serial, e, scpgate.StatusFailed, "invalid_command", err.Error())
		return true
	}
	resent := !e.sent.IsZero()
	cs.awaiting.Add(1) // before the controller can see it; noteAwaiting sets the exact count after the step
	if err := cs.s.send(w); err != nil {
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
		ID: commands.ID(cs.s.serial, e.seq), Controller: cs.s.serial, Type: e.cmd.Type,
		Status: scpgate.StatusSent, Seq: e.seq, Created: e.cmd.Created, Expires: e.cmd.Expires,
		Sent: &sent, Driver: h.d.opts.ID,
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
func (h *commandHooks) putSentRecord(cs *cmdSession, rec *commands.Record) jetstream.PubAckFuture {
	data, err := json.Marshal(rec)
	var f jetstream.PubAckFuture
	if err == nil {
		msg := &nats.Msg{Subject: streams.CommandRecordSubject(rec.ID), Data: data}
		f, err = h.sentJS.PublishMsgAsync(msg, jetstream.WithRetryAttempts(0), jetstream.WithStallWait(h.opTimeout))
	}
	if err != nil {
		h.stats.errors.Add(1)
		cs.s.log.Debug().Err(err).Str("id", rec.ID).Msg("write sent record")
		return nil
	}
	return f
}

// onSentErr hears a "sent" record that was not stored. The final record
// follows; a missing "sent" is cosmetic.
func (h *commandHooks) onSentErr(_ jetstream.JetStream, m *nats.Msg, err error) {
	h.stats.errors.Add(1)
	h.d.log.Debug().Err(err).Str("subject", m.Subject).Msg("write sent record")
}

// expireUnanswered ends with status failed, reason "unanswered", every
// command sent in this session that got no status within answerBy, so the
// queue moves on; and arms the session's timer for the next one due.
func (h *commandHooks) expireUnanswered(cs *cmdSession, dl *delivery) {
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
		e.res = h.result(cs.s.serial, e, scpgate.StatusFailed, "unanswered",
			fmt.Sprintf("no status from the controller within %s", h.answerBy))
		cs.s.log.Warn().Str("id", e.res.ID).Uint32("tag", e.tag).Dur("waited", now.Sub(e.sent)).
			Msg("command unanswered; failed")
	}
	if next > 0 {
		h.after(cs, next)
	}
}
