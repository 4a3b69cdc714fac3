//go:build !driveronly

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/fleet"
	"github.com/scpgate/scpgate/internal/metrics"
	"github.com/scpgate/scpgate/internal/natsconn"
	"github.com/scpgate/scpgate/streams"
)

func init() {
	register(&command{
		name:    "status",
		summary: "show drivers, sessions, streams and ingest lag",
		usage: `scpgate status [--json] [--controllers] [--wait D]
scpgate status [--json] --controller SERIAL

Asks NATS for every running driver (the "scpgate-driver" micro service:
id, controller address, sessions, events), for the size of the streams
SCP_EVENTS, SCP_COMMANDS and SCP_RESULTS, and for the lag of the shared
ingest consumer, and prints them as tables (or one JSON document with
--json). It warns when a stream with a size limit is --warn-full full
(SCP_EVENTS then discards its oldest events) and when ingest's backlog
is at risk of being discarded unread. Drivers are gathered for --wait.
With --controllers the serials held are listed too, one line per serial
with its driver. --controller SERIAL shows one controller instead: online
or offline, which driver holds it, since when, from which remote address,
and its last presence event. Connects with NATS_URL and the other
NATS_ variables (an "ops" user is enough).`,
		run: runStatus,
	})
}

// Status is what `scpgate status` reports.
type Status struct {
	Time    time.Time      `json:"time"`
	Drivers []DriverStatus `json:"drivers"`
	// Sessions is the sum of the drivers' sessions.
	Sessions int            `json:"sessions"`
	Streams  []StreamStatus `json:"streams"`
	Ingest   []IngestLag    `json:"ingest"`
	// Errors lists what could not be read; the rest is still reported.
	Errors []string `json:"errors,omitempty"`
	// Warnings lists what needs an operator soon (statusWarnings).
	Warnings []string `json:"warnings,omitempty"`
}

// DriverStatus is one driver, from its micro service info and stats.
type DriverStatus struct {
	ID             string    `json:"id"`
	Instance       string    `json:"instance"` // micro service instance id
	Version        string    `json:"version"`
	ControllerAddr string    `json:"controller_addr"`
	ControllerPort string    `json:"controller_port"`
	Started        time.Time `json:"started,omitzero"`
	Sessions       int       `json:"sessions"`
	Draining       bool      `json:"draining"`
	Inflight       int       `json:"inflight"`
	EventsReceived uint64    `json:"events_received"`
	EventsAcked    uint64    `json:"events_acked"`
	Rejects        uint64    `json:"rejects"`
	// Controllers are the serials held, with --controllers.
	Controllers []string `json:"controllers,omitempty"`

	sessionsSubject string
}

// StreamStatus is the size of one stream.
type StreamStatus struct {
	Name      string `json:"name"`
	Messages  uint64 `json:"messages"`
	Bytes     uint64 `json:"bytes"`
	Subjects  uint64 `json:"subjects"`
	Consumers int    `json:"consumers"`
	FirstSeq  uint64 `json:"first_seq"`
	LastSeq   uint64 `json:"last_seq"`
	// MaxBytes is the stream's size limit (0: none); Fullness is Bytes
	// over it, from 0 to 1.
	MaxBytes int64   `json:"max_bytes,omitempty"`
	Fullness float64 `json:"fullness,omitempty"`
}

// IngestLag is the state of the shared ingest consumer on one stream.
type IngestLag struct {
	Stream      string `json:"stream"`
	Consumer    string `json:"consumer"`
	NumPending  uint64 `json:"num_pending"`
	NumAckPend  int    `json:"num_ack_pending"`
	Redelivered int    `json:"num_redelivered"`
	Waiting     int    `json:"num_waiting"`
}

// statusOptions say what collectStatus gathers.
type statusOptions struct {
	wait        time.Duration // how long driver answers are gathered
	controllers bool
	durable     string
	warnFull    float64 // fullness from which a stream is warned about
}

