package sim_test

import (
	"net"
	"strings"
	"testing"
	"time"

	sb "github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
)

var fastTiming = sb.Timing{Handshake: 2 * time.Second, Heartbeat: time.Second, OfflineTime: 5 * time.Second}

func seqs(txs []sb.Transaction) []uint32 {
	out := make([]uint32, len(txs))
	for i, tx := range txs {
		out[i] = tx.Seq
	}
	return out
}

func wantSeqs(t *testing.T, txs []sb.Transaction, from, to uint32) {
	t.Helper()
	got := seqs(txs)
	if len(got) != int(to-from+1) {
		t.Fatalf("got serials %v, want %d..%d", got, from, to)
	}
	for i, s := range got {
		if s != from+uint32(i) {
			t.Fatalf("got serials %v, want %d..%d", got, from, to)
		}
	}
}

func TestResendAfterReconnectStartsAfterLastAck(t *testing.T) {
	h := newTestHost(t, fastTiming)
	c := sim.NewController(testConfig(t, h.addr(), "RESEND1"))
	start(t, c)

	hc := h.next(5 * time.Second)
	if got := hc.hello.Log; got.LastLogged != 0 || got.Oldest != 0 || got.Capacity != sim.DefaultLogCapacity {
		t.Fatalf("first hello log status %+v, want empty log of capacity %d", got, sim.DefaultLogCapacity)
	}
	if hc.hello.Serial != "RESEND1" || hc.hello.BootEpoch != 1000 {
		t.Fatalf("hello %+v, want serial RESEND1 epoch 1000", hc.hello)
	}
	c.Generate(10)
	wantSeqs(t, expectTxs(t, hc, 10), 1, 10)
	hc.ack(5)
	waitFor(t, 5*time.Second, "ack 5 applied", func() bool { return c.Stats().LastAcked == 5 })
	c.Generate(2) // logged while connected, then the connection drops
	expectTxs(t, hc, 2)
	hc.conn.Close()

	hc2 := h.next(5 * time.Second)
	want := sb.LogStatus{Capacity: sim.DefaultLogCapacity, Oldest: 6, LastLogged: 12, LastAcked: 5}
	if hc2.hello.Log != want {
		t.Fatalf("hello after reconnect: log %+v, want %+v", hc2.hello.Log, want)
	}
	if hc2.hello.BootEpoch != 1000 {
		t.Fatalf("boot epoch changed across a reconnect: %d", hc2.hello.BootEpoch)
	}
	wantSeqs(t, expectTxs(t, hc2, 7), 6, 12)
	hc2.ack(12)
	waitFor(t, 5*time.Second, "everything acknowledged", func() bool { return c.Stats().Unacked == 0 })
	s := c.Stats()
	if s.Generated != 12 || s.Acked != 12 || s.DroppedOverflow != 0 || s.Reconnects < 1 || s.Sessions != 2 {
		t.Fatalf("stats %+v: want generated 12, acked 12, no overflow, a reconnect, 2 sessions", s)
	}
}

