package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/internal/embedded"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/streams"
)

// maxSimPerChild is the largest slice of the fleet one sim child holds:
// well below the 20,000 open files of a process, and two children use both
// cores of a small machine.
const maxSimPerChild = 10_000

// env is one scenario's world: NATS (embedded or not), its streams, and
// the child processes, all of which close tears down.
type env struct {
	o    Options
	log  zerolog.Logger
	dir  string // temporary directory, removed by close ("" if DataDir was given)
	srv  *server.Server
	url  string
	nc   *nats.Conn
	js   jetstream.JetStream
	h    *streams.Handles
	scfg streams.Config
	run  string // distinguishes this run's serials from earlier runs'
	// src is the middle of this run's loopback source addresses
	// (127.<src>.<child>): connections of earlier runs linger in TIME_WAIT
	// for a minute, and the kernel finds ports for new connects from the
	// same address ever more slowly.
	src [2]byte

	mu       sync.Mutex
	children []*child
}

// streamsConfig is the streams configuration of the bench: the defaults
// (file storage, two-hour duplicate window), with dupWindow if not 0.
func streamsConfig(dupWindow time.Duration) streams.Config {
	c := streams.DefaultConfig()
	if dupWindow > 0 {
		c.DuplicateWindow = dupWindow
	}
	return c
}

// newEnv connects to NATS (starting an embedded server unless o.NATS is
// set) and ensures the streams.
func newEnv(ctx context.Context, o Options) (*env, error) {
	e := &env{o: o, log: o.Log, url: o.NATS, scfg: streamsConfig(0), run: fmt.Sprintf("%04d", time.Now().UnixNano()/1e6%10000),
		src: [2]byte{byte(1 + rand.IntN(254)), byte(rand.IntN(256))}}
	if e.url == "" {
		dir := o.DataDir
		if dir == "" {
			d, err := os.MkdirTemp("", "scpgate-bench-")
			if err != nil {
				return nil, fmt.Errorf("bench: temporary directory: %w", err)
			}
			dir, e.dir = d, d
		}
		srv, err := embedded.Start(embedded.Options{DataDir: dir, Port: -1})
		if err != nil {
			e.removeDir()
			return nil, fmt.Errorf("bench: %w", err)
		}
		e.srv, e.url = srv, srv.ClientURL()
	}
	nc, err := nats.Connect(e.url, nats.Name("scpgate-bench"), nats.MaxReconnects(-1))
	if err != nil {
		e.close()
		return nil, fmt.Errorf("bench: connect to %s: %w", e.url, err)
	}
	e.nc = nc
	if e.js, err = jetstream.New(nc); err != nil {
		e.close()
		return nil, fmt.Errorf("bench: jetstream: %w", err)
	}
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if e.h, err = streams.Ensure(ectx, e.js, e.scfg); err != nil {
		e.close()
		return nil, fmt.Errorf("bench: ensure streams: %w", err)
	}
	return e, nil
}

// close stops the children (SIGKILL after a grace period), the connection
// and the embedded server, and removes the temporary directory.
func (e *env) close() error {
	e.mu.Lock()
	kids := e.children
	e.children = nil
	e.mu.Unlock()
	// Fleets and publishers first, drivers once their sessions ended.
	for _, drivers := range []bool{false, true} {
		var wg sync.WaitGroup
		for _, c := range kids {
			if c.driver == drivers {
				wg.Go(func() { c.stop(15 * time.Second) })
			}
		}
		wg.Wait()
	}
	if e.nc != nil {
		e.nc.Close()
	}
	if e.srv != nil {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	}
	return e.removeDir()
}

// logDir is where the drivers' logs go: the data directory or the
// temporary one.
func (e *env) logDir() string {
	if e.o.DataDir != "" {
		return e.o.DataDir
	}
	if e.dir != "" {
		return e.dir
	}
	return os.TempDir()
}

func (e *env) removeDir() error {
	if e.dir == "" {
		return nil
	}
	if err := os.RemoveAll(e.dir); err != nil {
		return fmt.Errorf("bench: remove %s: %w", e.dir, err)
	}
	return nil
}

// driverProc is a driver child.
type driverProc struct {
	*child
	ready driverReady
}

// startDriver starts a driver child listening on listen (with
// SO_REUSEPORT when reuse is set).
func (e *env) startDriver(ctx context.Context, id, listen string, reuse bool) (*driverProc, error) {
	a := driverArgs{nats: e.url, listen: listen, id: id, reusePort: reuse, pprof: e.o.Pprof,
		heartbeat: defaultHeartbeat, offline: defaultOffline, dupWindow: e.scfg.DuplicateWindow,
		logFile: filepath.Join(e.logDir(), "driver-"+id+".log")}
	d := &driverProc{}
	c, err := e.spawnEnv(ctx, "driver "+id, e.o.DriverEnv, &d.ready, a.args(e.o.ChildLogLevel)...)
	if err != nil {
		return nil, err
	}
	d.child = c
	c.driver = true
	if d.ready.HTTP != "" {
		e.log.Info().Str("driver", id).Str("pprof", "http://"+d.ready.HTTP+"/debug/pprof/").Msg("driver profiling")
	}
	return d, nil
}

// Heartbeat and offline time of the drivers the bench starts: the
// protocol's defaults.
const (
	defaultHeartbeat = 5 * time.Second
	defaultOffline   = 15 * time.Second
)

// stats asks the driver for its counters and memory.
func (d *driverProc) stats(ctx context.Context) (driverStats, error) {
	var st driverStats
	err := d.call(ctx, 10*time.Second, childReq{Op: "stats"}, &st)
	return st, err
}

