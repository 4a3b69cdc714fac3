package driver

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/scpgate/scpgate"
)

// ShedSubject returns the subject of the "shed" endpoint of the driver
// with the given id. A ShedRequest there makes the driver release some of
// its sessions without stopping: after a restart of one driver the others
// hold its controllers, and shedding a share of theirs lets the load
// balancer spread them again.
func ShedSubject(id string) string {
	return "scpgate.driver." + subjectToken(id) + ".shed"
}

// ShedRequest asks a driver to release Sessions sessions, or the Fraction
// (0 to 1) of its sessions; exactly one of them is set.
type ShedRequest struct {
	Sessions int     `json:"sessions,omitempty"`
	Fraction float64 `json:"fraction,omitempty"`
}

// ShedResponse is the answer to a ShedRequest: how many sessions the
// driver held and how many it is releasing. The sessions are released
// at Options.DrainRate per second, each like in a drain (in-flight events
// confirmed and acknowledged, then a draining bye with a random reconnect
// delay), and close with ReasonShed.
type ShedResponse struct {
	ID       string `json:"id"`
	Sessions int    `json:"sessions"`
	Shed     int    `json:"shed"`
}

// ErrBadShed is returned for a ShedRequest that names neither or both of
// sessions and fraction, or values out of range.
var ErrBadShed = errors.New("shed: want sessions >= 1 or fraction in (0, 1]")

// shedding marks the sessions released by Shed, so that they close with
// ReasonShed instead of ReasonDrained.
var shedding sync.Map // *session -> struct{}

// closeReasonOfQuiesced is the reason a quiesced session closes with.
func closeReasonOfQuiesced(s *session) scpgate.CloseReason {
	if _, ok := shedding.LoadAndDelete(s); ok {
		return scpgate.ReasonShed
	}
	return scpgate.ReasonDrained
}

// count returns how many of n sessions req asks for.
func (req ShedRequest) count(n int) (int, error) {
	switch {
	case req.Sessions > 0 && req.Fraction == 0:
		return min(req.Sessions, n), nil
	case req.Sessions == 0 && req.Fraction > 0 && req.Fraction <= 1:
		return int(math.Round(req.Fraction * float64(n))), nil
	}
	return 0, ErrBadShed
}

// Shed releases sessions of a running driver as req asks, chosen at
// random among those not already leaving, at Options.DrainRate per
// second. The driver keeps accepting connections. It returns at once.
func (d *Driver) Shed(req ShedRequest) (ShedResponse, error) {
	resp := ShedResponse{ID: d.opts.ID}
	if d.closed.Load() || d.draining.Load() {
		return resp, ErrClosed
	}
	d.mu.Lock()
	list := make([]*session, 0, len(d.sessions))
	for _, s := range d.sessions {
		s.mu.Lock()
		leaving := s.life.quiesce || s.life.closing
		s.mu.Unlock()
		if !leaving {
			list = append(list, s)
		}
	}
	d.mu.Unlock()
	resp.Sessions = len(list)
	n, err := req.count(len(list))
	if err != nil {
		return resp, err
	}
	rand.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
	list = list[:n]
	resp.Shed = n
	d.log.Info().Int("sessions", resp.Sessions).Int("shed", n).Float64("rate", d.opts.DrainRate).Msg("shedding sessions")
	if n > 0 {
		go d.shedWaves(list)
	}
	return resp, nil
}

// shedWaves releases list at DrainRate per second until done or the
// driver closes.
func (d *Driver) shedWaves(list []*session) {
	start := time.Now()
	tick := time.NewTicker(drainTick)
	defer tick.Stop()
	for released := 0; released < len(list); {
		due := min(len(list), 1+int(time.Since(start).Seconds()*d.opts.DrainRate))
		for ; released < due; released++ {
			shedding.Store(list[released], struct{}{})
			list[released].beginDrain()
		}
		select {
		case <-d.bgCtx.Done():
			for _, s := range list[released:] {
				shedding.Delete(s)
			}
			return
		case <-tick.C:
		}
	}
	// A shed session that ended otherwise (the controller hung up first)
	// leaves its mark behind: remove it once the session is gone.
	for _, s := range list {
		select {
		case <-s.ctx.Done():
		case <-d.bgCtx.Done():
		}
		shedding.Delete(s)
	}
}

// addShedEndpoint adds the "shed" endpoint to the driver's micro service.
func (d *Driver) addShedEndpoint(svc micro.Service) error {
	err := svc.AddEndpoint("shed", micro.HandlerFunc(func(r micro.Request) {
		var req ShedRequest
		if err := json.Unmarshal(r.Data(), &req); err != nil {
			_ = r.Error("400", "shed: bad request: "+err.Error(), nil)
			return
		}
		resp, err := d.Shed(req)
		switch {
		case errors.Is(err, ErrBadShed):
			_ = r.Error("400", err.Error(), nil)
		case err != nil:
			_ = r.Error("503", "shed: "+err.Error(), nil)
		default:
			_ = r.RespondJSON(resp)
		}
	}), micro.WithEndpointSubject(ShedSubject(d.opts.ID)), micro.WithEndpointQueueGroupDisabled())
	if err != nil {
		return fmt.Errorf("driver: add shed endpoint: %w", err)
	}
	return nil
}
