package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/gctune"
	"github.com/scpgate/scpgate/scpbridge"
)

// driverReady is the ready line of a driver child.
type driverReady struct {
	PID    int    `json:"pid"`
	Listen string `json:"listen"`
	HTTP   string `json:"http,omitempty"` // /stats and, with --pprof, /debug/pprof/
}

// driverStats is a driver child's answer to "stats" and "gc".
type driverStats struct {
	Driver     driver.Stats        `json:"driver"`
	Commands   driver.CommandStats `json:"commands"`
	RSS        int64               `json:"rss"`
	HeapInuse  uint64              `json:"heap_inuse"`
	StackInuse uint64              `json:"stack_inuse"`
	Sys        uint64              `json:"sys"`
	Goroutines int                 `json:"goroutines"`
	NumGC      uint32              `json:"num_gc"`
}

// driverArgs are the flags of a driver child.
type driverArgs struct {
	nats, listen, id   string
	logFile            string // the driver's own log, at info level like a production driver
	reusePort, pprof   bool
	heartbeat, offline time.Duration
	dupWindow          time.Duration
}

func (a driverArgs) args(logLevel string) []string {
	out := []string{roleDriver, "--log-level", logLevel, "--nats", a.nats, "--listen", a.listen, "--id", a.id,
		"--heartbeat", a.heartbeat.String(), "--offline", a.offline.String(), "--dup-window", a.dupWindow.String()}
	if a.reusePort {
		out = append(out, "--reuseport")
	}
	if a.pprof {
		out = append(out, "--pprof")
	}
	if a.logFile != "" {
		out = append(out, "--driver-log", a.logFile)
	}
	return out
}

// driverChild runs a driver: the bench measures this process's memory and
// CPU. It answers "stats" and "gc" (collect garbage and return memory to
// the system first, for analysis).
func driverChild(fs *flag.FlagSet) func(context.Context, *childServer) error {
	var a driverArgs
	fs.StringVar(&a.nats, "nats", nats.DefaultURL, "NATS URL")
	fs.StringVar(&a.listen, "listen", "127.0.0.1:0", "controller listen address")
	fs.StringVar(&a.id, "id", "bench-driver", "driver id")
	fs.BoolVar(&a.reusePort, "reuseport", false, "listen with SO_REUSEPORT")
	fs.BoolVar(&a.pprof, "pprof", false, "serve net/http/pprof")
	fs.DurationVar(&a.heartbeat, "heartbeat", scpbridge.DefaultHeartbeat, "heartbeat interval")
	fs.DurationVar(&a.offline, "offline", scpbridge.DefaultOfflineTime, "offline time")
	fs.DurationVar(&a.dupWindow, "dup-window", 0, "duplicate window of the streams (0: default)")
	fs.StringVar(&a.logFile, "driver-log", "", "write the driver's log here at info level (default: the child's log)")
	return func(ctx context.Context, srv *childServer) error {
		gctune.Apply(gctune.DriverPercent) // as `scpgate driver` runs; --driver-env GOGC=... overrides
		nc, err := nats.Connect(a.nats, nats.Name("scpgate-bench-"+a.id), nats.MaxReconnects(-1))
		if err != nil {
			return fmt.Errorf("connect to %s: %w", a.nats, err)
		}
		defer nc.Close()
		dlog := srv.log
		if a.logFile != "" {
			f, err := os.OpenFile(a.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return fmt.Errorf("driver log: %w", err)
			}
			defer f.Close()
			dlog = zerolog.New(f).With().Timestamp().Logger().Level(zerolog.InfoLevel)
		}
		var ln net.Listener
		if a.reusePort {
			if ln, err = listenReusePort(a.listen); err != nil {
				return fmt.Errorf("listen on %s: %w", a.listen, err)
			}
		}
		unknownRate, err := unknownSerialRate()
		if err != nil {
			return err
		}
		d, err := driver.New(driver.Options{
			ID: a.id, Listen: a.listen, Listener: ln, NATS: nc, Log: dlog,
			Streams:           streamsConfig(a.dupWindow),
			Timing:            scpbridge.Timing{Heartbeat: a.heartbeat, OfflineTime: a.offline},
			UnknownSerialRate: unknownRate,
		})
		if err != nil {
			return err
		}
		if err := d.Start(ctx); err != nil {
			return err
		}
		defer d.Close()
		ready := driverReady{PID: os.Getpid(), Listen: d.Addr().String()}
		if a.pprof {
			addr, stop, err := serveDebug(d)
			if err != nil {
				return err
			}
			defer stop()
			ready.HTTP = addr
			srv.log.Warn().Str("pprof", "http://"+addr+"/debug/pprof/").Msg("driver profiling enabled")
		}
		return srv.serve(ctx, ready, func(_ context.Context, r childReq) (any, error) {
			switch r.Op {
			case "stats":
				return readDriverStats(d), nil
			case "gc":
				runtime.GC()
				debug.FreeOSMemory()
				return readDriverStats(d), nil
			}
			return nil, fmt.Errorf("unknown op %q", r.Op)
		})
	}
}

// KnownFleetNote says how the bench's drivers treat the serials of its
// fleets, which are new to every run: as a fleet they know.
const KnownFleetNote = "drivers treat every serial as known (SCPGATE_UNKNOWN_SERIAL_RATE=-1), as for a fleet past its first day; --driver-env SCPGATE_UNKNOWN_SERIAL_RATE=50 measures a first day, with presence of new serials paced"

// unknownSerialRate is SCPGATE_UNKNOWN_SERIAL_RATE of the child's
// environment (--driver-env), as `scpgate driver` reads it. Unset, it is
// -1: every serial of a bench fleet is new to the run, where a production
// fleet is known to its drivers after its first day (KnownFleetNote).
func unknownSerialRate() (float64, error) {
	v := os.Getenv("SCPGATE_UNKNOWN_SERIAL_RATE")
	if v == "" {
		return -1, nil
	}
	r, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("SCPGATE_UNKNOWN_SERIAL_RATE=%q: not a number", v)
	}
	return r, nil
}

func readDriverStats(d *driver.Driver) driverStats {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	rss, _ := rssBytes(os.Getpid())
	return driverStats{
		Driver: d.Stats(), Commands: d.CommandStats(), RSS: rss,
		HeapInuse: m.HeapInuse, StackInuse: m.StackInuse, Sys: m.Sys,
		Goroutines: runtime.NumGoroutine(), NumGC: m.NumGC,
	}
}

// serveDebug serves the driver's handler and net/http/pprof on a free
// loopback port.
func serveDebug(d *driver.Driver) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("debug listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", d.Handler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "bench driver debug server:", err)
		}
	}()
	return ln.Addr().String(), func() { _ = hs.Close() }, nil
}
