package commander

// The sweeper ends the commands nobody else will: a command waits in
// SCP_COMMANDS for its controller until it expires, and the driver that
// holds the controller ends it (expired) when it reads it. A controller
// that never comes back has no driver, so without the sweeper its
// commands would never get a result, and a vendor waiting on SCP_RESULTS
// would wait forever.
//
// Every Interval the sweeper reads the stored commands; each one past its
// expiry by more than Grace (time for its driver to end it first) is ended
// here: its final record is written to scp_commands with compare-and-set
// (created when there is none: expired; over a "sent" record: failed,
// unanswered), its result published to SCP_RESULTS with the command id as
// message id, and the command deleted. The driver writes its final
// records with compare-and-set too, so whoever writes first decides the
// one result; the other takes it. A command already final (its driver
// stopped before deleting it) has its result published again (the message
// id makes that harmless) and is deleted. Several commanders may sweep at
// once.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commands"
	"github.com/scpgate/scpgate/streams"
)

// Defaults of SweeperOptions.
const (
	DefaultSweepInterval = 30 * time.Second
	DefaultSweepGrace    = 2 * time.Minute
)

// ErrTTLBeyondMaxAge is returned (wrapped) by Sweeper.Check when the
// longest TTL plus the garbage-collection grace of a command does not fit
// in the MaxAge of SCP_COMMANDS: the stream could drop a command before
// anyone ended it.
var ErrTTLBeyondMaxAge = errors.New("command TTL beyond the commands stream's MaxAge")

// SweeperOptions configure a Sweeper.
type SweeperOptions struct {
	// JS reads and deletes commands, writes records and results. Required.
	JS jetstream.JetStream
	// Log receives the sweeper's logs.
	Log zerolog.Logger
	// Interval is the time between sweeps (default 30 s).
	Interval time.Duration
	// Grace is how long past its expiry a command is left to its driver
	// before the sweeper ends it (default 2 min). Keep it above the
	// drivers' command answer timeout.
	Grace time.Duration
	// MaxTTL is the longest TTL the commanders accept (default as
	// Options.MaxTTL); Check compares it with the stream's MaxAge.
	MaxTTL time.Duration
	// Timeout bounds each NATS request (default 5 s).
	Timeout time.Duration
	// StatusBucket is the bucket of command status records (default
	// commands.StatusBucket).
	StatusBucket string
}

// SweepStats counts what sweeps did.
type SweepStats struct {
	// Sweeps counts completed sweeps; Scanned the commands they read.
	Sweeps  uint64 `json:"sweeps"`
	Scanned uint64 `json:"scanned"`
	// Expired counts commands ended expired (never sent); Unanswered
	// those ended failed, reason unanswered (sent, never answered).
	Expired    uint64 `json:"expired"`
	Unanswered uint64 `json:"unanswered"`
	// Republished counts commands found final and still queued: their
	// result was published again and the command deleted.
	Republished uint64 `json:"republished"`
	// Lost counts compare-and-set races lost to a driver or another
	// sweeper (the command then has their result).
	Lost uint64 `json:"lost"`
	// Errors counts failed sweeps and commands.
	Errors uint64 `json:"errors"`
}

// Sweeper ends expired commands of controllers that do not come back.
type Sweeper struct {
	opts SweeperOptions
	js   jetstream.JetStream
	log  zerolog.Logger

	sweeps, scanned, expired, unanswered, republished, lost, errs atomic.Uint64
}

// NewSweeper returns a Sweeper; Run runs it.
func NewSweeper(opts SweeperOptions) (*Sweeper, error) {
	if opts.Interval == 0 {
		opts.Interval = DefaultSweepInterval
	}
	if opts.Grace == 0 {
		opts.Grace = DefaultSweepGrace
	}
	if opts.MaxTTL == 0 {
		opts.MaxTTL = Options{}.withDefaults().MaxTTL
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.StatusBucket == "" {
		opts.StatusBucket = commands.StatusBucket
	}
	switch {
	case opts.JS == nil:
		return nil, fmt.Errorf("%w: sweeper needs JS", ErrInvalidOptions)
	case opts.Interval < 0 || opts.Grace < 0 || opts.Timeout < 0:
		return nil, fmt.Errorf("%w: negative sweep interval, grace or timeout", ErrInvalidOptions)
	case opts.Grace+opts.Interval >= gcGrace:
		// A command's message lives gcGrace past its expiry: a sweep
		// must come before that.
		return nil, fmt.Errorf("%w: sweep grace %s plus interval %s must stay below %s", ErrInvalidOptions, opts.Grace, opts.Interval, gcGrace)
	}
	return &Sweeper{opts: opts, js: opts.JS, log: opts.Log.With().Str("component", "sweeper").Logger()}, nil
}

// Stats returns what the sweeps did so far.
func (w *Sweeper) Stats() SweepStats {
	return SweepStats{
		Sweeps: w.sweeps.Load(), Scanned: w.scanned.Load(), Expired: w.expired.Load(),
		Unanswered: w.unanswered.Load(), Republished: w.republished.Load(), Lost: w.lost.Load(), Errors: w.errs.Load(),
	}
}

// Check reads the MaxAge of SCP_COMMANDS and fails (ErrTTLBeyondMaxAge)
// when MaxTTL plus the grace every command's message keeps after its
// expiry does not fit in it.
func (w *Sweeper) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	st, err := w.js.Stream(ctx, streams.CommandsStream)
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", streams.CommandsStream, err)
	}
	return CheckMaxAge(w.opts.MaxTTL, st.CachedInfo().Config.MaxAge)
}

