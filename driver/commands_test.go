package driver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/streams"
)

// cmdWorld is an embedded JetStream server with the streams ensured and a
// commander.Service submitting commands, as the vendor app would.
type cmdWorld struct {
	*env
	svc *commander.Service
}

func newCmdWorld(t testing.TB) *cmdWorld {
	t.Helper()
	w := &cmdWorld{env: newEnv(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := streams.Ensure(ctx, w.js, testStreams()); err != nil {
		t.Fatalf("ensure streams: %v", err)
	}
	w.svc = w.newCommander()
	return w
}

// newCommander returns a commander on the world's connection, closed when
// the test ends.
func (w *cmdWorld) newCommander() *commander.Service {
	w.t.Helper()
	svc, err := commander.New(commander.Options{JS: w.js, NC: w.nc, Log: testLogger(w.t), Timeout: 2 * time.Second})
	if err != nil {
		w.t.Fatalf("new commander: %v", err)
	}
	w.t.Cleanup(func() { _ = svc.Close() })
	return svc
}

// submit submits req for serial and fails the test on an error.
func (w *cmdWorld) submit(serial string, req commander.SubmitRequest) commander.SubmitResponse {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), req.Wait+5*time.Second)
	defer cancel()
	resp, err := w.svc.Submit(ctx, serial, req)
	if err != nil {
		w.t.Fatalf("submit %s to %s: %v", req.Type, serial, err)
	}
	return resp
}

// get returns the status record of id.
func (w *cmdWorld) get(id string) (scpgate.CommandStatus, *scpgate.Result) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rec, err := w.svc.Get(ctx, id)
	if err != nil {
		w.t.Fatalf("get %s: %v", id, err)
	}
	if res, ok := rec.Result(); ok {
		return rec.Status, &res
	}
	return rec.Status, nil
}

// waitFinal waits until every id has a final status and returns them.
func (w *cmdWorld) waitFinal(timeout time.Duration, ids ...string) map[string]scpgate.Result {
	w.t.Helper()
	out := make(map[string]scpgate.Result, len(ids))
	natstest.CheckFor(w.t, timeout, 20*time.Millisecond, func() error {
		for _, id := range ids {
			if _, ok := out[id]; ok {
				continue
			}
			st, res := w.get(id)
			if res == nil {
				return fmt.Errorf("command %s is %s", id, st)
			}
			out[id] = *res
		}
		return nil
	})
	return out
}

// pending returns the number of commands stored for serial.
func (w *cmdWorld) pending(serial string) uint64 {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := w.js.Stream(ctx, streams.CommandsStream)
	if err != nil {
		w.t.Fatalf("commands stream: %v", err)
	}
	subject, _ := streams.CommandSubject(serial)
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		w.t.Fatalf("commands stream info: %v", err)
	}
	return info.State.Subjects[subject]
}

// waitDrained waits until no command of serial is stored.
func (w *cmdWorld) waitDrained(serial string) {
	w.t.Helper()
	natstest.CheckFor(w.t, 5*time.Second, 20*time.Millisecond, func() error {
		if n := w.pending(serial); n != 0 {
			return fmt.Errorf("%d commands of %s still stored", n, serial)
		}
		return nil
	})
}

// results returns the results stored in SCP_RESULTS for serial, by id,
// checking that each id is stored once.
func (w *cmdWorld) results(serial string) map[string]scpgate.Result {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	subject, _ := streams.ResultSubject(serial)
	cons, err := w.js.OrderedConsumer(ctx, streams.ResultsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		w.t.Fatalf("results consumer: %v", err)
	}
	out := make(map[string]scpgate.Result)
	for {
		m, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
		if err != nil {
			return out // nothing more
		}
		var r scpgate.Result
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			w.t.Fatalf("result %s does not decode: %v", m.Data(), err)
		}
		if id := m.Headers().Get(jetstream.MsgIDHeader); id != r.ID {
			w.t.Errorf("result %s has Nats-Msg-Id %q", r.ID, id)
		}
		if _, dup := out[r.ID]; dup {
			w.t.Errorf("result of %s stored twice", r.ID)
		}
		out[r.ID] = r
	}
}

