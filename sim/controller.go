package sim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	sb "github.com/scpgate/scpgate/scpbridge"
)

// Bounds of the per-controller memories of commands.
const (
	commandLogSize = 256 // ReceivedCommand records kept for Commands
	seenTagsSize   = 512 // recent tags remembered to count and replay duplicates
)

// Controller is one simulated controller. It dials its host, identifies
// itself with a hello carrying its log status, sends every unacknowledged
// transaction, answers commands, heartbeats, and reconnects with jittered
// exponential backoff whenever the session ends, until its context ends.
// Its methods are safe for concurrent use.
type Controller struct {
	cfg Config
	log zerolog.Logger
	mac [6]byte

	kick          chan struct{} // capacity 1: Generate, Restart or SetRate happened
	running       atomic.Bool
	rate          atomic.Uint64 // math.Float64bits of events per second
	clockOffsetMS atomic.Int64  // set_time moves the controller clock
	pendingFollow atomic.Int32  // follow-up transactions scheduled but not logged

	// Owned by the goroutine in Run.
	rng *rand.Rand
	mix mixer

	mu sync.Mutex
	// Guarded by mu.
	epoch    uint32
	txl      *txlog
	st       Stats // counters; the log fields are filled by Stats
	genCount uint64
	seen     map[uint32]*seenTag
	seenRing []uint32
	seenNext int
	cmds     []ReceivedCommand
	cmdNext  int
	dropped  int // commands left unanswered (Config.DropAnswers)
}

// NewController returns a controller for cfg (defaults applied). It does
// nothing until Run.
func NewController(cfg Config) *Controller {
	cfg = cfg.WithDefaults()
	h := fnv.New64a()
	h.Write([]byte(cfg.Serial))
	sum := h.Sum64()
	c := &Controller{
		cfg:   cfg,
		log:   cfg.Log.With().Str("serial", cfg.Serial).Logger(),
		mac:   [6]byte{0x02, byte(sum >> 32), byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)},
		kick:  make(chan struct{}, 1),
		rng:   rand.New(rand.NewPCG(uint64(cfg.Seed), sum)),
		epoch: cfg.BootEpoch,
		txl:   newTxlog(cfg.LogCapacity),
	}
	c.st.Serial = cfg.Serial
	c.mix = mixer{cfg: &c.cfg, rng: c.rng}
	c.rate.Store(math.Float64bits(cfg.Rate))
	return c
}

// Serial returns the controller's serial.
func (c *Controller) Serial() string { return c.cfg.Serial }

// Config returns the controller's configuration with defaults applied.
func (c *Controller) Config() Config { return c.cfg }

// Rate returns the current event rate (transactions per second).
func (c *Controller) Rate() float64 { return math.Float64frombits(c.rate.Load()) }

// SetRate changes the event rate; 0 stops the random events (door cycles
// already started still finish).
func (c *Controller) SetRate(r float64) {
	c.rate.Store(math.Float64bits(max(r, 0)))
	c.poke()
}

// Pending returns how many follow-up transactions (the rest of a door
// cycle, an input returning to normal...) are scheduled but not yet
// logged.
func (c *Controller) Pending() int { return int(c.pendingFollow.Load()) }

func (c *Controller) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// now returns the controller's clock, which set_time may have moved.
func (c *Controller) now() time.Time {
	return time.Now().Add(time.Duration(c.clockOffsetMS.Load()) * time.Millisecond)
}

// Generate logs n transactions now from a fixed, deterministic mix (a
// granted read and its door cycle, a denied read, an input alarm and
// normal, an output on and off, in a cycle of ten), and wakes the session
// to send them.
func (c *Controller) Generate(n int) {
	now := time.Now()
	c.mu.Lock()
	for i := 0; i < n; i++ {
		c.logLocked(patterned(&c.cfg, c.genCount, now), false)
		c.genCount++
	}
	c.mu.Unlock()
	c.poke()
}

// logLocked logs e at the controller clock. c.mu must be held.
func (c *Controller) logLocked(e entry, marker bool) {
	e.timeMS += c.clockOffsetMS.Load()
	dropped := c.txl.append(e, marker)
	c.st.Generated++
	if dropped > 0 {
		c.st.DroppedOverflow += uint64(dropped)
		if c.txl.pendingLost == uint32(dropped) { // first loss since the last report
			c.log.Debug().Int("capacity", c.txl.capacity).Msg("transaction log full: overwriting the oldest")
		}
	}
}

// logNow logs e with the current time.
func (c *Controller) logNow(e entry) {
	e.timeMS = time.Now().UnixMilli()
	c.mu.Lock()
	c.logLocked(e, false)
	c.mu.Unlock()
}

// reportLostLocked logs a system/log_over_limit transaction for the
// transactions overwritten since the last report, if any. c.mu must be
// held.
func (c *Controller) reportLostLocked() {
	if lost := c.txl.takeLost(); lost > 0 {
		c.logLocked(entry{timeMS: time.Now().UnixMilli(), src: sb.SourceController, typ: sb.TranSystem, code: sb.SystemLogOverLimit, aux: lost}, true)
	}
}

