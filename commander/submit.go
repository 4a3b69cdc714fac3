package commander

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commands"
	"github.com/scpgate/scpgate/streams"
)

// gcGrace is added to a command's TTL to make its message TTL: the stream
// drops a command this long after it expired. The command's own expiry is
// its Expires field; the message TTL is garbage collection only, late
// enough for the driver to have reported the expiry.
const gcGrace = 24 * time.Hour

// SubmitRequest is a command to submit.
type SubmitRequest struct {
	Type   scpgate.CommandType   `json:"type"`
	Params scpgate.CommandParams `json:"params"`
	// TTL is how long the command may wait for its controller, as a Go
	// duration ("30s", "2h"); empty means Options.DefaultTTL.
	TTL string `json:"ttl,omitempty"`
	// IdempotencyKey makes a repeated submission (same controller, same
	// key, within the stream's duplicate window) return the first one's
	// id instead of queueing the command again.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Wait is how long to wait for the result before answering (HTTP
	// ?wait=, the "wait" field over NATS); 0 answers at once.
	Wait time.Duration `json:"-"`
}

// SubmitResponse answers a submission. Its JSON is the command document
// (commands.Record, the same shape as GET /v1/commands/{id} and as the
// result in SCP_RESULTS): with a final status (HTTP 200) when the command
// ended within the wait, else queued or sent (HTTP 202).
type SubmitResponse struct {
	ID         string
	Status     scpgate.CommandStatus
	Controller string
	Type       scpgate.CommandType
	Seq        uint64
	Created    time.Time
	Expires    time.Time
	// Duplicate is true when the idempotency key named an earlier,
	// identical command, whose id this is.
	Duplicate bool
	// Result is set when the status is final.
	Result *scpgate.Result
}

// Record returns r as the command document.
func (r SubmitResponse) Record() commands.Record {
	rec := commands.Record{
		V: scpgate.SchemaVersion, ID: r.ID, Controller: r.Controller, Type: r.Type, Status: r.Status,
		Seq: r.Seq, Created: r.Created, Expires: r.Expires, Duplicate: r.Duplicate,
	}
	if res := r.Result; res != nil {
		rec.Status, rec.Reason, rec.Detail, rec.Sent, rec.Driver = res.Status, res.Reason, res.Detail, res.Sent, res.Driver
		if !res.Finished.IsZero() {
			f := res.Finished
			rec.Finished = &f
		}
	}
	return rec
}

// MarshalJSON encodes r as the command document.
func (r SubmitResponse) MarshalJSON() ([]byte, error) {
	rec := r.Record()
	return rec.MarshalJSON() // not json.Marshal, which would check and compact it again
}

// UnmarshalJSON decodes the command document into r, setting Result when
// its status is final.
func (r *SubmitResponse) UnmarshalJSON(b []byte) error {
	var rec commands.Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return err
	}
	*r = SubmitResponse{
		ID: rec.ID, Status: rec.Status, Controller: rec.Controller, Type: rec.Type, Seq: rec.Seq,
		Created: rec.Created, Expires: rec.Expires, Duplicate: rec.Duplicate,
	}
	if res, ok := rec.Result(); ok {
		r.Result = &res
	}
	return nil
}