func TestOverflowOverwritesOldestAndReportsLoss(t *testing.T) {
	h := newTestHost(t, fastTiming)
	cfg := testConfig(t, h.addr(), "OVER1")
	cfg.LogCapacity = 10
	c := sim.NewController(cfg)
	c.Generate(15) // offline: 1..5 are overwritten
	if s := c.Stats(); s.DroppedOverflow != 5 || s.Unacked != 10 {
		t.Fatalf("after 15 into a log of 10: %+v, want 5 dropped, 10 held", s)
	}
	start(t, c)

	hc := h.next(5 * time.Second)
	want := sb.LogStatus{Capacity: 10, Oldest: 6, LastLogged: 15, LastAcked: 0}
	if hc.hello.Log != want {
		t.Fatalf("hello log %+v, want %+v", hc.hello.Log, want)
	}
	txs := expectTxs(t, hc, 11)
	wantSeqs(t, txs, 6, 16)
	marker := txs[10]
	if marker.Type != sb.TranSystem || marker.Code != sb.SystemLogOverLimit || marker.Lost != 5 {
		t.Fatalf("serial 16 is %s/%s lost %d, want system/log_over_limit lost 5",
			marker.Type, sb.CodeName(marker.Type, marker.Code), marker.Lost)
	}

	// Online but unacknowledged: the log (11 entries) overflows again.
	c.Generate(12) // 17..28; the log keeps 19..28
	wantSeqs(t, expectTxs(t, hc, 10), 19, 28)
	hc.ack(28)
	tx := expect[sb.Transaction](t, hc, 5*time.Second, nil)
	if tx.Seq != 29 || tx.Code != sb.SystemLogOverLimit || tx.Lost != 13 {
		t.Fatalf("after the ack got serial %d %s lost %d, want 29 log_over_limit lost 13",
			tx.Seq, sb.CodeName(tx.Type, tx.Code), tx.Lost)
	}
	hc.ack(29)
	waitFor(t, 5*time.Second, "marker acknowledged", func() bool { return c.Stats().Unacked == 0 })
	s := c.Stats()
	if s.DroppedOverflow != 18 || s.Generated != 29 || s.Acked != 11 {
		t.Fatalf("stats %+v, want 18 dropped, 29 generated, 11 acked", s)
	}
	if s.Generated != s.Acked+s.Unacked+s.DroppedOverflow+s.LostOnRestart {
		t.Fatalf("stats do not add up: %+v", s)
	}
}