// fleetSpec describes a simulated fleet split over sim children.
type fleetSpec struct {
	target      string
	prefix      string
	controllers int
	ramp        float64
	rate        float64
	logCapacity int
	latency     bool
}

// fleet is a simulated fleet over one or more sim children.
type fleet struct {
	kids []*child
}

// startFleet starts the sim children of spec (they connect on connect).
// Each child dials from its own loopback address when the target is on
// loopback, so that ephemeral ports never run out.
func (e *env) startFleet(ctx context.Context, spec fleetSpec) (*fleet, error) {
	n := (spec.controllers + maxSimPerChild - 1) / maxSimPerChild
	f := &fleet{}
	first := 0
	for i := range n {
		count := spec.controllers / n
		if i < spec.controllers%n {
			count++
		}
		a := simArgs{target: spec.target, prefix: spec.prefix, controllers: count, first: first,
			logCapacity: spec.logCapacity, ramp: spec.ramp / float64(n), rate: spec.rate, latency: spec.latency,
			localAddr: e.loopbackSource(spec.target, i)}
		if a.logCapacity == 0 {
			a.logCapacity = 50_000
		}
		c, err := e.spawn(ctx, fmt.Sprintf("sim %d/%d", i+1, n), nil, a.args(e.o.ChildLogLevel)...)
		if err != nil {
			return nil, err
		}
		f.kids = append(f.kids, c)
		first += count
	}
	return f, nil
}

// loopbackSource returns this run's loopback source address of child i
// (127.<src>.<2+i>) when target is on IPv4 loopback, else "".
func (e *env) loopbackSource(target string, i int) string {
	if !sim.OnIPv4Loopback(target) || i > 200 {
		return ""
	}
	return fmt.Sprintf("127.%d.%d.%d", e.src[0], e.src[1], 2+i)
}

// all sends req to every child at once and returns the first error.
func (f *fleet) all(ctx context.Context, timeout time.Duration, req childReq, each func(i int, rep simReport)) error {
	errs := make([]error, len(f.kids))
	reps := make([]simReport, len(f.kids))
	var wg sync.WaitGroup
	for i, c := range f.kids {
		wg.Go(func() { errs[i] = c.call(ctx, timeout, req, &reps[i]) })
	}
	wg.Wait()
	if each != nil {
		for i, rep := range reps {
			each(i, rep)
		}
	}
	return errors.Join(errs...)
}

func (f *fleet) connect(ctx context.Context) error {
	return f.all(ctx, 10*time.Second, childReq{Op: "connect"}, nil)
}

func (f *fleet) generate(ctx context.Context, n int) error {
	return f.all(ctx, time.Minute, childReq{Op: "generate", N: n}, nil)
}

func (f *fleet) setRate(ctx context.Context, rate float64) error {
	return f.all(ctx, 10*time.Second, childReq{Op: "rate", Rate: rate}, nil)
}

func (f *fleet) resetLatency(ctx context.Context) error {
	return f.all(ctx, 10*time.Second, childReq{Op: "latency-reset"}, nil)
}

// report sums the children's reports.
func (f *fleet) report(ctx context.Context) (simReport, error) {
	var sum simReport
	err := f.all(ctx, 30*time.Second, childReq{Op: "report"}, func(_ int, r simReport) { sum.add(r) })
	return sum, err
}

// waitAcked waits until every child has nothing unacknowledged.
func (f *fleet) waitAcked(ctx context.Context, timeout time.Duration) (simReport, error) {
	var sum simReport
	err := f.all(ctx, timeout+10*time.Second, childReq{Op: "wait-acked", Timeout: timeout}, func(_ int, r simReport) { sum.add(r) })
	return sum, err
}

// transactionKinds are the event kinds of controller transactions (all
// but presence).
var transactionKinds = []scpgate.Kind{scpgate.KindAccess, scpgate.KindDoor, scpgate.KindInput, scpgate.KindOutput,
	scpgate.KindTamper, scpgate.KindPower, scpgate.KindSystem}

// storedTransactions counts the transaction events (not presence) in
// SCP_EVENTS, with a short-lived consumer filtered on their subjects.
func (e *env) storedTransactions(ctx context.Context) (uint64, error) {
	filters := make([]string, len(transactionKinds))
	for i, k := range transactionKinds {
		filters[i] = "scp.evt.*." + string(k)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := e.js.CreateConsumer(ctx, streams.EventsStream, jetstream.ConsumerConfig{
		FilterSubjects: filters, AckPolicy: jetstream.AckNonePolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return 0, fmt.Errorf("count events: create consumer: %w", err)
	}
	defer func() { _ = e.js.DeleteConsumer(context.WithoutCancel(ctx), streams.EventsStream, c.CachedInfo().Name) }()
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("count events: consumer info: %w", err)
	}
	return info.NumPending, nil
}

// rawChild starts a raw publisher child.
func (e *env) rawChild(ctx context.Context) (*child, error) {
	return e.spawn(ctx, "raw publisher", nil, roleRaw, "--log-level", e.o.ChildLogLevel, "--nats", e.url)
}

// raw runs a raw publish on c.
func (e *env) raw(ctx context.Context, c *child, spec rawSpec) (rawResult, error) {
	var res rawResult
	if spec.Epoch == 0 {
		spec.Epoch = uint32(time.Now().Unix())
	}
	err := c.call(ctx, 30*time.Minute, childReq{Op: "run", Raw: &spec}, &res)
	return res, err
}

// poll calls cond every interval until it returns true or an error, or
// ctx ends.
func poll(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
