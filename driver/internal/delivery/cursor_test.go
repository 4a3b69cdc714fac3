package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/streams"
)

// fenceRig is a Delivery with one hand-made session, stepped by the test
// instead of the workers.
type fenceRig struct {
	t   *testing.T
	ctx context.Context
	js  jetstream.JetStream
	h   *Delivery
	cs  *cmdSession
	s   *fakeSession
}

// fakeSession is a Session that counts the frames sent to it.
type fakeSession struct {
	serial, id string
	log        zerolog.Logger
	done       chan struct{}
	mu         sync.Mutex
	frames     int
}

func (f *fakeSession) Serial() string          { return f.serial }
func (f *fakeSession) ID() string              { return f.id }
func (f *fakeSession) Done() <-chan struct{}   { return f.done }
func (f *fakeSession) Logger() *zerolog.Logger { return &f.log }
func (f *fakeSession) CheckDrained()           {}
func (f *fakeSession) Send(scpbridge.Message) error {
	f.mu.Lock()
	f.frames++
	f.mu.Unlock()
	return nil
}

func newFenceRig(t *testing.T, serial string) *fenceRig {
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js := natstest.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	cfg := streams.DefaultConfig()
	cfg.Storage = jetstream.MemoryStorage
	handles, err := streams.Ensure(ctx, js, cfg)
	if err != nil {
		t.Fatalf("ensure: %v", err)
	}
	log := zerolog.New(zerolog.NewTestWriter(t))
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	h := New(Config{
		NATS: nc, JS: js, Log: log, DriverID: "stale",
		Window: 4, FetchTimeout: 5 * time.Second, AnswerTimeout: 30 * time.Second, // the driver's defaults
		BusyRetry: time.Second, BusyRetryMax: 30 * time.Second,
		Draining: func() bool { return false }, HardStop: ctx, WG: &wg,
	})
	h.handles = handles
	s := &fakeSession{serial: serial, id: "00000000000000f1", log: log.With().Str("serial", serial).Logger(), done: make(chan struct{})}
	return &fenceRig{t: t, ctx: ctx, js: js, h: h, cs: &cmdSession{s: s, serial: serial}, s: s}
}

// store queues an unlock command for the rig's controller and returns its
// stream sequence.
func (r *fenceRig) store() uint64 {
	r.t.Helper()
	door := uint16(1)
	now := time.Now().UTC()
	data, _ := json.Marshal(scpgate.Command{V: 1, Controller: r.cs.serial, Type: scpgate.CmdMomentaryUnlock,
		Params: scpgate.CommandParams{Door: &door, Seconds: 1}, Created: now, Expires: now.Add(time.Hour)})
	subject, _ := streams.CommandSubject(r.cs.serial)
	ack, err := r.js.Publish(r.ctx, subject, data)
	if err != nil {
		r.t.Fatalf("store command: %v", err)
	}
	return ack.Sequence
}

// sent returns the number of frames sent to the session.
func (r *fenceRig) sent() int {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	return r.s.frames
}

// cursor returns the cursor's sequence (decimal, without the stream
// incarnation) and its revision.
func (r *fenceRig) cursor() (string, uint64) {
	r.t.Helper()
	e, err := r.h.handles.Cursors.Get(r.ctx, r.cs.serial)
	if err != nil {
		r.t.Fatalf("read cursor: %v", err)
	}
	seq, _, err := parseCursor(string(e.Value()))
	if err != nil {
		r.t.Fatalf("cursor %q: %v", e.Value(), err)
	}
	return strconv.FormatUint(seq, 10), e.Revision()
}