func TestCommandsAnswered(t *testing.T) {
	h := newTestHost(t, fastTiming)
	c := sim.NewController(testConfig(t, h.addr(), "CMD1"))
	start(t, c)
	hc := h.next(5 * time.Second)

	status := func(tag uint32) sb.CommandStatus {
		t.Helper()
		return expect(t, hc, 5*time.Second, func(s sb.CommandStatus) bool { return s.Tag == tag })
	}
	tests := []struct {
		name   string
		cmd    sb.Command
		status sb.Status
		nak    sb.NakReason
		detail string
	}{
		{"set_time", sb.Command{Code: sb.CmdSetTime, TimeMS: time.Now().UnixMilli()}, sb.StatusOK, sb.NakNone, ""},
		{"unlock door 99", sb.Command{Code: sb.CmdMomentaryUnlock, Door: 99, Seconds: 1}, sb.StatusNAK, sb.NakOutOfRange, "door 99"},
		{"unlock door 0", sb.Command{Code: sb.CmdMomentaryUnlock, Door: 0}, sb.StatusNAK, sb.NakOutOfRange, "door 0"},
		{"door_mode door 5", sb.Command{Code: sb.CmdDoorMode, Door: 5, Mode: sb.ModeLocked}, sb.StatusNAK, sb.NakOutOfRange, ""},
		{"output 9", sb.Command{Code: sb.CmdOutput, Output: 9, Action: sb.ActionOn}, sb.StatusNAK, sb.NakOutOfRange, "output 9"},
		{"card_add", sb.Command{Code: sb.CmdCardAdd, Card: 1234, Facility: 42, PIN: "1234", Levels: []uint16{1}}, sb.StatusOK, sb.NakNone, ""},
		{"id_request", sb.Command{Code: sb.CmdIDRequest}, sb.StatusOK, sb.NakNone, "model=SCP-2000 firmware=1.0.0 serial=CMD1"},
		{"tran_status", sb.Command{Code: sb.CmdTranStatus}, sb.StatusOK, sb.NakNone, "capacity=50000 oldest=1 last_logged=1 last_acked=0 boot_epoch=1000"}, // after time_set,
	}
	for i, tc := range tests {
		tc.cmd.Tag = uint32(100 + i)
		hc.send(&tc.cmd)
		got := status(tc.cmd.Tag)
		if got.Status != tc.status || got.NakReason != tc.nak || !strings.Contains(got.Detail, tc.detail) {
			t.Errorf("%s: got %s/%s %q, want %s/%s containing %q", tc.name, got.Status, got.NakReason, got.Detail, tc.status, tc.nak, tc.detail)
		}
	}
	// set_time logs a time_set transaction.
	tx := expect[sb.Transaction](t, hc, 5*time.Second, nil)
	if tx.Type != sb.TranSystem || tx.Code != sb.SystemTimeSet {
		t.Errorf("after set_time got %s/%s, want system/time_set", tx.Type, sb.CodeName(tx.Type, tx.Code))
	}

	hc.sendRaw(rawCommand(200, 99, []byte{1, 2, 3}))
	if got := status(200); got.Status != sb.StatusNAK || got.NakReason != sb.NakUnknownCommand {
		t.Errorf("code 99: got %s/%s, want nak/unknown_command", got.Status, got.NakReason)
	}
	hc.sendRaw(rawCommand(201, uint8(sb.CmdDoorMode), []byte{0, 1, 77})) // mode 77
	if got := status(201); got.Status != sb.StatusNAK || got.NakReason != sb.NakContentError {
		t.Errorf("bad door mode: got %s/%s, want nak/content_error", got.Status, got.NakReason)
	}
	hc.sendRaw(rawCommand(202, uint8(sb.CmdMomentaryUnlock), []byte{0})) // body cut short
	if got := status(202); got.Status != sb.StatusNAK || got.NakReason != sb.NakBadHeader {
		t.Errorf("short body: got %s/%s, want nak/bad_header", got.Status, got.NakReason)
	}

	// Output on logs an output transaction for that output.
	hc.send(&sb.Command{Tag: 300, Code: sb.CmdOutput, Output: 3, Action: sb.ActionOn})
	if got := status(300); got.Status != sb.StatusOK {
		t.Fatalf("output 3 on: got %s/%s", got.Status, got.NakReason)
	}
	tx = expect[sb.Transaction](t, hc, 5*time.Second, nil)
	if tx.Type != sb.TranOutput || tx.Code != sb.OutputOn || tx.SourceType != sb.SourceOutput || tx.SourceNum != 3 {
		t.Errorf("after output on got %+v, want output/on from output 3", tx)
	}

	// A tag carried out before is counted as a duplicate and answered as
	// before, without acting again (the body differs here to prove it).
	generated := c.Stats().Generated
	hc.send(&sb.Command{Tag: 300, Code: sb.CmdOutput, Output: 3, Action: sb.ActionOff})
	if got := status(300); got.Status != sb.StatusOK {
		t.Errorf("duplicate tag: got %s/%s, want ok", got.Status, got.NakReason)
	}
	s := c.Stats()
	if s.DuplicateCommands != 1 {
		t.Errorf("duplicate commands = %d, want 1", s.DuplicateCommands)
	}
	if s.Generated != generated {
		t.Errorf("the duplicate logged %d transactions, want none", s.Generated-generated)
	}
	// A tag refused before is decided again: still out of range.
	hc.send(&sb.Command{Tag: 104, Code: sb.CmdOutput, Output: 9, Action: sb.ActionOn})
	if got := status(104); got.NakReason != sb.NakOutOfRange {
		t.Errorf("repeated refused tag: got %s/%s, want nak/out_of_range", got.Status, got.NakReason)
	}
	s = c.Stats()
	if s.CommandsOK != 6 || s.CommandsNAK != 8 || s.DuplicateCommands != 2 {
		t.Errorf("commands ok/nak/dup = %d/%d/%d, want 6/8/2", s.CommandsOK, s.CommandsNAK, s.DuplicateCommands)
	}
	cmds := c.Commands()
	if len(cmds) != 14 || cmds[0].Tag != 100 || !cmds[len(cmds)-1].Duplicate {
		t.Errorf("command log: %d entries (first tag %d), want 14 from tag 100 ending with a duplicate", len(cmds), cmds[0].Tag)
	}
}

