package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Target of an empty driver's memory and how it is read.
const (
	targetEmptyDriverMB = 20 // MB (10^6 bytes) of VmRSS
	// emptyDriverStable: the RSS counts as settled once it has stayed
	// within emptyDriverDrift of itself for this long, read every
	// emptyDriverEvery, and at most emptyDriverSettleMax after /readyz.
	emptyDriverStable    = 3 * time.Second
	emptyDriverEvery     = 250 * time.Millisecond
	emptyDriverDrift     = 0.01
	emptyDriverSettleMax = 30 * time.Second
)

// emptyDriverMetric is the row of measureEmptyDriver.
const emptyDriverMetric = "empty driver RSS (driver command, settled)"

// measureEmptyDriver runs `<Options.DriverBin> driver` as deployed (its
// own HTTP server, metrics, watchers) on the bench's NATS without any
// controller, waits until it is ready and its RSS has settled, and adds
// that RSS against the target. Without a DriverBin it notes why not.
func measureEmptyDriver(ctx context.Context, e *env, r *Result) error {
	bin := e.o.DriverBin
	if bin == "" {
		r.note("no driver binary given (Options.DriverBin): the empty driver's RSS against its target is not measured")
		return nil
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", port)
	logPath := filepath.Join(e.logDir(), "driver-empty.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("empty driver: log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "driver", "--listen", "127.0.0.1:0", "--http", httpAddr)
	cmd.Env = append(os.Environ(), "NATS_URL="+e.url, "SCPGATE_LOG_LEVEL=info",
		"SCPGATE_DRIVER_ID=bench-empty-"+e.run, "SCPGATE_DUPLICATE_WINDOW="+e.scfg.DuplicateWindow.String())
	cmd.Env = append(cmd.Env, e.o.DriverEnv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("empty driver: start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	readyCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	err = poll(readyCtx, 50*time.Millisecond, func() (bool, error) {
		select {
		case err := <-exited:
			exited <- err
			return false, fmt.Errorf("exited before ready (%v), see %s", err, logPath)
		default:
		}
		res, err := client.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false, nil
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("empty driver %s: not ready: %w", bin, err)
	}
	rss, settled, err := settledRSS(ctx, cmd.Process.Pid)
	if err != nil {
		return fmt.Errorf("empty driver: %w", err)
	}
	r.atMost(emptyDriverMetric, float64(rss)/1e6, "MB", targetEmptyDriverMB)
	r.note("empty driver: `%s driver` on the bench's NATS, no controllers; its VmRSS (%.1f MiB) once /readyz answers 200 and the RSS has stayed within %.0f%% for %s, read every %s (%s after ready)",
		bin, float64(rss)/(1<<20), emptyDriverDrift*100, emptyDriverStable, emptyDriverEvery, settled.Round(100*time.Millisecond))
	if settled >= emptyDriverSettleMax {
		r.note("the empty driver's RSS had not settled after %s: the row is its last reading", emptyDriverSettleMax)
	}
	return nil
}

// settledRSS reads the VmRSS of pid every emptyDriverEvery until it has
// stayed within emptyDriverDrift for emptyDriverStable, or
// emptyDriverSettleMax has passed; it returns the last reading and how
// long it waited.
func settledRSS(ctx context.Context, pid int) (int64, time.Duration, error) {
	start := time.Now()
	var lo, hi int64
	var since time.Time
	for {
		rss, err := rssBytes(pid)
		if err != nil {
			return 0, 0, err
		}
		now := time.Now()
		if since.IsZero() || float64(max(hi, rss)-min(lo, rss)) > emptyDriverDrift*float64(rss) {
			lo, hi, since = rss, rss, now
		} else {
			lo, hi = min(lo, rss), max(hi, rss)
		}
		if now.Sub(since) >= emptyDriverStable || now.Sub(start) >= emptyDriverSettleMax {
			return rss, now.Sub(start), nil
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(emptyDriverEvery):
		}
	}
}

// freePort returns a loopback TCP port free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
