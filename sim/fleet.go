package sim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Fleet defaults.
const (
	DefaultSerialPrefix = "SIM"
	DefaultRamp         = 2000 // connects per second
)

// FleetConfig describes a fleet of simulated controllers.
type FleetConfig struct {
	// Controller is the template of every controller; Serial is replaced
	// by SerialPrefix and the controller's index, Seed is offset by it.
	Controller Config
	// Count is the number of controllers.
	Count int
	// SerialPrefix starts every serial: <prefix><index, 6 digits>
	// (default "SIM").
	SerialPrefix string
	// FirstIndex is the index of the first controller, so that the
	// slices of a fleet split over processes have distinct serials.
	FirstIndex int
	// Ramp is how many controllers start per second (default 2000), so
	// that a large fleet does not flood the host with connects.
	Ramp float64
	// TLSFor, when set, returns the TLS configuration of the controller
	// with the given serial (its own client certificate, for instance);
	// it replaces Controller.TLS.
	TLSFor func(serial string) *tls.Config
}

// Serial returns the serial of the controller with index i.
func (c FleetConfig) Serial(i int) string {
	p := c.SerialPrefix
	if p == "" {
		p = DefaultSerialPrefix
	}
	return fmt.Sprintf("%s%06d", p, i)
}

// Fleet runs many controllers against one target.
type Fleet struct {
	cfg   FleetConfig
	ctrls []*Controller
}

// NewFleet creates the fleet's controllers (they start in Run).
func NewFleet(cfg FleetConfig) *Fleet {
	if cfg.Ramp <= 0 {
		cfg.Ramp = DefaultRamp
	}
	f := &Fleet{cfg: cfg, ctrls: make([]*Controller, cfg.Count)}
	epoch := cfg.Controller.BootEpoch
	if epoch == 0 {
		epoch = uint32(time.Now().Unix())
	}
	for i := range f.ctrls {
		cc := cfg.Controller
		cc.Serial = cfg.Serial(cfg.FirstIndex + i)
		cc.Seed = cfg.Controller.Seed + int64(cfg.FirstIndex+i)
		cc.BootEpoch = epoch
		if cfg.TLSFor != nil {
			cc.TLS = cfg.TLSFor(cc.Serial)
		}
		f.ctrls[i] = NewController(cc)
	}
	return f
}

// Controllers returns the fleet's controllers, in index order.
func (f *Fleet) Controllers() []*Controller { return f.ctrls }

// Run starts the controllers at the configured ramp and runs them until
// ctx ends, then waits for all of them to say bye. It returns the first
// error a controller's Run returned, if any.
func (f *Fleet) Run(ctx context.Context) error {
	if f.cfg.Controller.Target == "" {
		return errors.New("sim: fleet: no target")
	}
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	start := time.Now()
	step := time.Duration(float64(time.Second) / f.cfg.Ramp)
	t := time.NewTimer(0)
	defer t.Stop()
	for i, c := range f.ctrls {
		if d := time.Until(start.Add(time.Duration(i) * step)); d > 0 {
			t.Reset(d)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(ctx); err != nil {
				once.Do(func() { first = fmt.Errorf("controller %s: %w", c.Serial(), err) })
			}
		}()
	}
	<-ctx.Done()
	wg.Wait()
	return first
}

// SetRate changes the event rate of every controller.
func (f *Fleet) SetRate(r float64) {
	for _, c := range f.ctrls {
		c.SetRate(r)
	}
}

// Report sums the controllers' stats.
func (f *Fleet) Report() Report {
	var r Report
	for _, c := range f.ctrls {
		r.AddStats(c.Stats())
	}
	return r
}

// outstanding counts unacknowledged transactions plus scheduled
// follow-ups, which will be logged and must be acknowledged too.
func (f *Fleet) outstanding() (unacked, pending uint64) {
	for _, c := range f.ctrls {
		unacked += c.Stats().Unacked
		pending += uint64(c.Pending())
	}
	return unacked, pending
}

// WaitAcked waits until every transaction logged is acknowledged and no
// follow-up is pending (stop the event mix with SetRate(0) first). When
// ctx ends first it returns an error wrapping ErrUnacked that says how
// many are left.
func (f *Fleet) WaitAcked(ctx context.Context) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		unacked, pending := f.outstanding()
		if unacked == 0 && pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d %w", unacked+pending, ErrUnacked)
		case <-t.C:
		}
	}
}
