//go:build !driveronly

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/replay"
	"github.com/scpgate/scpgate/streams"
)

// ControllerStatus is what `scpgate status --controller SERIAL` reports:
// the session that holds the controller now (from the scp_sessions
// bucket), or when it was last seen.
type ControllerStatus struct {
	Controller string    `json:"controller"`
	Online     bool      `json:"online"`
	Driver     string    `json:"driver,omitempty"`
	Session    string    `json:"session,omitempty"`
	Remote     string    `json:"remote,omitempty"`
	Since      time.Time `json:"since,omitzero"`
	Model      string    `json:"model,omitempty"`
	Firmware   string    `json:"firmware,omitempty"`
	// LastPresence is the latest presence event (online or offline) of
	// SCP_EVENTS, when there is one: when it was received, what it said
	// and, for offline, why the session ended.
	LastPresence *PresenceSeen `json:"last_presence,omitempty"`
}

// PresenceSeen is one presence event as status shows it.
type PresenceSeen struct {
	Code     string    `json:"code"` // online or offline
	Received time.Time `json:"received"`
	Driver   string    `json:"driver,omitempty"`
	Reason   string    `json:"reason,omitempty"`
}

// controllerStatus looks serial up in scp_sessions and SCP_EVENTS. A
// serial found in neither is an error.
func controllerStatus(ctx context.Context, js jetstream.JetStream, serial string) (ControllerStatus, error) {
	cs := ControllerStatus{Controller: serial}
	kv, err := js.KeyValue(ctx, streams.SessionsBucket)
	if err != nil {
		return cs, fmt.Errorf("bucket %s: %w", streams.SessionsBucket, err)
	}
	e, err := kv.Get(ctx, serial)
	switch {
	case err == nil:
		var rec driver.SessionRecord
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return cs, fmt.Errorf("decode session of %s: %w", serial, err)
		}
		cs.Online = true
		cs.Driver, cs.Session, cs.Remote, cs.Since = rec.Driver, rec.Session, rec.Remote, rec.Since
		cs.Model, cs.Firmware = rec.Model, rec.Firmware
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return cs, fmt.Errorf("session of %s: %w", serial, err)
	}
	subj, err := streams.EventSubject(serial, scpgate.KindPresence)
	if err != nil {
		return cs, err
	}
	st, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		return cs, fmt.Errorf("stream %s: %w", streams.EventsStream, err)
	}
	m, err := st.GetLastMsgForSubject(ctx, subj)
	switch {
	case err == nil:
		var ev scpgate.Event
		if json.Unmarshal(m.Data, &ev) == nil {
			p := &PresenceSeen{Code: ev.Code, Received: ev.Received, Driver: ev.Driver}
			if ev.Presence != nil {
				p.Reason = ev.Presence.Reason
			}
			cs.LastPresence = p
		}
	case !errors.Is(err, jetstream.ErrMsgNotFound):
		return cs, fmt.Errorf("last presence of %s: %w", serial, err)
	}
	if !cs.Online && cs.LastPresence == nil {
		known, err := replay.Known(ctx, js, serial)
		if err != nil {
			return cs, err
		}
		if !known {
			return cs, fmt.Errorf("controller %s is unknown: it holds no session and no event of it is stored", serial)
		}
	}
	return cs, nil
}

// printControllerStatus writes cs as a few lines.
func printControllerStatus(w io.Writer, cs ControllerStatus, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "controller\t%s\n", cs.Controller)
	if cs.Online {
		fmt.Fprintf(tw, "state\tonline\n")
		fmt.Fprintf(tw, "driver\t%s\n", cs.Driver)
		fmt.Fprintf(tw, "since\t%s (%s ago)\n", cs.Since.UTC().Format(time.RFC3339), now.Sub(cs.Since).Round(time.Second))
		fmt.Fprintf(tw, "remote\t%s\n", cs.Remote)
		fmt.Fprintf(tw, "session\t%s\n", cs.Session)
		if cs.Model != "" || cs.Firmware != "" {
			fmt.Fprintf(tw, "model\t%s (firmware %s)\n", cs.Model, cs.Firmware)
		}
	} else {
		fmt.Fprintf(tw, "state\toffline\n")
	}
	if p := cs.LastPresence; p != nil {
		line := fmt.Sprintf("%s at %s", p.Code, p.Received.UTC().Format(time.RFC3339))
		if p.Driver != "" {
			line += " on " + p.Driver
		}
		if p.Reason != "" {
			line += " (" + p.Reason + ")"
		}
		fmt.Fprintf(tw, "last presence\t%s\n", line)
	}
	return tw.Flush()
}

// printControllerLines writes one line per serial held by a driver:
// serial and driver, sorted by serial.
func printControllerLines(w io.Writer, drivers []DriverStatus) error {
	type row struct{ serial, driver string }
	var rows []row
	for _, d := range drivers {
		for _, s := range d.Controllers {
			rows = append(rows, row{s, d.ID})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].serial < rows[j].serial })
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "CONTROLLER\tDRIVER\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r.serial, r.driver)
	}
	return tw.Flush()
}
