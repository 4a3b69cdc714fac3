package delivery

// Hints: how a session learns of a new command without reading the stream.
//
// Each driver runs one ordered consumer on SCP_COMMANDS (all of scp.cmd.>,
// not one per controller: see the design). It delivers every command after
// the stream stored it, with its stream sequence, in stream order. The
// dispatch hands each one to the local session of its serial as a hint and
// kicks it. A session that found its queue empty from sequence N (a direct
// get at N found nothing) knows that every later command of its serial
// reaches it as a hint, in order: the lowest hint at or after its next
// sequence is its next command, and no hint means an empty queue. So a
// command costs no read, and there is no doorbell heard before the command
// is readable.
//
// What that relies on in nats.go v1.55 (jetstream/ordered.go): the ordered
// consumer checks the consumer sequence of every message and, on a gap, a
// missed heartbeat, a deleted consumer or a reconnect, recreates the
// consumer from the stream sequence after the last message it handed over,
// so hints come late but none is skipped. Until it has handed over a
// message it recreates the consumer with the first configuration, so the
// first one starts at an explicit sequence (the stream's last + 1, read
// just before), not at DeliverNew, which would skip what was stored in
// between. The consumer exists before the driver accepts a session, so a
// command stored after a session's empty read is always hinted.
//
// The knowledge is dropped, and the session reads the stream again,
// whenever a hint may have been lost: a session's hint buffer overflowed
// (hintBuffer), the consumer reported an error, NATS reconnected (rescan:
// every session, by hintGen), the session was fenced, or it stepped back.
// A fresh session starts without it. Hints are held only while commands
// are pending: an idle session holds none.

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate/streams"
)

// hintBuffer bounds the hints one session holds; past it they are dropped
// and the session reads the stream instead.
const hintBuffer = 64

// startHints creates the driver's ordered consumer of SCP_COMMANDS and
// routes its messages to sessions. It runs in start, before the driver
// accepts a connection.
func (h *Delivery) startHints(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := h.handles.Commands.Info(ctx)
	if err != nil {
		return fmt.Errorf("read %s state: %w", streams.CommandsStream, err)
	}
	h.incarnation.CompareAndSwap(0, info.Created.UnixNano()) // the first look; later ones in checkIncarnation
	h.noteReplicas(info)
	cons, err := h.js.OrderedConsumer(ctx, streams.CommandsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{streams.CommandsAll},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    info.State.LastSeq + 1,
	})
	if err != nil {
		return fmt.Errorf("create command hint consumer: %w", err)
	}
	cc, err := cons.Consume(h.onHint, jetstream.ConsumeErrHandler(h.onHintErr))
	if err != nil {
		return fmt.Errorf("consume command hints: %w", err)
	}
	h.hintName = cons.CachedInfo().Name
	h.hintCC = cc
	return nil
}

// stopHints stops the consumer and deletes it rather than leaving it to
// the server's inactivity threshold.
func (h *Delivery) stopHints() {
	if h.hintCC == nil {
		return
	}
	h.hintCC.Stop()
	if !h.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	// The consumer may have been recreated under another name since; the
	// server removes that one once it is inactive.
	if err := h.js.DeleteConsumer(ctx, streams.CommandsStream, h.hintName); err != nil {
		h.log.Debug().Err(err).Msg("delete command hint consumer")
	}
}

// onHint routes one command from the consumer to the session of its serial.
// It runs on the consumer's goroutine, one message at a time, in stream
// order.
func (h *Delivery) onHint(m jetstream.Msg) {
	serial, ok := streams.SerialFromSubject(m.Subject())
	if !ok {
		return
	}
	h.mu.RLock()
	cs := h.sessions[serial]
	h.mu.RUnlock()
	if cs == nil {
		return
	}
	md, err := m.Metadata()
	if err != nil { // not a JetStream delivery: cannot happen from a consumer
		h.log.Warn().Err(err).Str("subject", m.Subject()).Msg("command hint without metadata")
		return
	}
	h.stats.doorbells.Add(1)
	cs.mu.Lock()
	if len(cs.hints) >= hintBuffer {
		h.stats.hintOverflows.Add(1)
		cs.forgetLocked()
	}
	cs.hints = append(cs.hints, &jetstream.RawStreamMsg{
		Subject: m.Subject(), Sequence: md.Sequence.Stream, Header: m.Headers(), Data: m.Data(), Time: md.Timestamp,
	})
	cs.mu.Unlock()
	h.kick(cs)
}

// onHintErr hears the consumer's errors. The consumer recovers by itself
// without losing a message; the sessions read the stream again all the
// same, in case.
func (h *Delivery) onHintErr(_ jetstream.ConsumeContext, err error) {
	h.stats.errors.Add(1)
	h.log.Warn().Err(err).Msg("command hint consumer")
	h.lostHints.Store(true)
}

// forgetLocked drops the hints of cs and what they told: the next look
// reads the stream. Call with cs.mu held.
func (cs *cmdSession) forgetLocked() {
	clear(cs.hints)
	cs.hints = nil
	cs.tail = 0
	cs.lost++
}

// forget is forgetLocked taking cs.mu.
func (cs *cmdSession) forget() {
	cs.mu.Lock()
	cs.forgetLocked()
	cs.mu.Unlock()
}

// nextCommand returns the first pending command of cs at or after seq, nil
// when there is none: from the hints when they are known to be complete
// from seq on, else by a direct get. A direct get that finds nothing makes
// them complete from seq on, unless a hint was lost meanwhile.
func (h *Delivery) nextCommand(ctx context.Context, cs *cmdSession, seq uint64) (*jetstream.RawStreamMsg, error) {
	for range 2 {
		cs.mu.Lock()
		n := 0
		for n < len(cs.hints) && cs.hints[n].Sequence < seq {
			n++
		}
		if n > 0 {
			clear(cs.hints[:n])
			cs.hints = cs.hints[n:]
		}
		gen := h.hintGen.Load()
		if cs.tail != 0 && cs.tail <= seq && cs.tailGen == gen {
			var m *jetstream.RawStreamMsg
			if len(cs.hints) > 0 {
				m = cs.hints[0]
				cs.hints[0] = nil
				cs.hints = cs.hints[1:]
			}
			if len(cs.hints) == 0 {
				cs.hints = nil // let the backing array go
			}
			cs.mu.Unlock()
			if m != nil {
				h.stats.hinted.Add(1)
			}
			return m, nil
		}
		lost := cs.lost
		cs.mu.Unlock()

		m, err := h.fetch(ctx, cs.serial, seq)
		if err != nil || m != nil {
			if m != nil {
				h.stats.fetched.Add(1)
			}
			return m, err
		}
		cs.mu.Lock()
		cs.sawEmpty = true
		known := cs.lost == lost && h.hintGen.Load() == gen
		if known {
			cs.tail, cs.tailGen = seq, gen
		}
		cs.mu.Unlock()
		if !known {
			return nil, nil // the loss kicked cs: it looks again
		}
		// A hint that arrived during the read is the next command.
	}
	return nil, nil
}
