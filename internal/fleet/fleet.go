// Package fleet finds the running drivers through NATS service discovery:
// every driver runs a micro service (driver.ServiceName) whose info
// carries its id and controller address and whose stats carry its
// driver.Stats. `scpgate status` and the web console both read the fleet
// this way.
package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/scpgate/scpgate/driver"
)

// Driver is one running driver as its micro service describes it.
type Driver struct {
	// ID is the driver id (SCPGATE_DRIVER_ID); Instance the micro service
	// instance id, unique per process.
	ID       string
	Instance string
	Version  string
	// ControllerAddr and ControllerPort are where controllers connect.
	ControllerAddr string
	ControllerPort string
	// SessionsSubject answers with the serials the driver holds.
	SessionsSubject string
	// Started is when the micro service started; zero when its stats did
	// not answer in time.
	Started time.Time
	// Stats are the driver's statistics; HasStats says whether they
	// answered in time.
	Stats    driver.Stats
	HasStats bool
}

// Drivers asks every driver for its info and stats at once, collects the
// answers that arrive within wait, and returns the drivers sorted by id,
// then instance. A driver that answered only one of the two is listed
// with what it said.
func Drivers(ctx context.Context, nc *nats.Conn, wait time.Duration) ([]Driver, error) {
	infoSubj, err := micro.ControlSubject(micro.InfoVerb, driver.ServiceName, "")
	if err != nil {
		return nil, err
	}
	statsSubj, err := micro.ControlSubject(micro.StatsVerb, driver.ServiceName, "")
	if err != nil {
		return nil, err
	}
	var (
		stats    [][]byte
		statsErr error
		wg       sync.WaitGroup
	)
	wg.Go(func() { stats, statsErr = Gather(ctx, nc, statsSubj, wait) })
	infos, err := Gather(ctx, nc, infoSubj, wait)
	wg.Wait()
	if err == nil {
		err = statsErr
	}
	if err != nil {
		return nil, err
	}
	byInstance := make(map[string]*Driver, len(infos))
	for _, b := range infos {
		var info micro.Info
		if json.Unmarshal(b, &info) != nil || info.ID == "" {
			continue
		}
		byInstance[info.ID] = &Driver{
			ID: info.Metadata["id"], Instance: info.ID, Version: info.Version,
			ControllerAddr: info.Metadata["controller_addr"], ControllerPort: info.Metadata["controller_port"],
			SessionsSubject: info.Metadata["sessions_subject"],
		}
	}
	for _, b := range stats {
		var ms micro.Stats
		if json.Unmarshal(b, &ms) != nil {
			continue
		}
		d := byInstance[ms.ID]
		if d == nil { // answered stats but not info in time
			d = &Driver{Instance: ms.ID, Version: ms.Version}
			byInstance[ms.ID] = d
		}
		d.Started = ms.Started
		for _, ep := range ms.Endpoints {
			var ds driver.Stats
			if len(ep.Data) == 0 || json.Unmarshal(ep.Data, &ds) != nil {
				continue
			}
			if d.ID == "" {
				d.ID = ds.ID
			}
			d.Stats, d.HasStats = ds, true
			break
		}
	}
	out := make([]Driver, 0, len(byInstance))
	for _, d := range byInstance {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Instance < out[j].Instance
	})
	return out, nil
}

// Gather sends a request with no body to subject and collects every
// answer that arrives within wait (a request to many responders, such as
// the micro services' discovery subjects).
func Gather(ctx context.Context, nc *nats.Conn, subject string, wait time.Duration) ([][]byte, error) {
	inbox := nc.NewInbox()
	ch := make(chan *nats.Msg, 256)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, fmt.Errorf("subscribe for answers to %s: %w", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		return nil, fmt.Errorf("request %s: %w", subject, err)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	var out [][]byte
	for {
		select {
		case m := <-ch:
			if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
				continue // no responders
			}
			out = append(out, m.Data)
		case <-t.C:
			return out, nil
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
}
