package commander

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commands"
	"github.com/scpgate/scpgate/streams"
)

// Get returns where the command with id stands: the status record the
// driver wrote when there is one; else, while the command waits in
// SCP_COMMANDS, a "queued" record (or "expired" once past its expiry).
// Errors are *Error values; an unknown id is CodeNotFound.
func (s *Service) Get(ctx context.Context, id string) (commands.Record, error) {
	serial, seq, err := commands.ParseID(id)
	if err != nil {
		return commands.Record{}, apiErr(CodeBadRequest, err, "%s", err)
	}
	rec, found, err := s.record(ctx, id)
	if err != nil {
		return rec, err
	}
	if found && rec.Status.Final() {
		return s.currentRecord(ctx, serial, seq, rec)
	}
	if found {
		return rec, nil
	}
	cmd, found, err := s.storedCommand(ctx, serial, seq)
	if err != nil {
		return commands.Record{}, err
	}
	if found {
		return commands.QueuedRecord(serial, seq, cmd, time.Now()), nil
	}
	// The driver may have finished the command and removed it between the
	// two lookups: the record is written before the command is removed.
	rec, found, err = s.record(ctx, id)
	if err != nil || found {
		return rec, err
	}
	return commands.Record{}, apiErr(CodeNotFound, nil, "command %s not found", id)
}

// record reads the status record of id.
func (s *Service) record(ctx context.Context, id string) (commands.Record, bool, error) {
	kv, err := s.statusBucket(ctx)
	if err != nil {
		return commands.Record{}, false, apiErr(CodeUnavailable, err, "%s", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	e, err := kv.Get(ctx, id)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return commands.Record{}, false, nil
	case err != nil:
		return commands.Record{}, false, apiErr(CodeUnavailable, err, "read status of %s: %s", id, err)
	}
	var rec commands.Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return commands.Record{}, false, apiErr(CodeInternal, err, "decode status of %s: %s", id, err)
	}
	return rec, true, nil
}

// storedCommand reads the command stored at seq, if it is still there and
// belongs to serial.
func (s *Service) storedCommand(ctx context.Context, serial string, seq uint64) (*scpgate.Command, bool, error) {
	st, err := s.commandsStream(ctx)
	if err != nil {
		return nil, false, apiErr(CodeUnavailable, err, "%s", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	msg, err := st.GetMsg(ctx, seq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, apiErr(CodeUnavailable, err, "read command %d of %s: %s", seq, serial, err)
	}
	if subj, _ := streams.CommandSubject(serial); msg.Subject != subj {
		return nil, false, nil // the id names another controller's command
	}
	var cmd scpgate.Command
	if err := json.Unmarshal(msg.Data, &cmd); err != nil {
		return nil, false, apiErr(CodeInternal, err, "decode command %d of %s: %s", seq, serial, err)
	}
	return &cmd, true, nil
}

// Controller is a controller's presence: online while a driver holds a
// session for it (bucket scp_sessions).
type Controller struct {
	Serial   string    `json:"controller"`
	Online   bool      `json:"online"`
	Driver   string    `json:"driver,omitempty"`
	Session  string    `json:"session,omitempty"`
	Remote   string    `json:"remote,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	Model    string    `json:"model,omitempty"`
	Firmware string    `json:"firmware,omitempty"`
}

// MarshalJSON encodes c with since in scpgate.TimeFormatNS.
func (c Controller) MarshalJSON() ([]byte, error) {
	var since string
	if !c.Since.IsZero() {
		since = c.Since.UTC().Format(scpgate.TimeFormatNS)
	}
	return json.Marshal(struct {
		Serial   string `json:"controller"`
		Online   bool   `json:"online"`
		Driver   string `json:"driver,omitempty"`
		Session  string `json:"session,omitempty"`
		Remote   string `json:"remote,omitempty"`
		Since    string `json:"since,omitempty"`
		Model    string `json:"model,omitempty"`
		Firmware string `json:"firmware,omitempty"`
	}{c.Serial, c.Online, c.Driver, c.Session, c.Remote, since, c.Model, c.Firmware})
}

// ControllerList is a page of online controllers ordered by serial. Next
// is the serial to pass as "after" for the next page; empty on the last.
type ControllerList struct {
	Controllers []Controller `json:"controllers"`
	Next        string       `json:"next,omitempty"`
}

// Page sizes of Controllers.
const (
	DefaultPageSize = 1000
	MaxPageSize     = 10000
)

// Controller returns the presence of one controller; one without a session
// is offline. Errors are *Error values.
func (s *Service) Controller(ctx context.Context, serial string) (Controller, error) {
	if err := streams.ValidSerial(serial); err != nil {
		return Controller{}, apiErr(CodeBadRequest, err, "%s", err)
	}
	kv, err := s.sessionsBucket(ctx)
	if err != nil {
		return Controller{}, apiErr(CodeUnavailable, err, "%s", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	e, err := kv.Get(ctx, serial)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return Controller{Serial: serial}, nil
	case err != nil:
		return Controller{}, apiErr(CodeUnavailable, err, "read session of %s: %s", serial, err)
	}
	return s.decodeSession(serial, e.Value()), nil
}

// Controllers returns up to limit online controllers (DefaultPageSize when
// 0, at most MaxPageSize) whose serial sorts after after.
func (s *Service) Controllers(ctx context.Context, after string, limit int) (ControllerList, error) {
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 0 || limit > MaxPageSize {
		return ControllerList{}, apiErr(CodeBadRequest, nil, "limit %d: want 1 to %d", limit, MaxPageSize)
	}
	if after != "" {
		if err := streams.ValidSerial(after); err != nil {
			return ControllerList{}, apiErr(CodeBadRequest, err, "after: %s", err)
		}
	}
	kv, err := s.sessionsBucket(ctx)
	if err != nil {
		return ControllerList{}, apiErr(CodeUnavailable, err, "%s", err)
	}
	all, err := s.sessionsAfter(ctx, kv, after)
	if err != nil {
		return ControllerList{}, apiErr(CodeUnavailable, err, "list sessions: %s", err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Serial < all[j].Serial })
	list := ControllerList{Controllers: all}
	if len(all) > limit {
		list.Controllers = all[:limit]
		list.Next = all[limit-1].Serial
	}
	return list, nil
}

// sessionsAfter reads every live session whose serial sorts after after,
// with one watcher (one ordered consumer) rather than a lookup per key.
func (s *Service) sessionsAfter(ctx context.Context, kv jetstream.KeyValue, after string) ([]Controller, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*s.opts.Timeout)
	defer cancel()
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", kv.Bucket(), err)
	}
	defer func() { _ = w.Stop() }()
	all := []Controller{}
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("watch %s: closed", kv.Bucket())
			}
			if e == nil {
				return all, nil // caught up
			}
			if e.Key() > after {
				all = append(all, s.decodeSession(e.Key(), e.Value()))
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("watch %s: %w", kv.Bucket(), ctx.Err())
		}
	}
}

// decodeSession reads a session record; one that does not decode still
// says the controller is online.
func (s *Service) decodeSession(serial string, v []byte) Controller {
	var c Controller
	if err := json.Unmarshal(v, &c); err != nil {
		s.log.Warn().Err(err).Str("serial", serial).Msg("decode session record")
	}
	c.Serial, c.Online = serial, true
	return c
}