func runStatus(ctx context.Context, args []string) error {
	var natsCfg natsconn.Config
	fs := newFlagSet("status", envSpec{"", &natsCfg})
	asJSON := fs.Bool("json", false, "print one JSON document")
	ctrls := fs.Bool("controllers", false, "list the serials held, one line per serial with its driver")
	one := fs.String("controller", "", "show one controller: which driver holds it, since when, from which address")
	wait := fs.Duration("wait", 500*time.Millisecond, "how long to gather answers from drivers")
	durable := fs.String("durable", ingest.DefaultDurable, "name of the ingest consumer")
	warnFull := fs.Float64("warn-full", defaultWarnFull, "warn when a stream is this full (0 to 1)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	if *wait <= 0 {
		return usageErrorf("--wait must be positive")
	}
	if *one != "" {
		if err := streams.ValidSerial(*one); err != nil {
			return usageErrorf("--controller: %v", err)
		}
		if *ctrls {
			return usageErrorf("--controller and --controllers exclude each other")
		}
	}
	if err := loadEnv("", &natsCfg); err != nil {
		return err
	}
	log := newLogger("warn", false)
	nc, err := natsconn.Connect(natsCfg, "scpgate-status", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	if *one != "" {
		js, err := jetstreamOf(nc)
		if err != nil {
			return err
		}
		cs, err := controllerStatus(ctx, js, *one)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(cs)
		}
		return printControllerStatus(os.Stdout, cs, time.Now())
	}
	st, err := collectStatus(ctx, nc, statusOptions{wait: *wait, controllers: *ctrls, durable: *durable, warnFull: *warnFull})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	return printStatus(os.Stdout, st, *ctrls)
}

// collectStatus gathers the drivers, streams and ingest lag. What cannot
// be read is listed in Status.Errors; it fails only when nothing at all
// could be asked.
func collectStatus(ctx context.Context, nc *nats.Conn, o statusOptions) (Status, error) {
	st := Status{Time: time.Now().UTC(), Drivers: []DriverStatus{}, Streams: []StreamStatus{}, Ingest: []IngestLag{}}
	drivers, err := discoverDrivers(ctx, nc, o.wait)
	if err != nil {
		return st, err
	}
	for i := range drivers {
		st.Sessions += drivers[i].Sessions
		if o.controllers && drivers[i].sessionsSubject != "" {
			list, err := driverSerials(ctx, nc, drivers[i].sessionsSubject, o.wait)
			if err != nil {
				st.Errors = append(st.Errors, fmt.Sprintf("driver %s sessions: %v", drivers[i].ID, err))
			}
			drivers[i].Controllers = list
		}
	}
	st.Drivers = drivers

	js, err := jetstream.New(nc)
	if err != nil {
		return st, fmt.Errorf("jetstream: %w", err)
	}
	for _, name := range []string{streams.EventsStream, streams.CommandsStream, streams.ResultsStream} {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s, err := js.Stream(ictx, name)
		cancel()
		if err != nil {
			st.Errors = append(st.Errors, fmt.Sprintf("stream %s: %v", name, err))
			continue
		}
		info := s.CachedInfo()
		st.Streams = append(st.Streams, StreamStatus{
			Name: name, Messages: info.State.Msgs, Bytes: info.State.Bytes, Subjects: info.State.NumSubjects,
			Consumers: info.State.Consumers, FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq,
			MaxBytes: max(info.Config.MaxBytes, 0), Fullness: metrics.Fullness(info.State.Bytes, info.Config.MaxBytes),
		})
	}
	for _, name := range []string{streams.EventsStream, streams.ResultsStream} {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := js.Consumer(ictx, name, o.durable)
		cancel()
		if err != nil {
			st.Errors = append(st.Errors, fmt.Sprintf("consumer %s on %s: %v", o.durable, name, err))
			continue
		}
		info := c.CachedInfo()
		st.Ingest = append(st.Ingest, IngestLag{
			Stream: name, Consumer: o.durable, NumPending: info.NumPending, NumAckPend: info.NumAckPending,
			Redelivered: info.NumRedelivered, Waiting: info.NumWaiting,
		})
	}
	st.Warnings = statusWarnings(st, o.warnFull)
	return st, nil
}

