package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate/internal/fleet"
	"github.com/scpgate/scpgate/streams"
)

// Fleet is the body of GET /console/api/fleet.
type Fleet struct {
	Time    time.Time `json:"time"`
	Drivers []Driver  `json:"drivers"`
	// Online and Offline count every controller known: online while a
	// driver holds its session, offline when ingest has its state but no
	// driver holds it.
	Online      int          `json:"online"`
	Offline     int          `json:"offline"`
	Controllers []Controller `json:"controllers"` // the page asked for, by serial
	// Matched counts the controllers that match the query; Controllers
	// holds at most the limit of them.
	Matched int         `json:"matched"`
	Streams []Stream    `json:"streams"`
	Ingest  []IngestLag `json:"ingest"`
	Errors  []string    `json:"errors,omitempty"` // what could not be read; the rest is still there
}

// Driver is one running driver, from its micro service info and stats.
type Driver struct {
	ID             string  `json:"id"`
	Instance       string  `json:"instance"`
	ControllerAddr string  `json:"controller_addr"`
	Sessions       int     `json:"sessions"`
	Inflight       int     `json:"inflight"`
	Draining       bool    `json:"draining"`
	EventsReceived uint64  `json:"events_received"`
	EventsPerSec   float64 `json:"events_per_s"` // since the previous snapshot; 0 on the first
}

