// Package replay reads one controller's events back from the SCP_EVENTS
// stream, for operators: from a point in time or a stream sequence,
// optionally of one kind, optionally following new events as they arrive.
package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/streams"
)

// ErrBadOptions means the replay options contradict each other.
var ErrBadOptions = errors.New("replay: bad options")

// ErrUnknownController means SCP_EVENTS holds no event at all of the
// controller: a typo in the serial, or a controller that never connected
// (or whose events have all aged out).
var ErrUnknownController = errors.New("no event of this controller is stored in SCP_EVENTS")

// Known reports whether SCP_EVENTS holds any event of serial.
func Known(ctx context.Context, js jetstream.JetStream, serial string) (bool, error) {
	subj, err := streams.EventsFor(serial)
	if err != nil {
		return false, err
	}
	st, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		return false, fmt.Errorf("replay: events stream: %w", err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return false, fmt.Errorf("replay: events stream info: %w", err)
	}
	return len(info.State.Subjects) > 0, nil
}

// DefaultLinger is how long the server keeps a replay's consumer once
// the replay stopped reading without deleting it, e.g. when it was killed
// (Options.Linger).
const DefaultLinger = 5 * time.Second

// Options selects what to replay.
type Options struct {
	Serial  string        // controller serial (required)
	Kind    scpgate.Kind  // one kind, or "" for all
	Since   time.Duration // events stored within this long ago; 0 = from the start
	FromSeq uint64        // start at this stream sequence; exclusive with Since
	Follow  bool          // keep going after catching up, until ctx ends
	// Linger is how long the server keeps the replay's (ephemeral,
	// ordered) consumer once the replay stops reading: it removes it
	// then, so a replay leaves nothing behind even when killed, and the
	// "ops" NATS user needs no right to delete consumers. 0 means
	// DefaultLinger.
	Linger time.Duration
}

// Msg is one replayed event: its stream sequence, subject and the stored
// JSON document, unchanged.
type Msg struct {
	Seq     uint64
	Subject string
	Data    []byte
}

func (o Options) consumerConfig(now time.Time) (jetstream.OrderedConsumerConfig, error) {
	cfg := jetstream.OrderedConsumerConfig{InactiveThreshold: o.Linger}
	if cfg.InactiveThreshold <= 0 {
		cfg.InactiveThreshold = DefaultLinger
	}
	if o.Since > 0 && o.FromSeq > 0 {
		return cfg, fmt.Errorf("%w: --since and --from-seq exclude each other", ErrBadOptions)
	}
	if o.Since < 0 {
		return cfg, fmt.Errorf("%w: --since must be positive", ErrBadOptions)
	}
	subject, err := streams.EventsFor(o.Serial)
	if err != nil {
		return cfg, err
	}
	if o.Kind != "" {
		if subject, err = streams.EventSubject(o.Serial, o.Kind); err != nil {
			return cfg, err
		}
	}
	cfg.FilterSubjects = []string{subject}
	switch {
	case o.FromSeq > 0:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = o.FromSeq
	case o.Since > 0:
		start := now.Add(-o.Since)
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &start
	default:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	return cfg, nil
}

// Count returns how many events the options select right now.
func Count(ctx context.Context, js jetstream.JetStream, o Options) (uint64, error) {
	cfg, err := o.consumerConfig(time.Now())
	if err != nil {
		return 0, err
	}
	cons, err := js.OrderedConsumer(ctx, streams.EventsStream, cfg)
	if err != nil {
		return 0, fmt.Errorf("create replay consumer: %w", err)
	}
	defer remove(js, cons)
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("replay consumer info: %w", err)
	}
	return info.NumPending, nil
}

// remove deletes the replay's consumer once the replay is done with it,
// so that none is left behind. Should the delete fail (NATS gone, or a
// user without the right), the server still removes the consumer once it
// has been idle for Options.Linger.
func remove(js jetstream.JetStream, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = js.DeleteConsumer(ctx, streams.EventsStream, info.Name)
}

// Run delivers the selected events in stream order to out. progress, when
// not nil, is told how many were delivered out of the total known when the
// replay started (the total grows while following). Run returns nil once it
// has caught up, unless o.Follow is set; then it returns when ctx ends.
func Run(ctx context.Context, js jetstream.JetStream, o Options, out func(Msg) error, progress func(done, total uint64)) error {
	cfg, err := o.consumerConfig(time.Now())
	if err != nil {
		return err
	}
	cons, err := js.OrderedConsumer(ctx, streams.EventsStream, cfg)
	if err != nil {
		return fmt.Errorf("create replay consumer: %w", err)
	}
	defer remove(js, cons) // after the iterator below has stopped
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("replay consumer info: %w", err)
	}
	total, done := info.NumPending, uint64(0)
	if progress != nil {
		progress(0, total)
	}
	if total == 0 && !o.Follow {
		return nil
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(500))
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer iter.Stop()
	stop := context.AfterFunc(ctx, iter.Stop)
	defer stop()
	for {
		m, err := iter.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				if o.Follow && ctx.Err() != nil {
					return nil
				}
				return ctx.Err()
			}
			return fmt.Errorf("replay: next event: %w", err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("replay: event metadata: %w", err)
		}
		if err := out(Msg{Seq: meta.Sequence.Stream, Subject: m.Subject(), Data: m.Data()}); err != nil {
			return err
		}
		done++
		if done+meta.NumPending > total {
			total = done + meta.NumPending
		}
		if progress != nil {
			progress(done, total)
		}
		if meta.NumPending == 0 && !o.Follow {
			return nil
		}
	}
}
