//go:build !driveronly

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/sim"
)

// This file splits a large `scpgate sim` fleet over child processes: the
// parent re-executes itself with the hidden flags --child-index and
// --child-of, each child simulates its slice of the serials and writes
// JSON lines (progress, then its final report) on stdout, and the parent
// sums them.

// childFlags removes the hidden child flags from args (they do not appear
// in the usage) and returns their values.
func childFlags(args []string) (rest []string, index, of int, err error) {
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(args[i], "=")
		if name != flagChildIndex && name != flagChildOf {
			rest = append(rest, args[i])
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, 0, 0, usageErrorf("%s needs a value", name)
			}
			i++
			val = args[i]
		}
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			return nil, 0, 0, usageErrorf("%s: bad value %q", name, val)
		}
		if name == flagChildIndex {
			index = n
		} else {
			of = n
		}
	}
	if of > 0 && index >= of {
		return nil, 0, 0, usageErrorf("%s must be below %s", flagChildIndex, flagChildOf)
	}
	return rest, index, of, nil
}

// slice returns the first index and count of child i of k over n.
func slice(n, k, i int) (first, count int) {
	base, extra := n/k, n%k
	return i*base + min(i, extra), base + btoi(i < extra)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// loopbackSource returns the source address child i dials from when the
// target is on IPv4 loopback (127.0.0.2, 127.0.0.3, ...), else "".
func loopbackSource(target string, i int) string {
	if !sim.OnIPv4Loopback(target) || i > 250 {
		return ""
	}
	return fmt.Sprintf("127.0.0.%d", 2+i)
}

// childLine is what a child writes on stdout: progress once a second, then
// its final report.
type childLine struct {
	Child  int        `json:"child"`
	Final  bool       `json:"final"`
	Report sim.Report `json:"report"`
	Error  string     `json:"error,omitempty"`
}

// runSimChild runs one slice of a split fleet and reports to the parent
// on stdout.
func runSimChild(ctx context.Context, o simOptions, log zerolog.Logger) error {
	enc := json.NewEncoder(os.Stdout)
	var mu sync.Mutex
	st := func(_ time.Duration, r sim.Report, final bool) {
		if final {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(childLine{Child: o.childIndex, Report: r})
	}
	rep, err := runSimFleet(ctx, o, log, st)
	line := childLine{Child: o.childIndex, Final: true, Report: rep}
	if err != nil {
		line.Error = err.Error()
	}
	mu.Lock()
	defer mu.Unlock()
	if eerr := enc.Encode(line); eerr != nil && err == nil {
		return fmt.Errorf("write report: %w", eerr)
	}
	return err
}

// runSimParent splits the fleet over procs children, shows their summed
// progress and returns the sum of their final reports.
func runSimParent(ctx context.Context, o simOptions, procs int, args []string, log zerolog.Logger) (sim.Report, error) {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	childArgs := append([]string{"sim"}, withoutFlag(args, "report")...)
	if o.seed != 0 {
		childArgs = append(childArgs, "--seed", strconv.FormatInt(o.seed, 10))
	}
	log.Info().Int("controllers", o.controllers).Int("procs", procs).Msg("splitting the fleet over child processes")
	var (
		mu      sync.Mutex
		latest  = make([]sim.Report, procs)
		final   = make([]bool, procs)
		errs    = make([]error, procs)
		wg      sync.WaitGroup
		started = time.Now()
	)
	st := newStatus(log, o.controllers)
	for i := 0; i < procs; i++ {
		cmd := exec.CommandContext(ctx, exe, append(childArgs, flagChildIndex, strconv.Itoa(i), flagChildOf, strconv.Itoa(procs))...)
		cmd.Stderr = os.Stderr
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = o.drainTimeout + 30*time.Second
		out, err := cmd.StdoutPipe()
		if err != nil {
			return sim.Report{}, fmt.Errorf("child %d: stdout: %w", i, err)
		}
		if err := cmd.Start(); err != nil {
			return sim.Report{}, fmt.Errorf("start child %d: %w", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				var l childLine
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
					log.Warn().Int("child", i).Str("line", sc.Text()).Msg("child wrote a line that is not a report")
					continue
				}
				mu.Lock()
				latest[i] = l.Report
				if l.Final {
					final[i] = true
					if l.Error != "" {
						errs[i] = errors.New(l.Error)
					}
				}
				mu.Unlock()
			}
			werr := cmd.Wait()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case !final[i]:
				errs[i] = fmt.Errorf("child %d ended without a report: %v", i, werr)
			case werr != nil && errs[i] == nil:
				errs[i] = fmt.Errorf("child %d: %w", i, werr)
			}
		}()
	}
	sum := func() sim.Report {
		mu.Lock()
		defer mu.Unlock()
		var r sim.Report
		for _, l := range latest {
			r.Add(l)
		}
		return r
	}
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for running := true; running; {
		select {
		case <-waited:
			running = false
		case <-ticker.C:
			st(time.Since(started), sum(), false)
		}
	}
	rep := sum()
	st(time.Since(started), rep, true)
	var unacked bool
	for i, err := range errs {
		if err == nil {
			continue
		}
		if strings.Contains(err.Error(), sim.ErrUnacked.Error()) {
			unacked = true
			continue
		}
		return rep, fmt.Errorf("child %d of %d: %w", i, procs, err)
	}
	if unacked {
		return rep, fmt.Errorf("%d %w", rep.Unacked, sim.ErrUnacked)
	}
	return rep, nil
}

// withoutFlag returns args without flag name and its value.
func withoutFlag(args []string, name string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		if a == name {
			i++ // the value follows
			continue
		}
		if strings.HasPrefix(a, name+"=") && strings.HasPrefix(args[i], "-") {
			continue
		}
		out = append(out, args[i])
	}
	return out
}
