package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"

	"github.com/rs/zerolog"
)

// Child roles (the first argument of RunChild).
const (
	roleDriver = "driver" // a driver on the bench's NATS
	roleSim    = "sim"    // a slice of the simulated fleet
	roleRaw    = "raw"    // a raw JetStream publisher, the baseline
)

// ErrUnknownRole is returned by RunChild for a role it does not know.
var ErrUnknownRole = errors.New("unknown bench child role")

// RunChild runs one child process of a scenario. args are the role and its
// flags, as the parent passes them to Options.Spawn; requests arrive on in
// and answers leave on out (see child.go); logs go to logOut. It returns
// when in closes or ctx ends, after cleaning up.
func RunChild(ctx context.Context, args []string, in io.Reader, out, logOut io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: none given", ErrUnknownRole)
	}
	role, args := args[0], args[1:]
	fs := flag.NewFlagSet("bench child "+role, flag.ContinueOnError)
	fs.SetOutput(logOut)
	level := fs.String("log-level", "warn", "log level")
	var run func(ctx context.Context, srv *childServer) error
	switch role {
	case roleDriver:
		run = driverChild(fs)
	case roleSim:
		run = simChild(fs)
	case roleRaw:
		run = rawChild(fs)
	default:
		return fmt.Errorf("%w %q", ErrUnknownRole, role)
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("bench child %s: %w", role, err)
	}
	lvl, err := zerolog.ParseLevel(*level)
	if err != nil || lvl == zerolog.NoLevel {
		lvl = zerolog.WarnLevel
	}
	log := zerolog.New(logOut).With().Timestamp().Str("bench_child", role).Logger().Level(lvl)
	srv := &childServer{in: in, enc: json.NewEncoder(out), log: log}
	err = run(ctx, srv)
	if err != nil && !srv.readySent {
		srv.reply(nil, err) // the parent waits for a ready line: tell it why not
	}
	return err
}

// childServer is the child's side of the protocol.
type childServer struct {
	in        io.Reader
	log       zerolog.Logger
	mu        sync.Mutex
	enc       *json.Encoder
	readySent bool
}

// reply writes one answer line.
func (s *childServer) reply(data any, err error) {
	var rep childReply
	if err != nil {
		rep.Error = err.Error()
	} else if data != nil {
		b, merr := json.Marshal(data)
		if merr != nil {
			rep.Error = "encode answer: " + merr.Error()
		} else {
			rep.Data = b
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.enc.Encode(rep)
}

// serve announces ready, then answers requests with handle, one at a
// time, until in closes or ctx ends.
func (s *childServer) serve(ctx context.Context, ready any, handle func(context.Context, childReq) (any, error)) error {
	s.readySent = true
	s.reply(ready, nil)
	reqs := make(chan childReq)
	bad := make(chan error, 1)
	go func() {
		defer close(reqs)
		sc := bufio.NewScanner(s.in)
		sc.Buffer(make([]byte, 4096), 1<<20)
		for sc.Scan() {
			var r childReq
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				bad <- fmt.Errorf("bad request %q: %w", sc.Text(), err)
				return
			}
			select {
			case reqs <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-bad:
			return err
		case r, ok := <-reqs:
			if !ok {
				return nil // the parent closed our stdin: stop
			}
			data, err := handle(ctx, r)
			s.reply(data, err)
		}
	}
}