func TestMomentaryUnlockCyclesTheDoor(t *testing.T) {
	h := newTestHost(t, fastTiming)
	h.autoAck.Store(true)
	c := sim.NewController(testConfig(t, h.addr(), "DOOR1"))
	start(t, c)
	hc := h.next(5 * time.Second)

	hc.send(&sb.Command{Tag: 1, Code: sb.CmdMomentaryUnlock, Door: 2, Seconds: 1})
	if got := expect(t, hc, 5*time.Second, func(s sb.CommandStatus) bool { return s.Tag == 1 }); got.Status != sb.StatusOK {
		t.Fatalf("unlock: got %s/%s", got.Status, got.NakReason)
	}
	var codes []string
	for done := false; !done; {
		tx := expect[sb.Transaction](t, hc, 5*time.Second, nil)
		if tx.Type != sb.TranDoor || tx.SourceType != sb.SourceDoor || tx.SourceNum != 2 {
			t.Fatalf("got %+v, want a transaction of door 2", tx)
		}
		codes = append(codes, sb.CodeName(tx.Type, tx.Code))
		switch {
		case len(codes) == 2 && codes[1] == "locked": // never opened
			done = true
		case len(codes) == 4:
			done = true
		}
	}
	got := strings.Join(codes, ",")
	if got != "unlocked,locked" && got != "unlocked,opened,locked,secure" {
		t.Fatalf("door cycle %s, want unlocked,[opened,]locked[,secure]", got)
	}
	waitFor(t, 5*time.Second, "door cycle complete", func() bool { return c.Pending() == 0 && c.Stats().Unacked == 0 })
}

func TestHeartbeatPingWhenIdle(t *testing.T) {
	h := newTestHost(t, sb.Timing{Handshake: 2 * time.Second, Heartbeat: 100 * time.Millisecond, OfflineTime: 2 * time.Second})
	c := sim.NewController(testConfig(t, h.addr(), "PING1"))
	start(t, c)
	hc := h.next(5 * time.Second)
	expect[sb.Ping](t, hc, 2*time.Second, nil)
	expect[sb.Ping](t, hc, 2*time.Second, nil)
	if s := c.Stats(); s.PingsSent < 2 || s.Offline != 0 || !s.Connected {
		t.Fatalf("stats %+v, want 2+ pings, still connected", s)
	}
}

func TestReconnectWhenHostSilent(t *testing.T) {
	h := newTestHost(t, sb.Timing{Handshake: 2 * time.Second, Heartbeat: 50 * time.Millisecond, OfflineTime: 200 * time.Millisecond})
	h.silent.Store(true)
	c := sim.NewController(testConfig(t, h.addr(), "SILENT1"))
	start(t, c)
	hc := h.next(5 * time.Second)
	bye := expect[sb.Bye](t, hc, 3*time.Second, nil)
	if bye.Reason != sb.ByeHeartbeat {
		t.Fatalf("bye reason %s, want heartbeat_timeout", bye.Reason)
	}
	if d := time.Since(hc.at); d < 150*time.Millisecond {
		t.Fatalf("controller gave up after %v, before the offline time", d)
	}
	h.silent.Store(false)
	h.next(5 * time.Second)
	waitFor(t, 5*time.Second, "second session", func() bool { s := c.Stats(); return s.Sessions == 2 && s.Connected })
	if s := c.Stats(); s.Offline < 1 || s.Reconnects < 1 {
		t.Fatalf("stats %+v, want an offline and a reconnect", s)
	}
}

func TestRejectRetryAfterHonoured(t *testing.T) {
	h := newTestHost(t, fastTiming)
	h.rejectNext(sb.Reject{Reason: sb.RejectBusy, RetryAfterMS: 300})
	c := sim.NewController(testConfig(t, h.addr(), "REJ1"))
	start(t, c)
	first := h.next(5 * time.Second)
	second := h.next(5 * time.Second)
	if d := second.at.Sub(first.at); d < 300*time.Millisecond {
		t.Fatalf("reconnected %v after a reject asking for 300ms", d)
	}
	waitFor(t, 5*time.Second, "session after reject", func() bool { return c.Stats().Connected })
	if s := c.Stats(); s.Rejected != 1 {
		t.Fatalf("rejected = %d, want 1", s.Rejected)
	}
}

func TestByeReconnectAfterHonoured(t *testing.T) {
	h := newTestHost(t, fastTiming)
	c := sim.NewController(testConfig(t, h.addr(), "BYE1"))
	start(t, c)
	first := h.next(5 * time.Second)
	sent := time.Now()
	first.send(&sb.Bye{Reason: sb.ByeDraining, ReconnectAfterMS: 300})
	second := h.next(5 * time.Second)
	if d := second.at.Sub(sent); d < 300*time.Millisecond {
		t.Fatalf("reconnected %v after a bye asking for 300ms", d)
	}
}