// startCmdDriver starts a driver (command delivery is built in).
func (w *cmdWorld) startCmdDriver(id string) *driver.Driver {
	w.t.Helper()
	return w.startDriver(id, nil)
}

func unlock(door uint16) commander.SubmitRequest {
	return commander.SubmitRequest{Type: scpgate.CmdMomentaryUnlock, Params: scpgate.CommandParams{Door: &door, Seconds: 1}}
}

func withWait(req commander.SubmitRequest, d time.Duration) commander.SubmitRequest {
	req.Wait = d
	return req
}

// tagsOf returns the tags the controller received, in order.
func tagsOf(c *sim.Controller) []uint32 {
	var out []uint32
	for _, rc := range c.Commands() {
		out = append(out, rc.Tag)
	}
	return out
}

// TestCommandOnline: a command for a connected controller ends ok within
// the submission's wait, the commander reports it, and the queue is empty.
func TestCommandOnline(t *testing.T) {
	w := newCmdWorld(t)
	d := w.startCmdDriver("d1")
	c := sim.NewController(simConfig(d.Addr().String(), "CMDON"))
	runController(t, c)
	waitSession(t, d, "CMDON")

	resp := w.submit("CMDON", withWait(unlock(2), 5*time.Second))
	if resp.Result == nil || resp.Result.Status != scpgate.StatusOK {
		t.Fatalf("submit: got status %s result %+v, want ok", resp.Status, resp.Result)
	}
	if r := resp.Result; r.ID != resp.ID || r.Driver != "d1" || r.Sent == nil || r.Finished.Before(*r.Sent) || r.Seq != resp.Seq {
		t.Errorf("result %+v: want id %s, driver d1, sent before finished, seq %d", r, resp.ID, resp.Seq)
	}
	st, res := w.get(resp.ID)
	if st != scpgate.StatusOK || res == nil || res.Driver != "d1" {
		t.Errorf("get %s: got %s %+v, want ok from d1", resp.ID, st, res)
	}
	got := c.Commands()
	if len(got) != 1 || got[0].Tag != uint32(resp.Seq) || got[0].Code != scpbridge.CmdMomentaryUnlock || got[0].Door != 2 {
		t.Errorf("controller received %+v, want one momentary_unlock of door 2 with tag %d", got, resp.Seq)
	}

	// The controller's answer text comes back as the detail.
	resp = w.submit("CMDON", withWait(commander.SubmitRequest{Type: scpgate.CmdIDRequest}, 5*time.Second))
	if resp.Result == nil || resp.Result.Status != scpgate.StatusOK || !strings.Contains(resp.Result.Detail, "serial=CMDON") {
		t.Errorf("id_request: got %+v, want ok with the controller's identity", resp.Result)
	}
	w.waitDrained("CMDON")
	if cs := d.CommandStats(); cs.Sent != 2 || cs.OK != 2 || cs.NAK+cs.Failed+cs.Expired+cs.CursorConflicts != 0 {
		t.Errorf("command stats %+v, want 2 sent and ok", cs)
	}
}

// TestCommandNAK: a command the controller refuses ends nak with the
// controller's reason.
func TestCommandNAK(t *testing.T) {
	w := newCmdWorld(t)
	d := w.startCmdDriver("d1")
	c := sim.NewController(simConfig(d.Addr().String(), "CMDNAK"))
	runController(t, c)
	waitSession(t, d, "CMDNAK")

	resp := w.submit("CMDNAK", withWait(unlock(99), 5*time.Second))
	if resp.Result == nil || resp.Result.Status != scpgate.StatusNAK || resp.Result.Reason != "out_of_range" {
		t.Fatalf("submit: got %+v, want nak out_of_range", resp.Result)
	}
	if !strings.Contains(resp.Result.Detail, "door 99") {
		t.Errorf("nak detail %q, want the controller's text", resp.Result.Detail)
	}
	if st, res := w.get(resp.ID); st != scpgate.StatusNAK || res.Reason != "out_of_range" {
		t.Errorf("get: got %s %+v, want nak out_of_range", st, res)
	}
	w.waitDrained("CMDNAK")
	if cs := d.CommandStats(); cs.NAK != 1 || cs.OK != 0 {
		t.Errorf("command stats %+v, want one nak", cs)
	}
}

