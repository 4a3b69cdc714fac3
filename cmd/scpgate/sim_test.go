package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
)

// ackHost is a minimal SCP/TCP host: it welcomes every controller,
// answers pings and, when ack is set, acknowledges every transaction. It
// records each hello's serial and source address.
type ackHost struct {
	ln    net.Listener
	ack   bool
	mu    sync.Mutex
	hello map[string]string // serial -> source IP
}

func newAckHost(t *testing.T, ack bool) *ackHost {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	h := &ackHost{ln: ln, ack: ack, hello: map[string]string{}}
	var wg sync.WaitGroup
	var conns sync.Map
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conns.Delete(c)
				defer c.Close()
				h.serve(c)
			}()
		}
	}()
	return h
}

func (h *ackHost) serve(c net.Conn) {
	s := sb.NewHostSession(sb.Timing{}, time.Now())
	r := sb.NewReader(c, 0)
	send := func(m sb.Message) bool {
		b, err := sb.AppendFrame(nil, m)
		if err != nil {
			return false
		}
		_, err = c.Write(b)
		return err == nil
	}
	for {
		hd, p, err := r.Next()
		if err != nil {
			return
		}
		t, err := s.Receive(time.Now(), hd, p)
		if err != nil {
			return
		}
		ok := true
		switch t {
		case sb.FrameHello:
			ip, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			h.mu.Lock()
			h.hello[s.Hello.Serial] = ip
			h.mu.Unlock()
			ok = send(s.Welcome(1, time.Now()))
		case sb.FramePing:
			ok = send(&sb.Pong{Nonce: s.Ping.Nonce})
		case sb.FrameTransaction:
			if h.ack {
				ok = send(&sb.TranAck{BootEpoch: s.Hello.BootEpoch, LastSeq: s.Tx.Seq})
			}
		}
		if !ok {
			return
		}
	}
}

func buildScpgate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "scpgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func runBin(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// TestSimSplitsOverChildProcesses runs `scpgate sim --procs 2` with a tiny
// fleet: two children, each with its slice of serials and its own
// loopback source address, and a parent that sums their reports.
func TestSimSplitsOverChildProcesses(t *testing.T) {
	bin := buildScpgate(t)
	h := newAckHost(t, true)
	reportFile := filepath.Join(t.TempDir(), "report.json")
	stdout, stderr, code := runBin(t, bin, "sim", "--target", h.ln.Addr().String(), "--controllers", "5", "--procs", "2",
		"--rate", "20", "--duration", "1s", "--drain-timeout", "15s", "--serial-prefix", "SPLIT", "--report", reportFile)
	if code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var rep sim.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not a report: %v\n%s", err, stdout)
	}
	if rep.Controllers != 5 || rep.Connected != 5 || rep.Generated == 0 || rep.Acked != rep.Generated || rep.Unacked != 0 {
		t.Fatalf("report %+v: want 5 controllers connected and everything acknowledged", rep)
	}
	fileData, err := os.ReadFile(reportFile)
	if err != nil || strings.TrimSpace(string(fileData)) != strings.TrimSpace(stdout) {
		t.Fatalf("report file %q (%v) differs from stdout %q", fileData, err, stdout)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var serials []string
	sources := map[string]bool{}
	for s, ip := range h.hello {
		serials = append(serials, s)
		sources[ip] = true
	}
	sort.Strings(serials)
	if got := strings.Join(serials, ","); got != "SPLIT000000,SPLIT000001,SPLIT000002,SPLIT000003,SPLIT000004" {
		t.Errorf("serials seen by the host: %s", got)
	}
	if !sources["127.0.0.2"] || !sources["127.0.0.3"] || len(sources) != 2 {
		t.Errorf("source addresses %v, want 127.0.0.2 and 127.0.0.3", sources)
	}
}

// TestSimDrainTimeoutFails checks that unacknowledged transactions after
// the drain timeout make the run fail with their count.
func TestSimDrainTimeoutFails(t *testing.T) {
	bin := buildScpgate(t)
	h := newAckHost(t, false)
	stdout, stderr, code := runBin(t, bin, "sim", "--target", h.ln.Addr().String(), "--controllers", "2",
		"--rate", "20", "--duration", "500ms", "--drain-timeout", "300ms")
	if code != 1 || !strings.Contains(stderr, "transactions unacknowledged after drain timeout") {
		t.Fatalf("exit code %d, stderr:\n%s\nwant 1 and the unacknowledged count", code, stderr)
	}
	var rep sim.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep.Unacked == 0 || rep.Acked != 0 {
		t.Fatalf("report %+v (%v), want unacknowledged transactions", rep, err)
	}
	if want := "scpgate sim: " + itoa(rep.Unacked) + " transactions unacknowledged"; !strings.Contains(stderr, want) {
		t.Errorf("stderr:\n%s\nwant %q", stderr, want)
	}
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
