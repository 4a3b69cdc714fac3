package scpbridge_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scpgate/scpgate/scpbridge"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// frame splits an encoded message into the header and payload Receive takes.
func frame(t testing.TB, m scpbridge.Message) (scpbridge.Header, []byte) {
	t.Helper()
	b, err := scpbridge.AppendFrame(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	h, err := scpbridge.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h, b[scpbridge.HeaderLen:]
}

// unknownFrame is a frame of a type version 1.0 does not define.
func unknownFrame() (scpbridge.Header, []byte) {
	return scpbridge.Header{Version: 0x11, Type: 0x55, Length: 3}, []byte{1, 2, 3}
}

type receiver interface {
	Receive(time.Time, scpbridge.Header, []byte) (scpbridge.FrameType, error)
}

func recv(t testing.TB, s receiver, now time.Time, m scpbridge.Message) error {
	t.Helper()
	h, payload := frame(t, m)
	ft, err := s.Receive(now, h, payload)
	if ft != m.FrameType() {
		t.Errorf("Receive returned type %s, want %s", ft, m.FrameType())
	}
	return err
}

func mustRecv(t testing.TB, s receiver, now time.Time, m scpbridge.Message) {
	t.Helper()
	if err := recv(t, s, now, m); err != nil {
		t.Fatalf("receive %s: %v", m.FrameType(), err)
	}
}

func wantUnexpected(t *testing.T, err error, frame, state string) {
	t.Helper()
	checkWraps(t, err, scpbridge.ErrUnexpectedFrame)
	if err != nil && (!strings.Contains(err.Error(), frame) || !strings.Contains(err.Error(), "state "+state)) {
		t.Errorf("got %q, want it to name %s and state %s", err, frame, state)
	}
}

var helloMsg = &scpbridge.Hello{Serial: "SCP-1", Model: "EP4502", BootEpoch: 3, Log: scpbridge.LogStatus{Capacity: 100}}

// establishedHost returns a host session that has received hello at t0.
func establishedHost(t testing.TB) (*scpbridge.HostSession, time.Time) {
	s := scpbridge.NewHostSession(scpbridge.Timing{}, t0)
	mustRecv(t, s, t0, helloMsg)
	return s, t0
}

func TestTimingWithDefaults(t *testing.T) {
	tests := []struct {
		in, want scpbridge.Timing
	}{
		{scpbridge.Timing{}, scpbridge.Timing{Handshake: 10 * time.Second, Heartbeat: 5 * time.Second, OfflineTime: 15 * time.Second}},
		{scpbridge.Timing{Heartbeat: 2 * time.Second}, scpbridge.Timing{Handshake: 10 * time.Second, Heartbeat: 2 * time.Second, OfflineTime: 6 * time.Second}},
		{scpbridge.Timing{Heartbeat: 2 * time.Second, OfflineTime: time.Second}, scpbridge.Timing{Handshake: 10 * time.Second, Heartbeat: 2 * time.Second, OfflineTime: 6 * time.Second}},
		{scpbridge.Timing{Handshake: time.Second, Heartbeat: time.Second, OfflineTime: 4 * time.Second}, scpbridge.Timing{Handshake: time.Second, Heartbeat: time.Second, OfflineTime: 4 * time.Second}},
	}
	for _, tt := range tests {
		if got := tt.in.WithDefaults(); got != tt.want {
			t.Errorf("%+v.WithDefaults() = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestHostSessionHandshake(t *testing.T) {
	s := scpbridge.NewHostSession(scpbridge.Timing{}, t0)
	if s.State() != scpbridge.StateHandshake {
		t.Fatalf("state %s, want handshake", s.State())
	}
	if got, want := s.Deadline(), t0.Add(10*time.Second); !got.Equal(want) {
		t.Errorf("handshake deadline %v, want %v", got, want)
	}
	if s.PingDue(t0.Add(time.Hour)) {
		t.Error("PingDue during the handshake, want false")
	}
	// Frames that are not hello end the session before it starts.
	early := []scpbridge.Message{
		&scpbridge.Transaction{Seq: 1, Type: scpbridge.TranDoor, Code: 1},
		&scpbridge.CommandStatus{Tag: 1}, &scpbridge.Ping{}, &scpbridge.Pong{},
		&scpbridge.Bye{Reason: scpbridge.ByeShutdown},
	}
	for _, m := range early {
		wantUnexpected(t, recv(t, s, t0, m), m.FrameType().String(), "handshake")
	}
	// A hello that does not decode is an error and leaves the state alone.
	h, _ := frame(t, helloMsg)
	if _, err := s.Receive(t0, h, []byte{0}); !errors.Is(err, scpbridge.ErrBadField) {
		t.Errorf("bad hello: got %v, want ErrBadField", err)
	}
	if s.State() != scpbridge.StateHandshake {
		t.Errorf("state %s after a bad hello, want handshake", s.State())
	}

	rx := t0.Add(2 * time.Second)
	mustRecv(t, s, rx, helloMsg)
	if s.State() != scpbridge.StateEstablished || s.Hello.Serial != "SCP-1" || s.Hello.BootEpoch != 3 {
		t.Fatalf("after hello: state %s hello %+v", s.State(), s.Hello)
	}
	if got, want := s.Deadline(), rx.Add(15*time.Second); !got.Equal(want) {
		t.Errorf("deadline after hello %v, want %v", got, want)
	}
	w := s.Welcome(42, rx)
	want := scpbridge.Welcome{SessionID: 42, HeartbeatMS: 5000, OfflineMS: 15000, HostTimeMS: rx.UnixMilli()}
	if *w != want {
		t.Errorf("Welcome = %+v, want %+v", *w, want)
	}
	if _, err := scpbridge.AppendFrame(nil, w); err != nil {
		t.Errorf("the session's welcome does not encode: %v", err)
	}
}

func TestHostSessionEstablished(t *testing.T) {
	s, now := establishedHost(t)
	for _, m := range []scpbridge.Message{
		helloMsg, &scpbridge.Welcome{HeartbeatMS: 1, OfflineMS: 2}, &scpbridge.Reject{},
		&scpbridge.TranAck{}, &scpbridge.Command{Code: scpbridge.CmdReset},
	} {
		wantUnexpected(t, recv(t, s, now, m), m.FrameType().String(), "established")
	}

	tx := &scpbridge.Transaction{Seq: 10, Type: scpbridge.TranAccess, Code: scpbridge.AccessGranted, Card: 5, Facility: 6}
	mustRecv(t, s, now, tx)
	if s.Tx != *tx {
		t.Errorf("Tx = %+v, want %+v", s.Tx, *tx)
	}
	mustRecv(t, s, now, &scpbridge.Transaction{Seq: 12, Type: scpbridge.TranDoor, Code: scpbridge.DoorOpened})
	for _, seq := range []uint32{12, 11} {
		err := recv(t, s, now, &scpbridge.Transaction{Seq: seq, Type: scpbridge.TranDoor, Code: 1})
		checkWraps(t, err, scpbridge.ErrBadField)
		if err != nil && !strings.Contains(err.Error(), "does not follow 12") {
			t.Errorf("seq %d after 12: got %q", seq, err)
		}
		// The session is ending; keep the later checks on a fresh one.
		s, now = establishedHost(t)
		mustRecv(t, s, now, &scpbridge.Transaction{Seq: 12, Type: scpbridge.TranDoor, Code: scpbridge.DoorOpened})
	}

	mustRecv(t, s, now, &scpbridge.CommandStatus{Tag: 9, Status: scpbridge.StatusNAK, NakReason: scpbridge.NakBusy})
	if s.Status.Tag != 9 || s.Status.NakReason != scpbridge.NakBusy {
		t.Errorf("Status = %+v", s.Status)
	}
	mustRecv(t, s, now, &scpbridge.Ping{Nonce: 77})
	mustRecv(t, s, now, &scpbridge.Pong{Nonce: 78})
	if s.Ping.Nonce != 77 || s.Pong.Nonce != 78 {
		t.Errorf("Ping %+v Pong %+v", s.Ping, s.Pong)
	}
}

func TestSessionsSkipUnknownFrames(t *testing.T) {
	host := scpbridge.NewHostSession(scpbridge.Timing{}, t0)
	ctl := scpbridge.NewControllerSession(scpbridge.Timing{}, t0)
	for i, s := range []interface {
		receiver
		UnknownFrames() uint64
		State() scpbridge.State
	}{host, ctl} {
		for n := uint64(1); n <= 3; n++ {
			h, payload := unknownFrame()
			ft, err := s.Receive(t0, h, payload)
			if err != nil || ft != 0x55 {
				t.Fatalf("side %d: unknown frame: got %s %v, want frame(0x55) and nil", i, ft, err)
			}
			if s.UnknownFrames() != n || s.State() != scpbridge.StateHandshake {
				t.Errorf("side %d: UnknownFrames %d state %s, want %d handshake", i, s.UnknownFrames(), s.State(), n)
			}
		}
	}
	s, now := establishedHost(t)
	h, payload := unknownFrame()
	if _, err := s.Receive(now, h, payload); err != nil || s.UnknownFrames() != 1 || s.State() != scpbridge.StateEstablished {
		t.Errorf("established: err %v unknown %d state %s", err, s.UnknownFrames(), s.State())
	}
}

func TestHostSessionByeCloses(t *testing.T) {
	s, now := establishedHost(t)
	mustRecv(t, s, now, &scpbridge.Bye{Reason: scpbridge.ByeShutdown, Text: "power down"})
	if s.State() != scpbridge.StateClosed || s.Bye.Reason != scpbridge.ByeShutdown || s.Bye.Text != "power down" {
		t.Fatalf("after bye: state %s bye %+v", s.State(), s.Bye)
	}
	for _, m := range []scpbridge.Message{&scpbridge.Transaction{Seq: 99, Type: scpbridge.TranDoor, Code: 1}, &scpbridge.Ping{}, &scpbridge.Bye{Reason: 1}, helloMsg} {
		wantUnexpected(t, recv(t, s, now, m), m.FrameType().String(), "closed")
	}
}

func TestHostSessionLiveness(t *testing.T) {
	s, now := establishedHost(t)
	s.Sent(now)
	for _, tt := range []struct {
		after time.Duration
		due   bool
	}{{0, false}, {4999 * time.Millisecond, false}, {5 * time.Second, true}, {time.Minute, true}} {
		if got := s.PingDue(now.Add(tt.after)); got != tt.due {
			t.Errorf("PingDue(+%v) = %v, want %v", tt.after, got, tt.due)
		}
	}
	s.Sent(now.Add(5 * time.Second))
	if s.PingDue(now.Add(9 * time.Second)) {
		t.Error("PingDue 4 s after the last send, want false")
	}
	// Every received frame moves the deadline; silence does not.
	rx := now
	for i, gap := range []time.Duration{time.Second, 4 * time.Second, 14 * time.Second} {
		rx = rx.Add(gap)
		mustRecv(t, s, rx, &scpbridge.Ping{Nonce: uint64(i)})
		if got, want := s.Deadline(), rx.Add(15*time.Second); !got.Equal(want) {
			t.Errorf("after a ping at +%v: deadline %v, want %v", rx.Sub(now), got, want)
		}
	}
	h, payload := unknownFrame()
	rx = rx.Add(time.Second)
	s.Receive(rx, h, payload)
	if got, want := s.Deadline(), rx.Add(15*time.Second); !got.Equal(want) {
		t.Errorf("after an unknown frame: deadline %v, want %v", got, want)
	}
}

func TestControllerSession(t *testing.T) {
	c := scpbridge.NewControllerSession(scpbridge.Timing{Handshake: 3 * time.Second}, t0)
	if got, want := c.Deadline(), t0.Add(3*time.Second); !got.Equal(want) {
		t.Errorf("handshake deadline %v, want %v", got, want)
	}
	for _, m := range []scpbridge.Message{&scpbridge.TranAck{}, &scpbridge.Command{Code: scpbridge.CmdReset}, &scpbridge.Ping{}, &scpbridge.Pong{}, helloMsg} {
		wantUnexpected(t, recv(t, c, t0, m), m.FrameType().String(), "handshake")
	}
	rx := t0.Add(time.Second)
	mustRecv(t, c, rx, &scpbridge.Welcome{SessionID: 8, HeartbeatMS: 2000, OfflineMS: 7000, HostTimeMS: 1})
	if c.State() != scpbridge.StateEstablished || c.Welcome.SessionID != 8 {
		t.Fatalf("after welcome: state %s welcome %+v", c.State(), c.Welcome)
	}
	if got, want := c.Deadline(), rx.Add(7*time.Second); !got.Equal(want) {
		t.Errorf("deadline from the welcome's offline time: %v, want %v", got, want)
	}
	c.Sent(rx)
	if c.PingDue(rx.Add(1999*time.Millisecond)) || !c.PingDue(rx.Add(2*time.Second)) {
		t.Error("PingDue does not follow the welcome's 2 s heartbeat")
	}
	for _, m := range []scpbridge.Message{&scpbridge.Welcome{HeartbeatMS: 1, OfflineMS: 2}, &scpbridge.Reject{}, helloMsg,
		&scpbridge.Transaction{Seq: 1, Type: scpbridge.TranDoor, Code: 1}, &scpbridge.CommandStatus{}} {
		wantUnexpected(t, recv(t, c, rx, m), m.FrameType().String(), "established")
	}
	mustRecv(t, c, rx, &scpbridge.TranAck{BootEpoch: 3, LastSeq: 40})
	cmd := &scpbridge.Command{Tag: 5, Code: scpbridge.CmdAccessLevel, Level: 2, Doors: []uint16{1, 2}}
	mustRecv(t, c, rx, cmd)
	mustRecv(t, c, rx, &scpbridge.Ping{Nonce: 3})
	mustRecv(t, c, rx, &scpbridge.Pong{Nonce: 4})
	if c.Ack.LastSeq != 40 || !sameMessage(&c.Command, cmd) || c.Ping.Nonce != 3 || c.Pong.Nonce != 4 {
		t.Errorf("decoded: ack %+v command %+v ping %+v pong %+v", c.Ack, c.Command, c.Ping, c.Pong)
	}
	mustRecv(t, c, rx, &scpbridge.Bye{Reason: scpbridge.ByeDraining, ReconnectAfterMS: 1234})
	if c.State() != scpbridge.StateClosed || c.Bye.ReconnectAfterMS != 1234 {
		t.Errorf("after bye: state %s bye %+v", c.State(), c.Bye)
	}
	wantUnexpected(t, recv(t, c, rx, &scpbridge.TranAck{}), "tran_ack", "closed")
}

func TestControllerSessionRejectAndEarlyBye(t *testing.T) {
	c := scpbridge.NewControllerSession(scpbridge.Timing{}, t0)
	mustRecv(t, c, t0, &scpbridge.Reject{Reason: scpbridge.RejectBusy, RetryAfterMS: 5000, Text: "full"})
	if c.State() != scpbridge.StateClosed || c.Reject.RetryAfterMS != 5000 || c.Reject.Reason != scpbridge.RejectBusy {
		t.Errorf("after reject: state %s reject %+v", c.State(), c.Reject)
	}
	wantUnexpected(t, recv(t, c, t0, &scpbridge.Welcome{HeartbeatMS: 1, OfflineMS: 2}), "welcome", "closed")

	c = scpbridge.NewControllerSession(scpbridge.Timing{}, t0)
	mustRecv(t, c, t0, &scpbridge.Bye{Reason: scpbridge.ByeDraining, ReconnectAfterMS: 100})
	if c.State() != scpbridge.StateClosed {
		t.Errorf("bye during the handshake: state %s, want closed", c.State())
	}

	c = scpbridge.NewControllerSession(scpbridge.Timing{}, t0)
	h, _ := frame(t, &scpbridge.Welcome{HeartbeatMS: 1, OfflineMS: 2})
	if _, err := c.Receive(t0, h, make([]byte, 24)); !errors.Is(err, scpbridge.ErrBadField) || c.State() != scpbridge.StateHandshake {
		t.Errorf("welcome with zero heartbeat: got %v state %s, want ErrBadField and handshake", err, c.State())
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[scpbridge.State]string{
		scpbridge.StateHandshake: "handshake", scpbridge.StateEstablished: "established", scpbridge.StateClosed: "closed",
	} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", s, got, want)
		}
	}
}