// TestCommandOffline: commands queued for an offline controller arrive in
// order when it connects; the one whose TTL passed meanwhile ends expired
// and is never sent.
func TestCommandOffline(t *testing.T) {
	w := newCmdWorld(t)
	d := w.startCmdDriver("d1")

	short := unlock(1)
	short.TTL = "1s"
	expiring := w.submit("CMDOFF", short)
	var ids []string
	var seqs []uint32
	for _, req := range []commander.SubmitRequest{
		unlock(3),
		{Type: scpgate.CmdDoorMode, Params: scpgate.CommandParams{Door: u16(2), Mode: "locked"}},
		{Type: scpgate.CmdOutput, Params: scpgate.CommandParams{Output: u16(1), Action: "pulse", MS: 200}},
	} {
		resp := w.submit("CMDOFF", req)
		if resp.Status != scpgate.StatusQueued {
			t.Fatalf("submit %s: status %s, want queued", req.Type, resp.Status)
		}
		ids = append(ids, resp.ID)
		seqs = append(seqs, uint32(resp.Seq))
	}
	if n := w.pending("CMDOFF"); n != 4 {
		t.Fatalf("%d commands stored, want 4", n)
	}
	natstest.CheckFor(t, 5*time.Second, 50*time.Millisecond, func() error {
		if st, _ := w.get(expiring.ID); st != scpgate.StatusExpired {
			return fmt.Errorf("command %s is %s, want expired", expiring.ID, st)
		}
		return nil
	})

	c := sim.NewController(simConfig(d.Addr().String(), "CMDOFF"))
	runController(t, c)
	res := w.waitFinal(10*time.Second, append([]string{expiring.ID}, ids...)...)
	if r := res[expiring.ID]; r.Status != scpgate.StatusExpired || r.Sent != nil {
		t.Errorf("expiring command: got %+v, want expired, never sent", r)
	}
	for _, id := range ids {
		if r := res[id]; r.Status != scpgate.StatusOK {
			t.Errorf("command %s: got %s (%s), want ok", id, r.Status, r.Reason)
		}
	}
	if got := tagsOf(c); fmt.Sprint(got) != fmt.Sprint(seqs) {
		t.Errorf("controller received tags %v, want %v in order (and not %d)", got, seqs, expiring.Seq)
	}
	w.waitDrained("CMDOFF")
	stored := w.results("CMDOFF")
	if len(stored) != 4 {
		t.Errorf("%d results stored, want 4", len(stored))
	}
	if cs := d.CommandStats(); cs.Expired != 1 || cs.OK != 3 || cs.Sent != 3 {
		t.Errorf("command stats %+v, want 3 sent and ok, 1 expired", cs)
	}
}

func u16(n uint16) *uint16 { return &n }

