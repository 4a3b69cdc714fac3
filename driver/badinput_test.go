package driver_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/sim"
)

// header builds a frame header.
func header(version byte, t scpbridge.FrameType, length uint16) []byte {
	h := []byte{scpbridge.Magic0, scpbridge.Magic1, version, byte(t), 0, 0, 0, 0}
	binary.BigEndian.PutUint16(h[6:], length)
	return h
}

// expectClosed waits until the driver closes r's connection.
func expectClosed(t *testing.T, name string, r *raw) {
	t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, r.conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("%s: connection still open", name)
	}
	r.conn.Close()
}

// TestBadInput: garbage, an oversized length, a truncated frame, a frame
// before hello, a handshake that never finishes, an invalid serial and an
// unsupported version are each closed with their reason, while a good
// controller keeps being served.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	d := e.startDriver("d1", func(o *driver.Options) {
		o.Timing = scpbridge.Timing{Handshake: 300 * time.Millisecond, Heartbeat: 500 * time.Millisecond, OfflineTime: 3 * time.Second}
	})
	addr := d.Addr().String()
	good := sim.NewController(simConfig(addr, "GOOD1"))
	good.SetRate(200)
	runController(t, good)
	waitSession(t, d, "GOOD1")

	cases := []struct {
		name string
		send func(r *raw)
	}{
		{"garbage", func(r *raw) { r.writeBytes([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) }},
		{"oversized length", func(r *raw) { r.writeBytes(header(scpbridge.Version, scpbridge.FrameHello, 0xffff)) }},
		{"truncated frame", func(r *raw) {
			r.writeBytes(append(header(scpbridge.Version, scpbridge.FrameHello, 40), "\x05ABCDE"...))
			_ = r.conn.(*net.TCPConn).CloseWrite()
		}},
		{"transaction before hello", func(r *raw) {
			r.write(&scpbridge.Transaction{Seq: 1, Type: scpbridge.TranDoor, Code: scpbridge.DoorSecure})
		}},
		{"no hello", func(*raw) {}},
	}
	for _, c := range cases {
		r := dialRaw(t, addr)
		c.send(r)
		expectClosed(t, c.name, r)
	}

	// An invalid serial and an unsupported version get a reject.
	r := dialRaw(t, addr)
	r.write(&scpbridge.Hello{Serial: "bad.serial", BootEpoch: 1})
	if ft, err := r.next(2 * time.Second); err != nil || ft != scpbridge.FrameReject || r.cs.Reject.Reason != scpbridge.RejectBadSerial {
		t.Errorf("invalid serial: got %s %+v, %v; want reject bad_serial", ft, r.cs.Reject, err)
	}
	expectClosed(t, "invalid serial", r)
	r = dialRaw(t, addr)
	r.writeBytes(append(header(0x20, scpbridge.FrameHello, 0), make([]byte, 0)...))
	if ft, err := r.next(2 * time.Second); err != nil || ft != scpbridge.FrameReject || r.cs.Reject.Reason != scpbridge.RejectUnsupportedVersion {
		t.Errorf("version 2.0: got %s %+v, %v; want reject unsupported_version", ft, r.cs.Reject, err)
	}
	expectClosed(t, "unsupported version", r)

	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		st := d.Stats()
		want := map[scpgate.CloseReason]uint64{
			scpgate.ReasonProtocolError:    4,
			scpgate.ReasonHandshakeTimeout: 1,
			scpgate.ReasonRejected:         2,
		}
		for reason, n := range want {
			if got := st.Closed(reason); got != n {
				return fmt.Errorf("closed %s: %d, want %d (all: %v)", reason, got, n, st.Closes)
			}
		}
		if st.Rejected(scpbridge.RejectBadSerial) != 1 || st.Rejected(scpbridge.RejectUnsupportedVersion) != 1 {
			return fmt.Errorf("rejects %v, want one bad_serial and one unsupported_version", st.Rejects)
		}
		return nil
	})

	// The good controller was served throughout.
	acked := good.Stats().Acked
	good.SetRate(0)
	waitAcked(t, 10*time.Second, good)
	if acked == 0 {
		t.Errorf("good controller had nothing acknowledged during the bad input")
	}
	if n := good.Stats().Sessions; n != 1 {
		t.Errorf("good controller needed %d sessions, want 1", n)
	}
	checkExactlyOnce(t, readEvents(t, e.js), good)
}

