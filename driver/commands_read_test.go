package driver_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/streams"
)

// TestCommandStaleReplicaRead: the first read of a queue is answered "not
// found" although a command is stored, as an R3 follower that has not
// stored it yet answers a direct get (simulated by an injected reader on
// a single server). The command must not be skipped: it is delivered,
// before the command queued after it.
func TestCommandStaleReplicaRead(t *testing.T) {
	w := newCmdWorld(t)
	first := w.submit("STALE1", unlock(1)) // queued while offline

	nc := natstest.Connect(t, w.srv, nats.Name("d1"))
	o := driver.Options{ID: "d1", Listen: "127.0.0.1:0", NATS: nc, Streams: testStreams(), Timing: testTiming,
		Log: testLogger(t), ReconnectAfterMax: 100 * time.Millisecond}
	d, err := driver.New(o)
	if err != nil {
		t.Fatal(err)
	}
	driver.StaleReads(d, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })

	c := sim.NewController(simConfig(d.Addr().String(), "STALE1"))
	runController(t, c)
	waitSession(t, d, "STALE1")
	second := w.submit("STALE1", unlock(2))
	res := w.waitFinal(10*time.Second, first.ID, second.ID)
	for _, id := range []string{first.ID, second.ID} {
		if res[id].Status != "ok" {
			t.Errorf("%s: %+v, want ok", id, res[id])
		}
	}
	if got, want := tagsOf(c), []uint32{uint32(first.Seq), uint32(second.Seq)}; !slices.Equal(got, want) {
		t.Errorf("controller got tags %v, want %v (in queue order)", got, want)
	}
	if st := d.CommandStats(); st.StaleReads != 1 {
		t.Errorf("stats %+v, want 1 stale read", st)
	}
}

// TestCommandReadOneReplica: on a stream of one replica the only server
// is the stream leader, so a session's first read of an empty queue is
// one request to the leader ($JS.API.STREAM.MSG.GET), not a direct get
// and its confirmation. Requests are counted on the real server by the
// driver connection's inbox prefix.
func TestCommandReadOneReplica(t *testing.T) {
	w := newCmdWorld(t)
	var direct, leader atomic.Int64
	count := func(n *atomic.Int64) nats.MsgHandler {
		return func(m *nats.Msg) {
			if strings.HasPrefix(m.Reply, "_INBOX.rdtest.") {
				n.Add(1)
			}
		}
	}
	for subj, n := range map[string]*atomic.Int64{
		"$JS.API.DIRECT.GET." + streams.CommandsStream:        &direct,
		"$JS.API.DIRECT.GET." + streams.CommandsStream + ".>": &direct,
		"$JS.API.STREAM.MSG.GET." + streams.CommandsStream:    &leader,
	} {
		if _, err := w.nc.Subscribe(subj, count(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	nc := natstest.Connect(t, w.srv, nats.Name("d1"), nats.CustomInboxPrefix("_INBOX.rdtest"))
	o := driver.Options{ID: "d1", Listen: "127.0.0.1:0", NATS: nc, Streams: testStreams(), Timing: testTiming,
		Log: testLogger(t), ReconnectAfterMax: 100 * time.Millisecond}
	d, err := driver.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })

	c := sim.NewController(simConfig(d.Addr().String(), "ONEREP1"))
	runController(t, c)
	waitSession(t, d, "ONEREP1")
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if leader.Load() == 0 {
			return errors.New("the session has not read its queue yet")
		}
		return nil
	})
	first := w.submit("ONEREP1", unlock(1))
	second := w.submit("ONEREP1", unlock(2))
	res := w.waitFinal(10*time.Second, first.ID, second.ID)
	for _, id := range []string{first.ID, second.ID} {
		if res[id].Status != "ok" {
			t.Errorf("%s: %+v, want ok", id, res[id])
		}
	}
	if err := w.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := [2]int64{direct.Load(), leader.Load()}, [2]int64{0, 1}; got != want {
		t.Errorf("direct gets and leader reads of %s by the driver: %v, want %v (one read, through the leader)",
			streams.CommandsStream, got, want)
	}
	if st := d.CommandStats(); st.Hinted != 2 || st.StaleReads != 0 {
		t.Errorf("stats %+v, want 2 commands from hints and no stale read", st)
	}
}