// TestCommandFencing: a session whose cursor revision is stale (another
// session claimed the cursor) cannot move it: its compare-and-set fails,
// the command is not deleted, and it sends nothing more. Once scp_sessions
// names it as the owner again it reloads the cursor and goes on.
func TestCommandFencing(t *testing.T) {
	r := newFenceRig(t, "FENCE1")
	seq1, seq2 := r.store(), r.store()
	r.h.step(r.ctx, r.cs, false)
	if n := r.sent(); n != 2 {
		t.Fatalf("sent %d commands, want 2", n)
	}
	val, rev := r.cursor()
	if val != "0" {
		t.Fatalf("claimed cursor %q, want 0", val)
	}

	// Another driver's session claims the cursor.
	if _, err := r.h.handles.Cursors.Update(r.ctx, "FENCE1", []byte(val), rev); err != nil {
		t.Fatalf("claim by the new owner: %v", err)
	}
	_, claimed := r.cursor()

	// The controller answers the first command on the stale session.
	r.cs.statuses = append(r.cs.statuses, scpbridge.CommandStatus{Tag: tagOf(seq1), Status: scpbridge.StatusOK})
	r.h.step(r.ctx, r.cs, false)
	if n := r.h.stats.conflicts.Load(); n != 1 {
		t.Errorf("cursor conflicts %d, want 1", n)
	}
	if val, rev := r.cursor(); val != "0" || rev != claimed {
		t.Errorf("cursor %s at revision %d, want 0 at %d (unmoved)", val, rev, claimed)
	}
	if _, err := r.h.handles.Commands.GetMsg(r.ctx, seq1); err != nil {
		t.Errorf("command %d was deleted by the fenced session: %v", seq1, err)
	}
	if !r.cs.dl.fenced {
		t.Errorf("delivery not fenced after the conflict")
	}

	// Delivery stopped: the answer to the second command frees the window
	// but nothing new is sent.
	seq3 := r.store()
	r.cs.statuses = append(r.cs.statuses, scpbridge.CommandStatus{Tag: tagOf(seq2), Status: scpbridge.StatusOK})
	r.h.step(r.ctx, r.cs, false)
	if n := r.sent(); n != 2 {
		t.Errorf("fenced session sent %d commands, want still 2", n)
	}

	// scp_sessions names this session: after the recheck delay it reloads
	// the cursor and delivers the third command.
	rec, _ := json.Marshal(map[string]string{"driver": "stale", "session": r.s.id})
	if _, err := r.h.handles.Sessions.Put(r.ctx, "FENCE1", rec); err != nil {
		t.Fatalf("write session: %v", err)
	}
	r.cs.dl.fencedAt = time.Now().Add(-fenceRecheck)
	r.h.step(r.ctx, r.cs, false)
	if r.cs.dl.fenced {
		t.Fatalf("still fenced after scp_sessions named the session")
	}
	if val, _ := r.cursor(); val != "2" {
		t.Errorf("cursor %s after resuming, want 2", val)
	}
	if n := r.sent(); n != 3 {
		t.Errorf("sent %d commands after resuming, want 3 (command %d)", n, seq3)
	}
	for _, seq := range []uint64{seq1, seq2} {
		if _, err := r.h.handles.Commands.GetMsg(r.ctx, seq); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Errorf("completed command %d still stored: %v", seq, err)
		}
	}
}

// TestCommandFencedStaysStopped: a fenced session that scp_sessions does
// not name never delivers again.
func TestCommandFencedStaysStopped(t *testing.T) {
	r := newFenceRig(t, "FENCE2")
	seq1 := r.store()
	r.h.step(r.ctx, r.cs, false)
	val, rev := r.cursor()
	if _, err := r.h.handles.Cursors.Update(r.ctx, "FENCE2", []byte(val), rev); err != nil {
		t.Fatalf("claim by the new owner: %v", err)
	}
	rec, _ := json.Marshal(map[string]string{"driver": "other", "session": "0123456789abcdef"})
	if _, err := r.h.handles.Sessions.Put(r.ctx, "FENCE2", rec); err != nil {
		t.Fatalf("write session: %v", err)
	}
	r.cs.statuses = append(r.cs.statuses, scpbridge.CommandStatus{Tag: tagOf(seq1), Status: scpbridge.StatusOK})
	r.h.step(r.ctx, r.cs, false)
	r.store()
	r.cs.dl.fencedAt = time.Now().Add(-fenceRecheck)
	r.h.step(r.ctx, r.cs, false)
	if !r.cs.dl.fenced || r.sent() != 1 {
		t.Errorf("fenced %v, sent %d; want still fenced with 1 sent", r.cs.dl.fenced, r.sent())
	}
	if val, _ := r.cursor(); val != "0" {
		t.Errorf("cursor %s, want 0", val)
	}
}