// Submit validates a command for the controller serial, stores it in
// SCP_COMMANDS and, when req.Wait > 0, waits that long for its result.
// Errors are *Error values.
func (s *Service) Submit(ctx context.Context, serial string, req SubmitRequest) (SubmitResponse, error) {
	subject, err := streams.CommandSubject(serial)
	if err != nil {
		return SubmitResponse{}, apiErr(CodeBadRequest, err, "%s", err)
	}
	if err := validate(req.Type, req.Params); err != nil {
		return SubmitResponse{}, err
	}
	ttl, err := s.ttl(req.TTL)
	if err != nil {
		return SubmitResponse{}, err
	}
	if req.Wait < 0 || req.Wait > s.opts.MaxWait {
		return SubmitResponse{}, apiErr(CodeBadRequest, nil, "wait %s: want 0 to %s", req.Wait, s.opts.MaxWait)
	}
	msgID := rand.Text() // unique: no deduplication without a key
	if req.IdempotencyKey != "" {
		if err := commands.ValidKey(req.IdempotencyKey); err != nil {
			return SubmitResponse{}, apiErr(CodeBadParams, err, "idempotency_key: %s", err)
		}
		msgID = commands.MsgID(serial, req.IdempotencyKey)
	}

	now := time.Now().UTC()
	cmd := scpgate.Command{
		V: scpgate.SchemaVersion, Controller: serial, Type: req.Type,
		Params: normalize(req.Params), Created: now, Expires: now.Add(ttl),
	}
	data, err := cmd.MarshalJSON() // not json.Marshal, which would check and compact it again
	if err != nil {
		return SubmitResponse{}, apiErr(CodeInternal, err, "encode command: %s", err)
	}

	// A publish made while the client is reconnecting is buffered and may
	// be stored after the caller was told "unavailable"; refuse early
	// instead. (A retry with the same idempotency key is always safe.)
	if !s.opts.NC.IsConnected() {
		return SubmitResponse{}, apiErr(CodeUnavailable, nats.ErrConnectionReconnecting,
			"store command for %s: not connected to NATS", serial)
	}
	var w *waiter
	if req.Wait > 0 {
		w = s.results.add(serial) // before the publish: the result may beat the PubAck
		defer s.results.remove(w)
	}
	pctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	ack, err := s.js.Publish(pctx, subject, data,
		jetstream.WithMsgID(msgID), jetstream.WithMsgTTL(ttl+gcGrace),
		jetstream.WithExpectStream(streams.CommandsStream))
	cancel()
	if err != nil {
		return SubmitResponse{}, s.publishError(ctx, serial, err)
	}

	id := commands.ID(serial, ack.Sequence)
	resp := SubmitResponse{
		ID: id, Status: scpgate.StatusQueued, Controller: serial, Type: cmd.Type,
		Seq: ack.Sequence, Created: cmd.Created, Expires: cmd.Expires,
	}
	if ack.Duplicate {
		if resp, err = s.duplicate(ctx, serial, ack.Sequence, &cmd, req.IdempotencyKey); err != nil {
			return SubmitResponse{}, err
		}
		s.log.Debug().Str("serial", serial).Str("id", id).Str("key", req.IdempotencyKey).Msg("duplicate submission")
	} else {
		s.log.Debug().Str("serial", serial).Str("id", id).Str("type", string(cmd.Type)).Msg("command queued")
	}
	if w == nil || resp.Result != nil {
		return resp, nil
	}
	s.results.setID(w, id)
	s.await(ctx, w, &resp, req.Wait)
	return resp, nil
}

// validate maps a commands.Validate error to an *Error.
func validate(t scpgate.CommandType, p scpgate.CommandParams) error {
	err := commands.Validate(t, p)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, commands.ErrUnknownType):
		return apiErr(CodeUnknownType, err, "unknown command type %q; known types: %s", string(t), typeList())
	}
	return apiErr(CodeBadParams, err, "%s", err)
}

func typeList() string {
	var b bytes.Buffer
	for i, t := range commands.Types {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(t))
	}
	return b.String()
}

// ttl parses a TTL, applying the default and the bounds.
func (s *Service) ttl(v string) (time.Duration, error) {
	if v == "" {
		return s.opts.DefaultTTL, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, apiErr(CodeBadParams, err, "ttl %q: not a duration like \"30s\" or \"2h\"", v)
	}
	if d < MinTTL || d > s.opts.MaxTTL {
		return 0, apiErr(CodeBadParams, nil, "ttl %s: want %s to %s", d, MinTTL, s.opts.MaxTTL)
	}
	return d, nil
}