// TestHeartbeat: the driver pings an idle controller, and closes one that
// stops answering with heartbeat_timeout (bye heartbeat).
func TestHeartbeat(t *testing.T) {
	e := newEnv(t)
	d := e.startDriver("d1", func(o *driver.Options) {
		o.Timing = scpbridge.Timing{Handshake: time.Second, Heartbeat: 200 * time.Millisecond, OfflineTime: 800 * time.Millisecond}
	})
	r := dialRaw(t, d.Addr().String())
	r.hello("HB1", 1)
	if w := r.cs.Welcome; w.HeartbeatMS != 200 || w.OfflineMS != 800 {
		t.Errorf("welcome %+v, want heartbeat 200 ms, offline 800 ms", w)
	}
	start := time.Now()
	if ft, err := r.next(time.Second); err != nil || ft != scpbridge.FramePing {
		t.Fatalf("idle session: got %s, %v; want a ping", ft, err)
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Errorf("first ping after %s, want about one heartbeat (200ms)", el)
	}
	// Stay silent: no pong, nothing.
	var bye *scpbridge.Bye
	for {
		ft, err := r.next(3 * time.Second)
		if err != nil {
			break
		}
		if ft == scpbridge.FrameBye {
			b := r.cs.Bye
			bye = &b
		}
	}
	if bye == nil || bye.Reason != scpbridge.ByeHeartbeat {
		t.Errorf("silent controller got bye %+v, want heartbeat_timeout", bye)
	}
	r.conn.Close()
	natstest.CheckFor(t, 3*time.Second, 10*time.Millisecond, func() error {
		if n := d.Stats().Closed(scpgate.ReasonHeartbeatTimeout); n != 1 {
			return fmt.Errorf("closed heartbeat_timeout: %d", n)
		}
		return nil
	})
}

// TestSlowConsumer: a controller that stops reading (and floods pings, so
// the driver has answers to write) is closed as a slow consumer or on a
// write timeout, while the others keep getting their acks.
func TestSlowConsumer(t *testing.T) {
	e := newEnv(t)
	d := e.startDriver("d1", func(o *driver.Options) {
		o.SendQueue = 16
		o.WriteBuffer = 4096
		o.WriteTimeout = time.Second
	})
	addr := d.Addr().String()
	f := sim.NewFleet(sim.FleetConfig{Controller: simConfig(addr, ""), Count: 5, Ramp: 1000})
	f.SetRate(100)
	runFleet(t, f)

	r := dialRaw(t, addr)
	_ = r.conn.(*net.TCPConn).SetReadBuffer(4096)
	r.hello("FROZEN", 1)
	ping, _ := scpbridge.AppendFrame(nil, &scpbridge.Ping{Nonce: 1})
	batch := make([]byte, 0, len(ping)*1024)
	for range 1024 {
		batch = append(batch, ping...)
	}
	flood := make(chan error, 1)
	go func() {
		for {
			_ = r.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := r.conn.Write(batch); err != nil {
				flood <- err
				return
			}
		}
	}()
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		st := d.Stats()
		if st.Closed(scpgate.ReasonSlowConsumer)+st.Closed(scpgate.ReasonWriteError) != 1 {
			return fmt.Errorf("frozen controller not closed yet: %v", st.Closes)
		}
		return nil
	})
	r.conn.Close()
	<-flood

	f.SetRate(0)
	ctrls := f.Controllers()
	waitAcked(t, 10*time.Second, ctrls...)
	for _, c := range ctrls {
		if n := c.Stats().Sessions; n != 1 {
			t.Errorf("%s needed %d sessions, want 1", c.Serial(), n)
		}
	}
	st := d.Stats()
	t.Logf("closes %v", st.Closes)
}
