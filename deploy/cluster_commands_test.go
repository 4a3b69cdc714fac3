package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/sim"
	"github.com/scpgate/scpgate/streams"
)

// TestClusterCommands runs command delivery on a three-node cluster with
// R3 streams, the driver and the commander connected to different nodes:
// commands queued while a controller is away are delivered in order once
// it connects (every empty queue read is confirmed by the stream leader),
// and a command for a controller that never comes back ends expired by
// the commander's sweeper. The driver reads the R3 queue with direct
// gets, any replica answering, and confirms each empty one with the
// stream leader.
func TestClusterCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster")
	}
	srvs, _ := startCluster(t)
	connect := func(name string, i int, opts ...nats.Option) *nats.Conn {
		opts = append(opts, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		nc, err := nats.Connect(srvs[i].ClientURL(), opts...)
		if err != nil {
			t.Fatalf("connect %s: %v", name, err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	cnc := connect("commander", 0)
	js := natstest.JetStream(t, cnc)
	cfg := streams.DefaultConfig()
	cfg.Replicas = 3
	cfg.EventsMaxAge = time.Hour
	cfg.DuplicateWindow = 10 * time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := streams.Ensure(ctx, js, cfg); err != nil {
		t.Fatalf("ensure streams with 3 replicas: %v", err)
	}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	svc, err := commander.New(commander.Options{JS: js, NC: cnc, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })

	var ids []string
	for door := range uint16(4) {
		d := door + 1
		r, err := svc.Submit(ctx, "R3CMD", commander.SubmitRequest{Type: scpgate.CmdMomentaryUnlock,
			Params: scpgate.CommandParams{Door: &d, Seconds: 1}})
		if err != nil {
			t.Fatalf("submit: %v", err)
		}
		ids = append(ids, r.ID)
	}
	gone, err := svc.Submit(ctx, "R3GONE", commander.SubmitRequest{Type: scpgate.CmdReset, TTL: "1s"})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}

	// The driver's queue reads, told apart by its inbox prefix.
	var direct, leader atomic.Int64
	for subj, n := range map[string]*atomic.Int64{
		"$JS.API.DIRECT.GET." + streams.CommandsStream:        &direct,
		"$JS.API.DIRECT.GET." + streams.CommandsStream + ".>": &direct,
		"$JS.API.STREAM.MSG.GET." + streams.CommandsStream:    &leader,
	} {
		if _, err := cnc.Subscribe(subj, func(m *nats.Msg) {
			if strings.HasPrefix(m.Reply, "_INBOX.driver.") {
				n.Add(1)
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cnc.Flush(); err != nil {
		t.Fatal(err)
	}
	d, err := driver.New(driver.Options{ID: "cluster-driver", Listen: "127.0.0.1:0",
		NATS:    connect("driver", 2, nats.CustomInboxPrefix("_INBOX.driver")),
		Streams: cfg, PublishTimeout: 2 * time.Second, Log: log})
	if err != nil {
		t.Fatalf("new driver: %v", err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatalf("start driver: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	c := sim.NewController(sim.Config{Target: d.Addr().String(), Serial: "R3CMD",
		Backoff: sim.BackoffConfig{Min: 50 * time.Millisecond, Max: time.Second}, Seed: 3})
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(cctx) }()
	t.Cleanup(func() { stop(); <-done })

	checkFor(t, "queued commands ok", 20*time.Second, 50*time.Millisecond, func() error {
		for _, id := range ids {
			rec, err := svc.Get(ctx, id)
			if err != nil || rec.Status != scpgate.StatusOK {
				return fmt.Errorf("%s: %+v, %v", id, rec, err)
			}
		}
		return nil
	})
	var tags []uint32
	for _, rc := range c.Commands() {
		tags = append(tags, rc.Tag)
	}
	if len(tags) != len(ids) {
		t.Errorf("controller received tags %v, want one per command %v", tags, ids)
	}
	for i := 1; i < len(tags); i++ {
		if tags[i] <= tags[i-1] {
			t.Errorf("controller received tags %v, want queue order", tags)
		}
	}
	// The queue read empty after the four commands: a direct get, then
	// the leader's confirmation.
	checkFor(t, "empty read confirmed", 10*time.Second, 50*time.Millisecond, func() error {
		if leader.Load() == 0 {
			return errors.New("no read through the stream leader yet")
		}
		return nil
	})
	if dg, lg := direct.Load(), leader.Load(); dg < lg {
		t.Errorf("%d direct gets and %d leader reads, want a direct get before each leader read", dg, lg)
	}

	sw, err := commander.NewSweeper(commander.SweeperOptions{JS: js, Log: log, Grace: 100 * time.Millisecond, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	checkFor(t, "swept", 20*time.Second, 200*time.Millisecond, func() error {
		if err := sw.Sweep(ctx); err != nil {
			return err
		}
		rec, err := svc.Get(ctx, gone.ID)
		if err != nil || rec.Status != scpgate.StatusExpired {
			return fmt.Errorf("%s: %+v, %v", gone.ID, rec, err)
		}
		return nil
	})
}
