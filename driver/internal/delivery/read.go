package delivery

// Reading a controller's queue. The first read is a direct get, which any
// replica of SCP_COMMANDS may answer: in R3 a follower answers while it
// has not yet stored the newest messages (the server lets followers answer
// once about 90% in sync), so its "not found" may be wrong. "Not found" is
// the one answer that can make a session skip a command (it then trusts
// the hints from that sequence on, and the command, stored before its
// hints were routed, is never hinted), so it is confirmed by the stream
// leader ($JS.API.STREAM.MSG.GET) before it is believed. A message a
// follower does return is stored, so it is believed as it is.
//
// A stream of one replica has no follower: its leader is the only server
// that stores it, so the driver reads it through the leader at once, one
// request instead of a direct get and its confirmation. (Not the direct
// get alone: a mirror with mirror_direct may answer that one too, and be
// behind.) The replica count is the one the driver last saw (startHints,
// then every rescanEvery); a stale one only picks the other path, both of
// which read through the leader before believing "not found".

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate/streams"
)

// msgReader reads the first message of subject at or after seq; it
// returns jetstream.ErrMsgNotFound when there is none.
type msgReader func(ctx context.Context, seq uint64, subject string) (*jetstream.RawStreamMsg, error)

// directGet is the default first read: a direct get, answered by any
// replica.
func (h *Delivery) directGet(ctx context.Context, seq uint64, subject string) (*jetstream.RawStreamMsg, error) {
	return h.handles.Commands.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
}

// leaderGet reads through the stream leader, which has every message the
// stream acknowledged.
func (h *Delivery) leaderGet(ctx context.Context, seq uint64, subject string) (*jetstream.RawStreamMsg, error) {
	req, err := json.Marshal(struct {
		Seq     uint64 `json:"seq"`
		NextFor string `json:"next_by_subj"`
	}{seq, subject})
	if err != nil {
		return nil, err
	}
	reply, err := h.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+streams.CommandsStream, req)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Header  []byte    `json:"hdrs"`
			Data    []byte    `json:"data"`
			Time    time.Time `json:"time"`
		} `json:"message"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, fmt.Errorf("decode stream message get: %w", err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == int(jetstream.JSErrCodeMessageNotFound):
		return nil, jetstream.ErrMsgNotFound
	case resp.Error != nil:
		return nil, fmt.Errorf("stream message get: %s (%d)", resp.Error.Description, resp.Error.ErrCode)
	case resp.Message == nil:
		return nil, jetstream.ErrInvalidJetStreamResponse
	}
	m := resp.Message
	var hdr nats.Header
	if len(m.Header) > 0 {
		if hdr, err = nats.DecodeHeadersMsg(m.Header); err != nil {
			return nil, fmt.Errorf("decode headers of message %d: %w", m.Seq, err)
		}
	}
	return &jetstream.RawStreamMsg{Subject: m.Subject, Sequence: m.Seq, Header: hdr, Data: m.Data, Time: m.Time}, nil
}

// fetch reads the first command of serial at or after seq; nil when there
// is none. A direct get's "not found" is confirmed by the leader.
func (h *Delivery) fetch(ctx context.Context, serial string, seq uint64) (*jetstream.RawStreamMsg, error) {
	subject, err := streams.CommandSubject(serial)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, h.opTimeout)
	defer cancel()
	if h.leaderOnly() {
		msg, err := h.leaderGet(ctx, seq, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read command of %s from %d: %w", serial, seq, err)
		}
		return msg, nil
	}
	asked := time.Now()
	msg, err := h.firstRead(ctx, seq, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		msg, err = h.leaderGet(ctx, seq, subject)
		// A command stored between the two reads is no sign of a stale
		// replica; one stored before the first read is (as far as the
		// clocks of this host and the server agree).
		if err == nil && msg.Time.Before(asked) {
			h.stats.staleReads.Add(1)
			h.log.Warn().Str("serial", serial).Uint64("from", seq).Uint64("seq", msg.Sequence).
				Msg("a replica had not stored a queued command yet; read it from the stream leader")
		}
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read command of %s from %d: %w", serial, seq, err)
	}
	return msg, nil
}

// leaderOnly reports whether queue reads go to the stream leader alone:
// SCP_COMMANDS has one replica (and no replica is being simulated).
func (h *Delivery) leaderOnly() bool {
	return h.replicas.Load() == 1 && !h.simulated
}

// noteReplicas records the replica count of SCP_COMMANDS from its info.
func (h *Delivery) noteReplicas(info *jetstream.StreamInfo) {
	h.replicas.Store(int32(max(info.Config.Replicas, 1))) // 0 in a config means 1
}

// SimulateStaleReads makes the next n first reads of command queues
// answer "not found", as a replica that has not stored the newest
// commands yet would; reads then take the path of a replicated stream
// whatever its replica count. For tests; call it before Start.
func (h *Delivery) SimulateStaleReads(n int64) {
	h.simulated = true
	var left atomic.Int64
	left.Store(n)
	direct := h.firstRead
	h.firstRead = func(ctx context.Context, seq uint64, subject string) (*jetstream.RawStreamMsg, error) {
		if left.Add(-1) >= 0 {
			return nil, jetstream.ErrMsgNotFound
		}
		return direct(ctx, seq, subject)
	}
}
