package streams

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate/internal/backoff"
)

// Handles are the streams and buckets Ensure or Apply opened.
type Handles struct {
	Events, Commands, Results jetstream.Stream
	Sessions, Cursors, State  jetstream.KeyValue
	// CommandStatus is the scp_commands bucket.
	CommandStatus jetstream.KeyValue
}

// ErrConfigMismatch is returned (wrapped, in a *MismatchError) by Ensure
// when an existing stream or bucket has settings other than the service's
// config asks for.
var ErrConfigMismatch = errors.New("stream settings differ from this service's config")

// Mismatch is one setting of an existing stream that differs from the
// config.
type Mismatch struct {
	Stream  string // stream name (KV_<bucket> for a bucket)
	Setting string // e.g. "replicas", "max_age"
	Have    string // the stream's value
	Want    string // the config's value
}

// MismatchError lists every mismatch Ensure found.
type MismatchError struct {
	Mismatches []Mismatch
}

func (e *MismatchError) Error() string {
	var b strings.Builder
	b.WriteString("existing streams differ from this service's config (")
	for i, m := range e.Mismatches {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s %s is %s, config wants %s", m.Stream, m.Setting, m.Have, m.Want)
	}
	b.WriteString("): fix the service's SCPGATE_ settings, or change the streams with `scpgate streams apply` (ops user)")
	return b.String()
}

// Unwrap makes errors.Is(err, ErrConfigMismatch) true.
func (e *MismatchError) Unwrap() error { return ErrConfigMismatch }

// Ensure opens every stream and bucket, creating those that do not exist
// yet with cfg. It never changes an existing one: when one's important
// settings (subjects, storage, replicas, retention and discard policy,
// limits, duplicate window, direct get) differ from cfg it returns a
// *MismatchError listing them all. Services call it at start; changing
// settings is Apply's job, run by an operator.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg Config) (*Handles, error) {
	return ensure(ctx, js, cfg, 0)
}

// ensure is Ensure with each JetStream request bounded by opTimeout (0:
// by ctx only). On a cluster creating a stream, a request about it may go
// unanswered until its leader is elected: a short bound lets the caller
// ask again instead of waiting the whole attempt.
func ensure(ctx context.Context, js jetstream.JetStream, cfg Config, opTimeout time.Duration) (*Handles, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var h Handles
	var mism []Mismatch
	op := func() (context.Context, context.CancelFunc) {
		if opTimeout <= 0 {
			return ctx, func() {}
		}
		return context.WithTimeout(ctx, opTimeout)
	}
	for _, s := range h.streamSlots(cfg) {
		ctx, cancel := op()
		st, err := js.Stream(ctx, s.cfg.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			st, err = js.CreateStream(ctx, s.cfg)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // created meanwhile
				st, err = js.Stream(ctx, s.cfg.Name)
			}
		}
		cancel()
		if err != nil {
			return nil, fmt.Errorf("open stream %s: %w", s.cfg.Name, err)
		}
		mism = append(mism, compareStream(st.CachedInfo().Config, s.cfg)...)
		*s.dst = st
	}
	for _, b := range h.bucketSlots(cfg) {
		ctx, cancel := op()
		defer cancel()
		kv, err := js.KeyValue(ctx, b.cfg.Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = js.CreateKeyValue(ctx, b.cfg)
			if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				kv, err = js.KeyValue(ctx, b.cfg.Bucket)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("open bucket %s: %w", b.cfg.Bucket, err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("bucket %s status: %w", b.cfg.Bucket, err)
		}
		if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
			mism = append(mism, compareBucket(bs.StreamInfo().Config, b.cfg)...)
		}
		*b.dst = kv
	}
	if len(mism) > 0 {
		return nil, &MismatchError{Mismatches: mism}
	}
	return &h, nil
}

// Apply creates every stream and bucket, or updates an existing one to
// cfg. Only an operator's tool runs it (`scpgate streams apply`, `scpgate
// dev`): the services' NATS users may create streams but not update them.
// The server refuses some changes (storage, retention); Apply then fails
// naming the stream.
func Apply(ctx context.Context, js jetstream.JetStream, cfg Config) (*Handles, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var h Handles
	for _, s := range h.streamSlots(cfg) {
		st, err := js.CreateOrUpdateStream(ctx, s.cfg)
		if err != nil {
			return nil, fmt.Errorf("create or update stream %s: %w", s.cfg.Name, err)
		}
		*s.dst = st
	}
	for _, b := range h.bucketSlots(cfg) {
		kv, err := js.CreateOrUpdateKeyValue(ctx, b.cfg)
		if err != nil {
			return nil, fmt.Errorf("create or update bucket %s: %w", b.cfg.Bucket, err)
		}
		*b.dst = kv
	}
	return &h, nil
}