// normalize returns p with its times in UTC, so that equal requests have
// equal stored documents whatever zone the caller wrote them in.
func normalize(p scpgate.CommandParams) scpgate.CommandParams {
	utc := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := t.UTC()
		return &u
	}
	p.Time, p.Activate, p.Expire = utc(p.Time), utc(p.Activate), utc(p.Expire)
	return p
}

// publishError maps a failed publish to an *Error.
func (s *Service) publishError(ctx context.Context, serial string, err error) error {
	if streams.IsQueueFull(err) {
		if c := s.queueCapOf(ctx); c > 0 {
			return apiErr(CodeQueueFull, err, "controller %s has %d pending commands", serial, c)
		}
		return apiErr(CodeQueueFull, err, "controller %s has the maximum number of pending commands", serial)
	}
	s.log.Warn().Err(err).Str("serial", serial).Msg("store command")
	return apiErr(CodeUnavailable, err, "store command for %s: %s", serial, err)
}

// queueCapOf returns the per-controller queue cap, looking the stream up
// if it was not yet.
func (s *Service) queueCapOf(ctx context.Context) int64 {
	if c := s.queueCap(); c > 0 {
		return c
	}
	if _, err := s.commandsStream(ctx); err != nil {
		return 0
	}
	return s.queueCap()
}

// sameRequest reports whether a and b ask for the same thing: equal type
// and parameters in canonical JSON.
func sameRequest(a, b *scpgate.Command) bool {
	type req struct {
		Type   scpgate.CommandType   `json:"type"`
		Params scpgate.CommandParams `json:"params"`
	}
	ja, errA := json.Marshal(req{a.Type, normalize(a.Params)})
	jb, errB := json.Marshal(req{b.Type, normalize(b.Params)})
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// duplicate answers a submission whose idempotency key matched the command
// stored at seq: with that command's id and status when it asks for the
// same thing as cmd, else with a conflict.
func (s *Service) duplicate(ctx context.Context, serial string, seq uint64, cmd *scpgate.Command, key string) (SubmitResponse, error) {
	id := commands.ID(serial, seq)
	orig, found, err := s.storedCommand(ctx, serial, seq)
	if err != nil {
		return SubmitResponse{}, err
	}
	if found && !sameRequest(orig, cmd) {
		return SubmitResponse{}, apiErr(CodeConflict, nil,
			"idempotency key %q was already used for command %s with a different type or params", key, id)
	}
	rec, err := s.Get(ctx, id)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Code == CodeNotFound {
			return SubmitResponse{}, apiErr(CodeConflict, err,
				"idempotency key %q was used for command %s, which is no longer stored; use a new key", key, id)
		}
		return SubmitResponse{}, err
	}
	if !found && rec.Type != cmd.Type {
		return SubmitResponse{}, apiErr(CodeConflict, nil,
			"idempotency key %q was already used for command %s of type %s", key, id, rec.Type)
	}
	resp := SubmitResponse{
		ID: id, Status: rec.Status, Controller: serial, Type: rec.Type, Seq: seq,
		Created: rec.Created, Expires: rec.Expires, Duplicate: true,
	}
	if res, ok := rec.Result(); ok {
		resp.Result = &res
	}
	return resp, nil
}

// await waits up to wait for w's result and puts it in resp. Without one,
// it asks the status record, which also covers a result the subscription
// missed (a reconnect, or a slow consumer).
func (s *Service) await(ctx context.Context, w *waiter, resp *SubmitResponse, wait time.Duration) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case res := <-w.ch:
		resp.Status, resp.Result = res.Status, &res
		return
	case <-timer.C:
	case <-ctx.Done():
		return
	case <-s.ctx.Done():
	}
	rec, err := s.Get(ctx, resp.ID)
	if err != nil {
		s.log.Debug().Err(err).Str("id", resp.ID).Msg("status after wait")
		return
	}
	resp.Status = rec.Status
	if res, ok := rec.Result(); ok {
		resp.Result = &res
	}
}
