package commander_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/commands"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/streams"
)

func (e *env) sweeper() *commander.Sweeper {
	e.t.Helper()
	w, err := commander.NewSweeper(commander.SweeperOptions{JS: e.js, Log: zerolog.New(zerolog.NewTestWriter(e.t)),
		Grace: 100 * time.Millisecond, Interval: time.Hour, Timeout: 2 * time.Second})
	if err != nil {
		e.t.Fatalf("new sweeper: %v", err)
	}
	return w
}

// storedResults returns the results stored in SCP_RESULTS for serial.
func (e *env) storedResults(serial string) []scpgate.Result {
	e.t.Helper()
	subject, _ := streams.ResultSubject(serial)
	cons, err := e.js.OrderedConsumer(e.ctx, streams.ResultsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		e.t.Fatalf("results consumer: %v", err)
	}
	var out []scpgate.Result
	for {
		m, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
		if err != nil {
			return out
		}
		var r scpgate.Result
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			e.t.Fatalf("result %s: %v", m.Data(), err)
		}
		out = append(out, r)
	}
}

// TestSweeperEndsExpired: commands of a controller that never comes back
// get their one result once past their expiry (expired, or failed
// unanswered when a driver had sent one), the commands are removed, and a
// command not yet expired is left alone.
func TestSweeperEndsExpired(t *testing.T) {
	e := newEnv(t)
	never, err := e.svc.Submit(e.ctx, "GONE1", commander.SubmitRequest{Type: scpgate.CmdReset, TTL: "1s"})
	if err != nil {
		t.Fatal(err)
	}
	sent, err := e.svc.Submit(e.ctx, "GONE1", commander.SubmitRequest{Type: scpgate.CmdIDRequest, TTL: "1s"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC()
	e.putRecord(commands.Record{ID: sent.ID, Controller: "GONE1", Type: scpgate.CmdIDRequest, Status: scpgate.StatusSent,
		Seq: sent.Seq, Created: sent.Created, Expires: sent.Expires, Sent: &at, Driver: "d1"})
	later, err := e.svc.Submit(e.ctx, "GONE1", commander.SubmitRequest{Type: scpgate.CmdReset, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}

	w := e.sweeper()
	if err := w.Sweep(e.ctx); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if got := e.storedResults("GONE1"); len(got) != 0 {
		t.Fatalf("results before expiry: %+v, want none", got)
	}
	// Sweep until both are ended (past expiry and grace), then once more:
	// that changes nothing.
	sweeps := uint64(1)
	natstest.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		if err := w.Sweep(e.ctx); err != nil {
			t.Fatalf("sweep: %v", err)
		}
		sweeps++
		if st := w.Stats(); st.Expired+st.Unanswered < 2 {
			return fmt.Errorf("sweeper stats %+v", st)
		}
		return nil
	})
	if err := w.Sweep(e.ctx); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	sweeps++
	got := e.storedResults("GONE1")
	if len(got) != 2 {
		t.Fatalf("results %+v, want 2", got)
	}
	byID := map[string]scpgate.Result{got[0].ID: got[0], got[1].ID: got[1]}
	if r := byID[never.ID]; r.Status != scpgate.StatusExpired || r.Seq != never.Seq {
		t.Errorf("never sent: %+v, want expired", r)
	}
	if r := byID[sent.ID]; r.Status != scpgate.StatusFailed || r.Reason != "unanswered" || r.Sent == nil || r.Driver != "d1" {
		t.Errorf("sent: %+v, want failed unanswered, sent by d1", r)
	}
	for _, id := range []string{never.ID, sent.ID} {
		rec, err := e.svc.Get(e.ctx, id)
		if err != nil || rec.Status != byID[id].Status {
			t.Errorf("record of %s: %+v, %v; want %s", id, rec, err, byID[id].Status)
		}
		if _, err := e.h.Commands.GetMsg(e.ctx, rec.Seq); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Errorf("command %s still stored (%v)", id, err)
		}
	}
	if rec, err := e.svc.Get(e.ctx, later.ID); err != nil || rec.Status != scpgate.StatusQueued {
		t.Errorf("unexpired command: %+v, %v; want queued", rec, err)
	}
	if st := w.Stats(); st.Expired != 1 || st.Unanswered != 1 || st.Sweeps != sweeps || st.Errors != 0 {
		t.Errorf("stats %+v, want 1 expired, 1 unanswered, %d sweeps", st, sweeps)
	}
}

// TestSweeperKeepsFirstResult: a command a driver ended first (final
// record written) keeps that result; the sweeper only publishes it again
// and removes the command.
func TestSweeperKeepsFirstResult(t *testing.T) {
	e := newEnv(t)
	x, err := e.svc.Submit(e.ctx, "GONE2", commander.SubmitRequest{Type: scpgate.CmdReset, TTL: "1s"})
	if err != nil {
		t.Fatal(err)
	}
	fin := time.Now().UTC()
	e.putRecord(commands.Record{ID: x.ID, Controller: "GONE2", Type: scpgate.CmdReset, Status: scpgate.StatusOK,
		Seq: x.Seq, Created: x.Created, Sent: &fin, Finished: &fin, Driver: "d1"})
	w := e.sweeper()
	natstest.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		if err := w.Sweep(e.ctx); err != nil {
			t.Fatalf("sweep: %v", err)
		}
		if st := w.Stats(); st.Republished == 0 {
			return fmt.Errorf("sweeper stats %+v", st)
		}
		return nil
	})
	got := e.storedResults("GONE2")
	if len(got) != 1 || got[0].Status != scpgate.StatusOK || got[0].Driver != "d1" {
		t.Fatalf("results %+v, want the driver's ok", got)
	}
	if rec, _ := e.svc.Get(e.ctx, x.ID); rec.Status != scpgate.StatusOK {
		t.Errorf("record %+v, want ok kept", rec)
	}
	if st := w.Stats(); st.Republished != 1 || st.Expired != 0 {
		t.Errorf("stats %+v, want 1 republished", st)
	}
}

// TestCheckMaxAge: the longest TTL plus a day's grace must fit in the
// commands stream's MaxAge; the defaults do.
func TestCheckMaxAge(t *testing.T) {
	def := streams.DefaultConfig().CommandsMaxAge
	if err := commander.CheckMaxAge(commander.DefaultMaxTTL, def); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if err := commander.CheckMaxAge(def, def); !errors.Is(err, commander.ErrTTLBeyondMaxAge) {
		t.Errorf("max TTL = MaxAge: got %v, want ErrTTLBeyondMaxAge", err)
	}
}