// Controller is one controller of the fleet view: the legacy `ps` title
// line (serial, driver, remote address, since when). Its serial is named
// "controller" in JSON, as in every new document.
type Controller struct {
	Serial   string    `json:"controller"`
	Online   bool      `json:"online"`
	Driver   string    `json:"driver,omitempty"`
	Remote   string    `json:"remote,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	Model    string    `json:"model,omitempty"`
	LastSeen time.Time `json:"last_seen,omitzero"` // from ingest's state
	Reason   string    `json:"reason,omitempty"`   // why its last session ended, when offline
}

// Stream is the size of one stream.
type Stream struct {
	Name      string `json:"name"`
	Messages  uint64 `json:"messages"`
	Bytes     uint64 `json:"bytes"`
	Consumers int    `json:"consumers"`
}

// IngestLag is how far the shared ingest consumer of one stream is behind.
type IngestLag struct {
	Stream        string  `json:"stream"`
	Consumer      string  `json:"consumer"`
	Pending       uint64  `json:"pending"`
	SecondsBehind float64 `json:"seconds_behind"`
}

// filter selects the controllers of a view.
type filter struct {
	Query  string // substring of the serial, any case
	Status string // all (""), online, offline
	Limit  int
}

// snapshot is one gathering of the fleet, shared by the views of the
// next CacheFor.
type snapshot struct {
	fleet Fleet
	all   []Controller // every controller, by serial
	at    time.Time
}

// view returns the fleet with the controllers f selects.
func (s *snapshot) view(f filter) Fleet {
	out := s.fleet
	out.Controllers = []Controller{}
	q := strings.ToLower(f.Query)
	for _, c := range s.all {
		if (f.Status == "online" && !c.Online) || (f.Status == "offline" && c.Online) {
			continue
		}
		if q != "" && !strings.Contains(strings.ToLower(c.Serial), q) {
			continue
		}
		out.Matched++
		if len(out.Controllers) < f.Limit {
			out.Controllers = append(out.Controllers, c)
		}
	}
	return out
}

// fleetCache gathers snapshots, one at a time, and remembers the drivers'
// event counts to turn them into rates.
type fleetCache struct {
	opts Options

	mu   sync.Mutex // held while gathering; guards last and prev
	last *snapshot
	prev map[string]sample // by driver instance
}

// sample is a driver's event count at a time.
type sample struct {
	events uint64
	at     time.Time
}

func newFleetCache(opts Options) *fleetCache {
	return &fleetCache{opts: opts, prev: map[string]sample{}}
}

// get returns the last snapshot if it is fresh, else gathers one.
func (fc *fleetCache) get(ctx context.Context) (*snapshot, error) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.last != nil && time.Since(fc.last.at) < fc.opts.CacheFor {
		return fc.last, nil
	}
	if !fc.opts.NC.IsConnected() {
		return nil, errors.New("NATS not connected")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := fc.gather(ctx)
	if err != nil {
		return nil, err
	}
	fc.last = s
	return s, nil
}

// gather reads drivers, controllers, streams and lag. What fails is
// listed in Fleet.Errors.
func (fc *fleetCache) gather(ctx context.Context) (*snapshot, error) {
	now := time.Now()
	s := &snapshot{at: now, fleet: Fleet{Time: now.UTC(), Drivers: []Driver{}, Streams: []Stream{}, Ingest: []IngestLag{}}}
	f := &s.fleet
	fail := func(format string, args ...any) { f.Errors = append(f.Errors, fmt.Sprintf(format, args...)) }

	drivers, err := fc.drivers(ctx)
	if err != nil {
		fail("drivers: %v", err)
	}
	seen := map[string]sample{}
	for i := range drivers {
		d := &drivers[i]
		if p, ok := fc.prev[d.Instance]; ok && d.EventsReceived >= p.events {
			if dt := now.Sub(p.at).Seconds(); dt > 0 {
				d.EventsPerSec = float64(d.EventsReceived-p.events) / dt
			}
		}
		seen[d.Instance] = sample{events: d.EventsReceived, at: now}
	}
	fc.prev = seen
	f.Drivers = drivers

	js, err := jetstream.New(fc.opts.NC)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	all, errs := controllers(ctx, js)
	for _, e := range errs {
		fail("%v", e)
	}
	s.all = all
	for _, c := range all {
		if c.Online {
			f.Online++
		} else {
			f.Offline++
		}
	}
	for _, name := range []string{streams.EventsStream, streams.CommandsStream, streams.ResultsStream} {
		st, err := js.Stream(ctx, name)
		if err != nil {
			fail("stream %s: %v", name, err)
			continue
		}
		info := st.CachedInfo()
		f.Streams = append(f.Streams, Stream{Name: name, Messages: info.State.Msgs, Bytes: info.State.Bytes, Consumers: info.State.Consumers})
	}
	for _, p := range [][2]string{{streams.EventsStream, streams.EventsAll}, {streams.ResultsStream, streams.ResultsAll}} {
		l, err := lagOf(ctx, js, p[0], p[1], fc.opts.Durable, now)
		if err != nil {
			fail("ingest consumer %s on %s: %v", fc.opts.Durable, p[0], err)
			continue
		}
		f.Ingest = append(f.Ingest, l)
	}
	return s, nil
}

// drivers asks every scpgate-driver micro service for its info and stats.
func (fc *fleetCache) drivers(ctx context.Context) ([]Driver, error) {
	found, err := fleet.Drivers(ctx, fc.opts.NC, fc.opts.Wait)
	if err != nil {
		return nil, err
	}
	out := make([]Driver, 0, len(found))
	for _, f := range found {
		d := Driver{ID: f.ID, Instance: f.Instance, ControllerAddr: f.ControllerAddr}
		if f.HasStats {
			ds := f.Stats
			d.Sessions, d.Inflight, d.Draining, d.EventsReceived = ds.Sessions, ds.Inflight, ds.Draining, ds.EventsReceived
		}
		out = append(out, d)
	}
	return out, nil
}

// controllers merges the sessions bucket (who is online, on which driver)
// with the controller keys of the state bucket (every controller ingest
// has seen), sorted by serial.
func controllers(ctx context.Context, js jetstream.JetStream) ([]Controller, []error) {
	var errs []error
	bySerial := map[string]*Controller{}
	if kv, err := js.KeyValue(ctx, streams.SessionsBucket); err != nil {
		errs = append(errs, fmt.Errorf("bucket %s: %w", streams.SessionsBucket, err))
	} else if err := watchAll(ctx, kv, ">", func(key string, v []byte) {
		var c Controller
		_ = json.Unmarshal(v, &c) // a record that does not decode still says online
		c.Serial, c.Online = key, true
		bySerial[key] = &c
	}); err != nil {
		errs = append(errs, err)
	}
	if kv, err := js.KeyValue(ctx, streams.StateBucket); err != nil {
		errs = append(errs, fmt.Errorf("bucket %s: %w", streams.StateBucket, err))
	} else if err := watchAll(ctx, kv, "*", func(key string, v []byte) {
		// "*" matches the controller keys (<serial>) only, not the
		// points (<serial>.door.<n>).
		var st struct {
			LastSeen time.Time `json:"last_seen"`
			Model    string    `json:"model"`
			Reason   string    `json:"reason"`
			Remote   string    `json:"remote"`
		}
		_ = json.Unmarshal(v, &st)
		c := bySerial[key]
		if c == nil {
			c = &Controller{Serial: key, Model: st.Model, Remote: st.Remote, Reason: st.Reason}
			bySerial[key] = c
		}
		c.LastSeen = st.LastSeen
	}); err != nil {
		errs = append(errs, err)
	}
	out := make([]Controller, 0, len(bySerial))
	for _, c := range bySerial {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Serial < out[j].Serial })
	return out, errs
}

// watchAll calls f for every live key of kv matching keys, with one
// watcher (one ordered consumer) rather than a lookup per key.
func watchAll(ctx context.Context, kv jetstream.KeyValue, keys string, f func(key string, v []byte)) error {
	w, err := kv.Watch(ctx, keys, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("watch %s: %w", kv.Bucket(), err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("watch %s: closed", kv.Bucket())
			}
			if e == nil {
				return nil // caught up
			}
			f(e.Key(), e.Value())
		case <-ctx.Done():
			return fmt.Errorf("watch %s: %w", kv.Bucket(), ctx.Err())
		}
	}
}

// lagOf measures the durable consumer on stream: messages pending and the
// age of the oldest one not yet acknowledged.
func lagOf(ctx context.Context, js jetstream.JetStream, stream, filter, durable string, now time.Time) (IngestLag, error) {
	l := IngestLag{Stream: stream, Consumer: durable}
	cons, err := js.Consumer(ctx, stream, durable)
	if err != nil {
		return l, err
	}
	info := cons.CachedInfo()
	l.Pending = info.NumPending + uint64(info.NumAckPending)
	if l.Pending == 0 {
		return l, nil
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return l, err
	}
	m, err := st.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(filter))
	if err != nil {
		return l, fmt.Errorf("oldest pending message: %w", err)
	}
	l.SecondsBehind = max(0, now.Sub(m.Time).Seconds())
	return l, nil
}