// TestCommandTakeover: commands are pending and some are outstanding when
// another driver takes the controller over (an impostor on driver 2 that
// never answers), and then the controller takes it back on driver 1. Every
// command ends in exactly one result, the controller receives each in
// order, and only the commands that were outstanding at the takeover reach
// it twice (with the same tag, as the protocol prescribes).
func TestCommandTakeover(t *testing.T) {
	w := newCmdWorld(t)
	d1 := w.startCmdDriver("d1")
	d2 := w.startCmdDriver("d2")
	cfg := simConfig(d1.Addr().String(), "CMDTK")
	cfg.CommandLatency = 150 * time.Millisecond
	c := sim.NewController(cfg)
	runController(t, c)
	waitSession(t, d1, "CMDTK")

	var ids []string
	for i := range 10 {
		ids = append(ids, w.submit("CMDTK", unlock(uint16(1+i%4))).ID)
	}
	natstest.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if n := len(c.Commands()); n < 2 {
			return fmt.Errorf("controller received %d commands", n)
		}
		return nil
	})
	r := dialRaw(t, d2.Addr().String())
	r.hello("CMDTK", 1)
	if _, err := r.waitClosed(10 * time.Second); err != nil {
		t.Fatalf("impostor on driver 2: %v", err)
	}

	res := w.waitFinal(15*time.Second, ids...)
	for _, id := range ids {
		if res[id].Status != scpgate.StatusOK {
			t.Errorf("command %s: got %+v, want ok", id, res[id])
		}
	}
	stored := w.results("CMDTK")
	if len(stored) != len(ids) {
		t.Errorf("%d results stored, want %d", len(stored), len(ids))
	}
	w.waitDrained("CMDTK")

	// First receipts in queue order; repeats only of outstanding commands.
	seen := make(map[uint32]bool)
	var first []uint32
	for _, rc := range c.Commands() {
		if !seen[rc.Tag] {
			seen[rc.Tag] = true
			first = append(first, rc.Tag)
		}
	}
	var want []uint32
	for _, id := range ids {
		want = append(want, uint32(res[id].Seq))
	}
	if fmt.Sprint(first) != fmt.Sprint(want) {
		t.Errorf("controller received %v, want %v", first, want)
	}
	if dup := c.Stats().DuplicateCommands; dup > driver.DefaultCommandWindow {
		t.Errorf("%d commands received twice, want at most the window (%d)", dup, driver.DefaultCommandWindow)
	}
	t.Logf("duplicates %d; d1 %+v; d2 %+v", c.Stats().DuplicateCommands, d1.CommandStats(), d2.CommandStats())
}

// TestCommandRestarts: the commander restarts while commands are queued,
// and the driver restarts while some are outstanding; a new driver behind
// the same balancer delivers the rest. Nothing is lost.
func TestCommandRestarts(t *testing.T) {
	w := newCmdWorld(t)
	d1 := w.startCmdDriver("d1")
	lb := newLB(t, d1.Addr().String())
	cfg := simConfig(lb.addr(), "CMDRS")
	cfg.CommandLatency = 50 * time.Millisecond
	c := sim.NewController(cfg)
	runController(t, c)
	waitSession(t, d1, "CMDRS")

	var ids []string
	for i := range 8 {
		ids = append(ids, w.submit("CMDRS", unlock(uint16(1+i%4))).ID)
	}
	// The commander restarts: a new one takes submissions and lookups.
	if err := w.svc.Close(); err != nil {
		t.Fatalf("close commander: %v", err)
	}
	w.svc = w.newCommander()
	for i := range 8 {
		ids = append(ids, w.submit("CMDRS", unlock(uint16(1+i%4))).ID)
	}
	natstest.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if n := d1.CommandStats().OK; n < 3 {
			return fmt.Errorf("%d commands ok", n)
		}
		return nil
	})
	// The driver restarts: the balancer sends the controller to a new one.
	if err := d1.Close(); err != nil {
		t.Fatalf("close driver 1: %v", err)
	}
	d2 := w.startCmdDriver("d2")
	lb.add(d2.Addr().String())

	res := w.waitFinal(15*time.Second, ids...)
	for _, id := range ids {
		if res[id].Status != scpgate.StatusOK {
			t.Errorf("command %s: got %+v, want ok", id, res[id])
		}
	}
	if n := len(w.results("CMDRS")); n != len(ids) {
		t.Errorf("%d results stored, want %d", n, len(ids))
	}
	w.waitDrained("CMDRS")
	seen := make(map[uint32]bool)
	for _, tag := range tagsOf(c) {
		seen[tag] = true
	}
	for _, id := range ids {
		if !seen[uint32(res[id].Seq)] {
			t.Errorf("controller never received %s", id)
		}
	}
	if dup := c.Stats().DuplicateCommands; dup > driver.DefaultCommandWindow {
		t.Errorf("%d commands received twice, want at most the window (%d)", dup, driver.DefaultCommandWindow)
	}
	if st1, st2 := d1.CommandStats(), d2.CommandStats(); st1.OK == 0 || st2.OK == 0 {
		t.Errorf("ok results: driver 1 %d, driver 2 %d; want some from each", st1.OK, st2.OK)
	}
}