// hint hands the stored command at seq to the rig's session as the hint
// consumer would.
func (r *fenceRig) hint(seq uint64) {
	r.t.Helper()
	m, err := r.h.handles.Commands.GetMsg(r.ctx, seq)
	if err != nil {
		r.t.Fatalf("read command %d: %v", seq, err)
	}
	r.cs.mu.Lock()
	r.cs.hints = append(r.cs.hints, m)
	r.cs.mu.Unlock()
}

// TestCommandClaimWhileSending: a session that found its queue empty at
// start keeps the cursor it read then; its first command goes out before
// the claim is confirmed, and the claim is awaited before the commit.
// When another session moved the cursor in between, the claim fails and
// the session is fenced without committing.
func TestCommandClaimWhileSending(t *testing.T) {
	t.Run("uncontended", func(t *testing.T) {
		r := newFenceRig(t, "CLAIM1")
		r.h.step(r.ctx, r.cs, false) // empty queue: reads the cursor
		if !r.cs.curOK || r.cs.dl != nil {
			t.Fatalf("after an empty first look: cursor kept %v, delivery %v; want kept, none", r.cs.curOK, r.cs.dl)
		}
		seq := r.store()
		r.hint(seq)
		r.h.step(r.ctx, r.cs, false)
		if r.sent() != 1 || r.cs.dl == nil || r.cs.dl.claim == nil {
			t.Fatalf("sent %d, delivery %v; want 1 sent with its claim pending", r.sent(), r.cs.dl)
		}
		r.cs.statuses = append(r.cs.statuses, scpbridge.CommandStatus{Tag: tagOf(seq), Status: scpbridge.StatusOK})
		r.h.step(r.ctx, r.cs, false)
		if val, _ := r.cursor(); val != strconv.FormatUint(seq, 10) {
			t.Errorf("cursor %s, want %d", val, seq)
		}
		if n := r.h.stats.conflicts.Load(); n != 0 || r.cs.dl.fenced {
			t.Errorf("conflicts %d, fenced %v; want none", n, r.cs.dl.fenced)
		}
	})
	t.Run("contended", func(t *testing.T) {
		r := newFenceRig(t, "CLAIM2")
		r.h.step(r.ctx, r.cs, false)
		// Another session claims the (absent) cursor after this one read it.
		if _, err := r.h.handles.Cursors.Create(r.ctx, "CLAIM2", []byte("0")); err != nil {
			t.Fatalf("claim by another session: %v", err)
		}
		_, claimed := r.cursor()
		seq := r.store()
		r.hint(seq)
		r.h.step(r.ctx, r.cs, false)
		r.cs.statuses = append(r.cs.statuses, scpbridge.CommandStatus{Tag: tagOf(seq), Status: scpbridge.StatusOK})
		r.h.step(r.ctx, r.cs, false)
		if n := r.h.stats.conflicts.Load(); n != 1 || !r.cs.dl.fenced {
			t.Errorf("conflicts %d, fenced %v; want 1, fenced", n, r.cs.dl.fenced)
		}
		if val, rev := r.cursor(); val != "0" || rev != claimed {
			t.Errorf("cursor %s at revision %d, want 0 at %d (unmoved)", val, rev, claimed)
		}
		if _, err := r.h.handles.Commands.GetMsg(r.ctx, seq); err != nil {
			t.Errorf("command %d deleted by the fenced session: %v", seq, err)
		}
	})
}
