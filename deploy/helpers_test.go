package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/internal/backoff"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/streams"
)

// repoRoot is the module root, relative to this package's directory.
const repoRoot = ".."

// binDir holds the scpgate binary built for the tests; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "scpgate-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// scpgateBinary builds ./cmd/scpgate once per test run (with -race when
// the tests run with it) and returns its path.
func scpgateBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		out := filepath.Join(binDir, "scpgate")
		args := []string{"build", "-o", out}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command(goTool, append(args, "./cmd/scpgate")...)
		cmd.Dir = repoRoot
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/scpgate: %v\n%s", err, b)
			return
		}
		binPath = out
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// commandHelp is what `scpgate help <command>` documents.
type commandHelp struct {
	text  string
	flags map[string]bool   // flag names without dashes
	env   map[string]string // variable -> default ("" when none)
}

var (
	helpMu    sync.Mutex
	helpCache = map[string]*commandHelp{}
)

// helpOf runs `scpgate help name` and parses its flags and environment
// table. It returns an error when the command does not exist.
func helpOf(t testing.TB, name string) (*commandHelp, error) {
	t.Helper()
	helpMu.Lock()
	defer helpMu.Unlock()
	if h, ok := helpCache[name]; ok {
		return h, nil
	}
	bin := scpgateBinary(t)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "help", name)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("scpgate help %s: %v: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	h := parseHelp(stdout.String())
	helpCache[name] = h
	return h, nil
}

// parseHelp reads the "Flags:" lines (Go's flag.PrintDefaults format) and
// the "Environment" table (VARIABLE TYPE DEFAULT DESCRIPTION) of a
// command's help.
func parseHelp(text string) *commandHelp {
	h := &commandHelp{text: text, flags: map[string]bool{}, env: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "  ") || strings.HasPrefix(line, "    ") {
			continue
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case strings.HasPrefix(f[0], "-") && len(f) <= 2:
			h.flags[strings.TrimLeft(f[0], "-")] = true
		case strings.HasPrefix(f[0], "SCPGATE_") || strings.HasPrefix(f[0], "NATS_"):
			rest := f[1:]
			if len(rest) >= 3 && rest[1] == "or" { // "True or False"
				rest = rest[2:]
			}
			def := ""
			if len(rest) >= 2 && rest[1] != "-" {
				def = rest[1]
			}
			h.env[f[0]] = def
		}
	}
	return h
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// proc is a child process whose output goes to a log file; the file's
// tail is shown when the test fails.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // valid once done is closed
}

// startProc starts bin with args and env (added to PATH and HOME), and
// kills it on cleanup if it still runs.
func startProc(t *testing.T, name, bin string, args, env []string) *proc {
	t.Helper()
	p := &proc{name: name, log: filepath.Join(t.TempDir(), name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatalf("%s: log file: %v", name, err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("%s: start %s: %v", name, bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s log (last lines):\n%s", name, tail(p.log, 40))
		}
	})
	return p
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to timeout for the process to end and returns its error.
func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %s", p.name, timeout)
	}
}

// logContains reports whether the process's output contains s.
func (p *proc) logContains(s string) bool {
	b, _ := os.ReadFile(p.log)
	return bytes.Contains(b, []byte(s))
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// testLogger logs warnings and errors to t.Log.
func testLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel).With().Timestamp().Logger()
}

// checkFor is natstest.CheckFor with what named in its failure.
func checkFor(t testing.TB, what string, timeout, interval time.Duration, fn func() error) {
	t.Helper()
	natstest.CheckFor(t, timeout, interval, func() error {
		if err := fn(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

// retryRead calls fn until it succeeds, failing the test when ctx ends
// first; each failure is logged, the waits grow from 50 ms to 1 s.
func retryRead(ctx context.Context, t testing.TB, what string, fn func() error) {
	t.Helper()
	b := backoff.Backoff{Min: 50 * time.Millisecond, Max: time.Second}
	for {
		err := fn()
		if err == nil {
			return
		}
		wait := b.Next()
		t.Logf("%s: %v (retrying in %s)", what, err, wait)
		if backoff.Sleep(ctx, wait) != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
}

// checkExactlyOnce reads SCP_EVENTS and checks that it holds every
// transaction the fleet generated exactly once: as many messages (presence
// events aside) as distinct event ids, as many distinct ids as generated,
// the count right per controller, and each message's Nats-Msg-Id equal to
// its event id.
func checkExactlyOnce(t testing.TB, js jetstream.JetStream, fleet *sim.Fleet) {
	t.Helper()
	// Right after a leader election the stream and its consumers may
	// answer "no responders" or time out for a moment: every read is
	// retried until the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var st jetstream.Stream
	var info *jetstream.StreamInfo
	retryRead(ctx, t, "events stream info", func() (err error) {
		if st, err = js.Stream(ctx, streams.EventsStream); err != nil {
			return err
		}
		info, err = st.Info(ctx)
		return err
	})
	total := info.State.Msgs
	var cons jetstream.Consumer
	retryRead(ctx, t, "ordered consumer", func() (err error) {
		cons, err = st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
		return err
	})
	ids := map[string]int{}
	perSerial := map[string]uint64{}
	seen := map[uint64]bool{} // stream sequences read, in case a retried fetch delivers one again
	var read, messages uint64
	for read < total {
		n := 0
		retryRead(ctx, t, "fetch events", func() error {
			batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
			if err != nil {
				return err
			}
			for m := range batch.Messages() {
				md, err := m.Metadata()
				if err != nil {
					t.Fatalf("message metadata: %v", err)
				}
				if seen[md.Sequence.Stream] {
					continue
				}
				seen[md.Sequence.Stream] = true
				n++
				read++
				var ev scpgate.Event
				if err := json.Unmarshal(m.Data(), &ev); err != nil {
					t.Fatalf("event %q does not decode: %v", m.Data(), err)
				}
				if ev.Kind == scpgate.KindPresence {
					continue
				}
				messages++
				if id := m.Headers().Get(jetstream.MsgIDHeader); id != ev.ID {
					t.Errorf("event %s stored with Nats-Msg-Id %q", ev.ID, id)
				}
				ids[ev.ID]++
				perSerial[ev.Controller]++
			}
			if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
				return err
			}
			if n == 0 {
				return fmt.Errorf("read %d of %d messages, then nothing", read, total)
			}
			return nil
		})
	}
	dups := 0
	for id, n := range ids {
		if n > 1 {
			dups++
			if dups <= 10 {
				t.Errorf("event %s stored %d times", id, n)
			}
		}
	}
	var generated uint64
	for _, c := range fleet.Controllers() {
		s := c.Stats()
		generated += s.Generated
		if s.Acked != s.Generated {
			t.Errorf("%s: generated %d, acked %d", c.Serial(), s.Generated, s.Acked)
		}
		if got := perSerial[c.Serial()]; got != s.Generated {
			t.Errorf("%s: %d events stored, %d generated", c.Serial(), got, s.Generated)
		}
	}
	if messages != uint64(len(ids)) || uint64(len(ids)) != generated {
		t.Errorf("stored %d event messages with %d distinct ids, %d generated (%d ids stored more than once)", messages, len(ids), generated, dups)
	}
	if generated == 0 {
		t.Error("the fleet generated no events")
	}
	t.Logf("SCP_EVENTS: %d messages, %d events (distinct ids) == %d generated", total, len(ids), generated)
}