type streamSlot struct {
	cfg jetstream.StreamConfig
	dst *jetstream.Stream
}

type bucketSlot struct {
	cfg jetstream.KeyValueConfig
	dst *jetstream.KeyValue
}

func (h *Handles) streamSlots(cfg Config) []streamSlot {
	return []streamSlot{
		{EventsStreamConfig(cfg), &h.Events},
		{CommandsStreamConfig(cfg), &h.Commands},
		{ResultsStreamConfig(cfg), &h.Results},
	}
}

func (h *Handles) bucketSlots(cfg Config) []bucketSlot {
	b := BucketConfigs(cfg)
	return []bucketSlot{{b[0], &h.Sessions}, {b[1], &h.Cursors}, {b[2], &h.State}, {b[3], &h.CommandStatus}}
}

// limit normalises a size or count limit: the server reports "none" as -1.
func limit(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

// compareStream returns the important settings of have that differ from
// want.
func compareStream(have, want jetstream.StreamConfig) []Mismatch {
	var out []Mismatch
	add := func(setting string, h, w any) {
		if fmt.Sprint(h) != fmt.Sprint(w) {
			out = append(out, Mismatch{Stream: want.Name, Setting: setting, Have: fmt.Sprint(h), Want: fmt.Sprint(w)})
		}
	}
	hs, ws := slices.Clone(have.Subjects), slices.Clone(want.Subjects)
	slices.Sort(hs)
	slices.Sort(ws)
	add("subjects", hs, ws)
	add("storage", have.Storage, want.Storage)
	add("replicas", max(have.Replicas, 1), max(want.Replicas, 1))
	add("retention", have.Retention, want.Retention)
	add("discard", have.Discard, want.Discard)
	add("discard_new_per_subject", have.DiscardNewPerSubject, want.DiscardNewPerSubject)
	add("max_age", have.MaxAge, want.MaxAge)
	add("max_bytes", limit(have.MaxBytes), limit(want.MaxBytes))
	add("max_msgs_per_subject", limit(have.MaxMsgsPerSubject), limit(want.MaxMsgsPerSubject))
	if want.Duplicates > 0 {
		add("duplicate_window", have.Duplicates, want.Duplicates)
	}
	add("allow_direct", have.AllowDirect, want.AllowDirect)
	add("allow_msg_ttl", have.AllowMsgTTL, want.AllowMsgTTL)
	return out
}

// compareBucket returns the important settings of the stream of bucket
// want (KV_<bucket>) that differ.
func compareBucket(have jetstream.StreamConfig, want jetstream.KeyValueConfig) []Mismatch {
	name := "KV_" + want.Bucket
	var out []Mismatch
	add := func(setting string, h, w any) {
		if fmt.Sprint(h) != fmt.Sprint(w) {
			out = append(out, Mismatch{Stream: name, Setting: setting, Have: fmt.Sprint(h), Want: fmt.Sprint(w)})
		}
	}
	add("storage", have.Storage, want.Storage)
	add("replicas", max(have.Replicas, 1), max(want.Replicas, 1))
	add("history", limit(have.MaxMsgsPerSubject), limit(int64(max(want.History, 1))))
	add("ttl", have.MaxAge, want.TTL)
	return out
}

// Retry timing of EnsureRetry.
const (
	ensureOp      = 2 * time.Second
	ensureMinWait = 100 * time.Millisecond
	ensureMaxWait = 2 * time.Second
)

// EnsureRetry calls Ensure until it succeeds or ctx ends: while NATS or
// JetStream is unavailable each failed attempt (each request bounded by
// 2 s) is followed by a wait growing from 100 ms to 2 s, so that services
// started together on a fresh cluster, whose streams' leaders are still
// being elected, are ready within seconds of it. An invalid config or a mismatch with the existing
// streams is returned at once. onRetry, when set, hears every failure
// that is retried.
func EnsureRetry(ctx context.Context, js jetstream.JetStream, cfg Config, onRetry func(err error, wait time.Duration)) (*Handles, error) {
	b := backoff.Backoff{Min: ensureMinWait, Max: ensureMaxWait}
	for {
		h, err := ensure(ctx, js, cfg, ensureOp)
		if err == nil {
			return h, nil
		}
		if errors.Is(err, ErrInvalidConfig) || errors.Is(err, ErrConfigMismatch) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ensure streams: %w (last error: %v)", ctx.Err(), err)
		}
		wait := b.Next()
		if onRetry != nil {
			onRetry(err, wait)
		}
		if serr := backoff.Sleep(ctx, wait); serr != nil {
			return nil, fmt.Errorf("ensure streams: %w (last error: %v)", serr, err)
		}
	}
}