// discoverDrivers asks every scpgate-driver micro service for its info
// and stats, and returns the drivers sorted by id.
func discoverDrivers(ctx context.Context, nc *nats.Conn, wait time.Duration) ([]DriverStatus, error) {
	found, err := fleet.Drivers(ctx, nc, wait)
	if err != nil {
		return nil, err
	}
	out := make([]DriverStatus, 0, len(found))
	for _, f := range found {
		d := DriverStatus{
			ID: f.ID, Instance: f.Instance, Version: f.Version, ControllerAddr: f.ControllerAddr,
			ControllerPort: f.ControllerPort, Started: f.Started, sessionsSubject: f.SessionsSubject,
		}
		if f.HasStats {
			ds := f.Stats
			d.Sessions, d.Draining, d.Inflight = ds.Sessions, ds.Draining, ds.Inflight
			d.EventsReceived, d.EventsAcked = ds.EventsReceived, ds.EventsAcked
			for _, n := range ds.Rejects {
				d.Rejects += n
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// driverSerials asks one driver for the serials it holds.
func driverSerials(ctx context.Context, nc *nats.Conn, subject string, wait time.Duration) ([]string, error) {
	rctx, cancel := context.WithTimeout(ctx, max(wait, 2*time.Second))
	defer cancel()
	m, err := nc.RequestWithContext(rctx, subject, nil)
	if err != nil {
		return nil, err
	}
	var list []string
	if err := json.Unmarshal(m.Data, &list); err != nil {
		return nil, fmt.Errorf("decode sessions: %w", err)
	}
	return list, nil
}

// printStatus writes st as tables.
func printStatus(w io.Writer, st Status, controllers bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "DRIVER\tCONTROLLER ADDR\tPORT\tSESSIONS\tINFLIGHT\tEVENTS IN\tACKED\tREJECTS\tSTATE\n")
	for _, d := range st.Drivers {
		state := "running"
		if d.Draining {
			state = "draining"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", d.ID, d.ControllerAddr, d.ControllerPort,
			d.Sessions, d.Inflight, d.EventsReceived, d.EventsAcked, d.Rejects, state)
	}
	fmt.Fprintf(tw, "%d driver(s), %d session(s)\n\n", len(st.Drivers), st.Sessions)
	fmt.Fprintf(tw, "STREAM\tMESSAGES\tBYTES\tSUBJECTS\tCONSUMERS\tFIRST SEQ\tLAST SEQ\n")
	for _, s := range st.Streams {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%d\n", s.Name, s.Messages, humanBytes(s.Bytes), s.Subjects, s.Consumers, s.FirstSeq, s.LastSeq)
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "INGEST CONSUMER\tSTREAM\tPENDING\tACK PENDING\tREDELIVERED\tWAITING PULLS\n")
	for _, l := range st.Ingest {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\n", l.Consumer, l.Stream, l.NumPending, l.NumAckPend, l.Redelivered, l.Waiting)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if controllers {
		fmt.Fprintln(w)
		if err := printControllerLines(w, st.Drivers); err != nil {
			return err
		}
	}
	if len(st.Warnings) > 0 {
		fmt.Fprintln(w)
		for _, s := range st.Warnings {
			fmt.Fprintf(w, "warning: %s\n", s)
		}
	}
	if len(st.Errors) > 0 {
		fmt.Fprintln(w)
		for _, e := range st.Errors {
			fmt.Fprintf(w, "error: %s\n", e)
		}
		return errors.New("some of the status could not be read")
	}
	return nil
}

// humanBytes formats n with a binary unit.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
