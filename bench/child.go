package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// A scenario runs the driver and the simulated fleet in child processes
// (see RunChild): the driver holds one file descriptor per session, so it
// cannot share the 20,000 descriptors of one process with its
// controllers, and its memory and CPU are only measurable on its own.
//
// Protocol: the parent writes one JSON request per line on the child's
// stdin; the child answers each with one JSON line on stdout. The child's
// first line says it is ready. When its stdin closes (the parent ended or
// stopped it) the child shuts down cleanly and exits.

// childReq is one request to a child.
type childReq struct {
	Op      string        `json:"op"`
	N       int           `json:"n,omitempty"`
	Rate    float64       `json:"rate,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"`
	Raw     *rawSpec      `json:"raw,omitempty"`
}

// childReply is a child's answer: Data on success, Error otherwise.
type childReply struct {
	Error string          `json:"error,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// ErrChildExited is returned by calls to a child process that has ended.
var ErrChildExited = errors.New("bench child process exited")

// child is a running child process seen from the parent.
type child struct {
	name   string
	driver bool // a driver: stopped after the others
	cmd    *exec.Cmd
	pid    int
	in     io.WriteCloser
	lines  chan []byte   // stdout lines; closed at EOF
	done   chan struct{} // closed once the process was waited for

	mu sync.Mutex // one call at a time
}

// spawn starts a child process with args (role first) and waits for its
// ready line, which it decodes into ready.
func (e *env) spawn(ctx context.Context, name string, ready any, args ...string) (*child, error) {
	return e.spawnEnv(ctx, name, nil, ready, args...)
}

// spawnEnv is spawn with env added to the child's environment.
func (e *env) spawnEnv(ctx context.Context, name string, env []string, ready any, args ...string) (*child, error) {
	cmd := e.o.Spawn(args)
	cmd.Stderr = e.o.Stderr
	if len(env) > 0 {
		cmd.Env = append(cmd.Environ(), env...)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: stdin: %w", name, err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: stdout: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, pid: cmd.Process.Pid, in: in, lines: make(chan []byte, 16), done: make(chan struct{})}
	e.mu.Lock()
	e.children = append(e.children, c)
	e.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			c.lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(c.lines)
		_ = cmd.Wait()
		close(c.done)
	}()
	var rep childReply
	if err := c.read(ctx, 60*time.Second, &rep); err != nil {
		c.kill()
		return nil, fmt.Errorf("%s: wait for ready: %w", name, err)
	}
	if rep.Error != "" {
		c.kill()
		return nil, fmt.Errorf("%s: %s", name, rep.Error)
	}
	if ready != nil {
		if err := json.Unmarshal(rep.Data, ready); err != nil {
			c.kill()
			return nil, fmt.Errorf("%s: decode ready line: %w", name, err)
		}
	}
	return c, nil
}

// read waits for the next line and decodes it into rep.
func (c *child) read(ctx context.Context, timeout time.Duration, rep *childReply) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line, ok := <-c.lines:
		if !ok {
			return fmt.Errorf("%s: %w", c.name, ErrChildExited)
		}
		if err := json.Unmarshal(line, rep); err != nil {
			return fmt.Errorf("%s: bad line %q: %w", c.name, line, err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("%s: no answer within %s", c.name, timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call sends req and decodes the answer's data into out (nil: ignore it).
func (c *child) call(ctx context.Context, timeout time.Duration, req childReq, out any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, _ := json.Marshal(req)
	if _, err := c.in.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("%s: send %s: %w", c.name, req.Op, ErrChildExited)
	}
	var rep childReply
	if err := c.read(ctx, timeout, &rep); err != nil {
		return fmt.Errorf("%s %s: %w", c.name, req.Op, err)
	}
	if rep.Error != "" {
		return fmt.Errorf("%s %s: %s", c.name, req.Op, rep.Error)
	}
	if out != nil && len(rep.Data) > 0 {
		if err := json.Unmarshal(rep.Data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", c.name, req.Op, err)
		}
	}
	return nil
}

// stop closes the child's stdin, which makes it shut down, and kills it
// if it has not exited after grace.
func (c *child) stop(grace time.Duration) {
	_ = c.in.Close()
	select {
	case <-c.done:
	case <-time.After(grace):
		c.kill()
	}
}

// kill ends the child at once (SIGKILL) and waits for it.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.in.Close()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
	}
}

// exited reports whether the child has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}
