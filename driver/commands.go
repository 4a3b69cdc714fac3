package driver

import (
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/driver/internal/delivery"
	"github.com/scpgate/scpgate/scpbridge"
)

// CommandStats counts command delivery since New.
type CommandStats = delivery.Stats

// CommandStats returns a snapshot of the command delivery counters.
func (d *Driver) CommandStats() CommandStats { return d.cmds.Stats() }

// newDelivery returns the driver's command delivery (see
// internal/delivery), which sees sessions only as delivery.Session.
func newDelivery(d *Driver) *delivery.Delivery {
	return delivery.New(delivery.Config{
		NATS:          d.nc,
		JS:            d.js,
		Log:           d.log,
		DriverID:      d.opts.ID,
		Window:        d.opts.CommandWindow,
		FetchTimeout:  d.opts.CommandFetchTimeout,
		AnswerTimeout: d.opts.CommandAnswerTimeout,
		BusyRetry:     d.opts.CommandBusyRetry,
		BusyRetryMax:  d.opts.CommandBusyRetryMax,
		Draining:      d.draining.Load,
		HardStop:      d.hardCtx,
		WG:            &d.bgWG,
	})
}

var _ delivery.Session = (*session)(nil)

// Serial implements delivery.Session.
func (s *session) Serial() string { return s.serial }

// ID implements delivery.Session.
func (s *session) ID() string { return s.id }

// Done implements delivery.Session.
func (s *session) Done() <-chan struct{} { return s.ctx.Done() }

// Logger implements delivery.Session.
func (s *session) Logger() *zerolog.Logger { return &s.log }

// Send implements delivery.Session (see send).
func (s *session) Send(m scpbridge.Message) error { return s.send(m) }

// CheckDrained implements delivery.Session (see checkDrained).
func (s *session) CheckDrained() { s.checkDrained() }