// CheckMaxAge reports (ErrTTLBeyondMaxAge) whether commands of TTL up to
// maxTTL outlive a commands stream whose MaxAge is maxAge (0: unlimited).
func CheckMaxAge(maxTTL, maxAge time.Duration) error {
	if maxAge > 0 && maxTTL+gcGrace > maxAge {
		return fmt.Errorf("%w: max TTL %s + %s grace > %s MaxAge %s; lower SCPGATE_COMMAND_MAX_TTL or raise SCPGATE_COMMANDS_MAX_AGE",
			ErrTTLBeyondMaxAge, maxTTL, gcGrace, streams.CommandsStream, maxAge)
	}
	return nil
}

// Run checks the stream, then sweeps every Interval until ctx ends. It
// returns the error of Check; failed sweeps are logged and retried.
func (w *Sweeper) Run(ctx context.Context) error {
	if err := w.Check(ctx); err != nil {
		return err
	}
	t := time.NewTicker(w.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := w.Sweep(ctx); err != nil && ctx.Err() == nil {
			w.errs.Add(1)
			w.log.Warn().Err(err).Msg("sweep of expired commands failed")
		}
	}
}

// Sweep reads every stored command once and ends those past their expiry
// by more than Grace.
func (w *Sweeper) Sweep(ctx context.Context) error {
	ictx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	st, err := w.js.Stream(ictx, streams.CommandsStream)
	cancel()
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", streams.CommandsStream, err)
	}
	state := st.CachedInfo().State
	if state.Msgs == 0 {
		w.sweeps.Add(1)
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	cons, err := st.OrderedConsumer(cctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{streams.CommandsAll},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("read %s: %w", streams.CommandsStream, err)
	}
	defer w.dropConsumer(st, cons)
	now := time.Now()
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return fmt.Errorf("read %s: %w", streams.CommandsStream, err)
		}
		n, last := 0, uint64(0)
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			last = md.Sequence.Stream
			w.scanned.Add(1)
			if err := w.one(ctx, st, m, last, now); err != nil {
				w.errs.Add(1)
				w.log.Warn().Err(err).Str("subject", m.Subject()).Uint64("seq", last).Msg("end expired command")
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("read %s: %w", streams.CommandsStream, err)
		}
		if n == 0 || last >= state.LastSeq {
			break
		}
	}
	w.sweeps.Add(1)
	return nil
}

// dropConsumer deletes the sweep's consumer rather than leaving it to the
// server's inactivity threshold.
func (w *Sweeper) dropConsumer(st jetstream.Stream, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.opts.Timeout)
	defer cancel()
	_ = st.DeleteConsumer(ctx, info.Name)
}

// one ends the command m (stored at seq) if it is past its expiry by more
// than Grace.
func (w *Sweeper) one(ctx context.Context, st jetstream.Stream, m jetstream.Msg, seq uint64, now time.Time) error {
	serial, ok := streams.SerialFromSubject(m.Subject())
	if !ok {
		return nil
	}
	var cmd scpgate.Command
	if err := json.Unmarshal(m.Data(), &cmd); err != nil || cmd.Expires.IsZero() || !now.After(cmd.Expires.Add(w.opts.Grace)) {
		return nil // not expired (an undecodable one is its driver's to fail)
	}
	id := commands.ID(serial, seq)
	res, err := w.end(ctx, serial, seq, &cmd, now)
	if err != nil {
		return err
	}
	if err := w.publish(ctx, res); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	if err := st.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("delete ended command %s: %w", id, err)
	}
	w.log.Info().Str("id", id).Str("status", string(res.Status)).Str("reason", res.Reason).Time("expires", cmd.Expires).
		Msg("command ended by the sweeper")
	return nil
}