func TestRestartStartsANewEpoch(t *testing.T) {
	h := newTestHost(t, fastTiming)
	c := sim.NewController(testConfig(t, h.addr(), "BOOT1"))
	start(t, c)
	hc := h.next(5 * time.Second)
	c.Generate(3)
	expectTxs(t, hc, 3)
	hc.ack(2)
	waitFor(t, 5*time.Second, "ack", func() bool { return c.Stats().LastAcked == 2 })

	c.Restart()
	hc2 := h.next(5 * time.Second)
	if hc2.hello.BootEpoch <= 1000 || hc2.hello.Log.LastLogged != 0 {
		t.Fatalf("hello after restart: epoch %d log %+v, want a later epoch and an empty log", hc2.hello.BootEpoch, hc2.hello.Log)
	}
	c.Generate(2)
	wantSeqs(t, expectTxs(t, hc2, 2), 1, 2)
	hc2.ack(2)
	hc2.send(&sb.TranAck{BootEpoch: 1000, LastSeq: 3}) // an ack for the old epoch changes nothing
	waitFor(t, 5*time.Second, "new epoch acked", func() bool { return c.Stats().LastAcked == 2 && c.Stats().Unacked == 0 })
	if s := c.Stats(); s.LostOnRestart != 1 || s.Generated != 5 || s.Acked != 4 {
		t.Fatalf("stats %+v, want 1 lost on restart, 5 generated, 4 acked", s)
	}
}

func TestCommandLatencyAndRandomNAKs(t *testing.T) {
	h := newTestHost(t, fastTiming)
	cfg := testConfig(t, h.addr(), "NAK1")
	cfg.NakRate = 1
	cfg.CommandLatency = 200 * time.Millisecond
	c := sim.NewController(cfg)
	start(t, c)
	hc := h.next(5 * time.Second)
	for tag := uint32(1); tag <= 8; tag++ {
		sent := time.Now()
		hc.send(&sb.Command{Tag: tag, Code: sb.CmdSetTime, TimeMS: time.Now().UnixMilli()})
		got := expect(t, hc, 5*time.Second, func(s sb.CommandStatus) bool { return s.Tag == tag })
		if d := time.Since(sent); d < 200*time.Millisecond {
			t.Fatalf("answer after %v, want the 200ms latency", d)
		}
		if got.Status != sb.StatusNAK || (got.NakReason != sb.NakBusy && got.NakReason != sb.NakContentError) {
			t.Fatalf("tag %d: got %s/%s, want a random nak busy or content_error", tag, got.Status, got.NakReason)
		}
	}
	// Range checks come before the random NAK: a bad door is out_of_range.
	hc.send(&sb.Command{Tag: 99, Code: sb.CmdMomentaryUnlock, Door: 99})
	if got := expect(t, hc, 5*time.Second, func(s sb.CommandStatus) bool { return s.Tag == 99 }); got.NakReason != sb.NakOutOfRange {
		t.Fatalf("door 99 with nak rate 1: got %s, want out_of_range", got.NakReason)
	}
	if s := c.Stats(); s.CommandsNAK != 9 || s.CommandsOK != 0 || s.Generated != 0 {
		t.Fatalf("stats %+v, want 9 naks and no effect logged", s)
	}
}

func TestHandshakeTimeoutReconnects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t, ln.Addr().String(), "MUTE1")
	cfg.HandshakeTimeout = 200 * time.Millisecond
	c := sim.NewController(cfg)
	start(t, c)
	var accepted []time.Time
	for len(accepted) < 2 {
		conn, err := ln.Accept() // never welcomes
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		accepted = append(accepted, time.Now())
	}
	if d := accepted[1].Sub(accepted[0]); d < 200*time.Millisecond {
		t.Fatalf("second connect %v after the first, before the handshake timeout", d)
	}
	if s := c.Stats(); s.Sessions != 0 || s.Reconnects < 1 || s.Connected {
		t.Fatalf("stats %+v, want no session and a reconnect", s)
	}
}