// Restart simulates a power cycle that lost the log: a new boot epoch,
// serials from 1 again, an empty log (its unacknowledged transactions are
// counted in LostOnRestart) and a new session.
func (c *Controller) Restart() {
	c.mu.Lock()
	c.st.LostOnRestart += uint64(c.txl.reset())
	c.epoch = max(c.epoch+1, uint32(time.Now().Unix()))
	c.seen, c.seenRing, c.seenNext = nil, nil, 0
	c.mu.Unlock()
	c.poke()
}

// Stats returns a snapshot of the controller's counters.
func (c *Controller) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.st
	s.BootEpoch = c.epoch
	s.LastLogged = c.txl.lastLogged
	s.LastAcked = c.txl.lastAcked
	s.Unacked = uint64(c.txl.n)
	return s
}

// LogStatus returns the log status the controller would send in a hello.
func (c *Controller) LogStatus() sb.LogStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.txl.status()
}

// Commands returns the most recent commands received (at most 256), oldest
// first.
func (c *Controller) Commands() []ReceivedCommand {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ReceivedCommand, 0, len(c.cmds))
	if len(c.cmds) == commandLogSize {
		out = append(out, c.cmds[c.cmdNext:]...)
		return append(out, c.cmds[:c.cmdNext]...)
	}
	return append(out, c.cmds...)
}

// Run connects to the target and keeps a session up, reconnecting after
// every loss, until ctx ends; then it says bye and returns nil. The random
// event mix runs whether or not the controller is connected: offline, the
// transactions wait in the log. It returns ErrRunning if the controller is
// already running.
func (c *Controller) Run(ctx context.Context) error {
	if c.cfg.Target == "" {
		return errors.New("sim: run: no target")
	}
	if c.cfg.LocalAddr != "" && net.ParseIP(c.cfg.LocalAddr) == nil {
		return fmt.Errorf("sim: run: local address %q is not an IP", c.cfg.LocalAddr)
	}
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer c.running.Store(false)
	defer func() {
		c.mix.follow = nil
		c.pendingFollow.Store(0)
	}()

	c.mix.reschedule(time.Now(), c.Rate())
	attempt := 0
	for dial := 0; ; dial++ {
		if dial > 0 {
			c.mu.Lock()
			c.st.Reconnects++
			c.mu.Unlock()
		}
		end := c.connect(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if end.welcomed {
			attempt = 0
			if c.cfg.LogCommEvents {
				c.logNow(entry{src: sb.SourceController, typ: sb.TranSystem, code: sb.SystemCommOffline})
			}
		}
		wait := c.cfg.Backoff.Delay(attempt, c.rng)
		if end.after > 0 {
			wait = end.after + c.cfg.Backoff.Delay(0, c.rng)
		}
		if !end.quick {
			attempt++
		}
		ev := c.log.Debug()
		if end.err != nil {
			ev = ev.Err(end.err)
		}
		ev.Str("reason", end.reason).Dur("wait", wait).Msg("session ended")
		if !c.idle(ctx, wait) {
			return nil
		}
	}
}

// tick logs what the event mix has due at now.
func (c *Controller) tick(now time.Time) {
	if r := c.Rate(); r != c.mix.rate {
		c.mix.reschedule(now, r)
	}
	c.mix.due(now, func(e entry) {
		c.mu.Lock()
		c.logLocked(e, false)
		c.mu.Unlock()
	})
	c.pendingFollow.Store(int32(len(c.mix.follow)))
}

// idle waits d between sessions while the event mix keeps logging. It
// returns false when ctx ended.
func (c *Controller) idle(ctx context.Context, d time.Duration) bool {
	deadline := time.Now().Add(d)
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		now := time.Now()
		c.tick(now)
		if !now.Before(deadline) {
			return true
		}
		next := deadline
		if w := c.mix.wake(); !w.IsZero() && w.Before(next) {
			next = w
		}
		t.Reset(next.Sub(now))
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		case <-c.kick:
		}
	}
}

// seenTag is what the controller remembers of a recent command tag.
type seenTag struct {
	done   bool   // answered OK: a repeat is answered the same, not acted on
	detail string // the detail of that answer
}

// seenLocked records tag and returns what was remembered of it in this
// boot epoch (among the last seenTagsSize tags), nil if it is new. c.mu
// must be held.
func (c *Controller) seenLocked(tag uint32) *seenTag {
	if s, ok := c.seen[tag]; ok {
		return s
	}
	if c.seen == nil {
		c.seen = make(map[uint32]*seenTag)
	}
	if len(c.seenRing) < seenTagsSize {
		c.seenRing = append(c.seenRing, tag)
	} else {
		delete(c.seen, c.seenRing[c.seenNext])
		c.seenRing[c.seenNext] = tag
		c.seenNext = (c.seenNext + 1) % seenTagsSize
	}
	c.seen[tag] = &seenTag{}
	return nil
}

// completedLocked remembers that the command with tag was carried out and
// answered OK with detail. c.mu must be held.
func (c *Controller) completedLocked(tag uint32, detail string) {
	if s, ok := c.seen[tag]; ok {
		s.done, s.detail = true, detail
	}
}

// recordLocked keeps rc in the bounded command log. c.mu must be held.
func (c *Controller) recordLocked(rc ReceivedCommand) {
	if len(c.cmds) < commandLogSize {
		c.cmds = append(c.cmds, rc)
		return
	}
	c.cmds[c.cmdNext] = rc
	c.cmdNext = (c.cmdNext + 1) % commandLogSize
}
