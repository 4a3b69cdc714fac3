package driver_test

import (
	"strings"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/scpbridge"
)

// readCommand reads frames (answering pings) until a command arrives and
// returns it.
func (r *raw) readCommand(timeout time.Duration) scpbridge.Command {
	r.t.Helper()
	if _, err := r.until(scpbridge.FrameCommand, timeout); err != nil {
		r.t.Fatalf("read command: %v", err)
	}
	return r.cs.Command
}

// TestCommandBusyRetried: a command the controller answers NAK busy is
// sent again, same tag, after a backoff, and ends with the answer that
// follows; the retries are counted.
func TestCommandBusyRetried(t *testing.T) {
	w := newCmdWorld(t)
	d := w.startDriver("d1", func(o *driver.Options) {
		o.CommandBusyRetry = 50 * time.Millisecond
		o.CommandBusyRetryMax = 200 * time.Millisecond
	})
	r := dialRaw(t, d.Addr().String())
	r.hello("BUSY1", 1)
	waitSession(t, d, "BUSY1")

	resp := w.submit("BUSY1", unlock(1))
	var sentAt []time.Time
	for range 3 {
		c := r.readCommand(5 * time.Second)
		sentAt = append(sentAt, time.Now())
		if c.Tag != uint32(resp.Seq) {
			t.Fatalf("command tag %d, want %d", c.Tag, resp.Seq)
		}
		r.write(&scpbridge.CommandStatus{Tag: c.Tag, Status: scpbridge.StatusNAK, NakReason: scpbridge.NakBusy, Detail: "log full"})
	}
	c := r.readCommand(5 * time.Second)
	r.write(&scpbridge.CommandStatus{Tag: c.Tag, Status: scpbridge.StatusOK})
	res := w.waitFinal(5*time.Second, resp.ID)[resp.ID]
	if res.Status != scpgate.StatusOK {
		t.Fatalf("result %+v, want ok after three busy answers", res)
	}
	if gap := sentAt[2].Sub(sentAt[1]); gap < 90*time.Millisecond {
		t.Errorf("third send %s after the second, want the doubled backoff (>= 100ms)", gap)
	}
	w.waitDrained("BUSY1")
	if st := d.CommandStats(); st.BusyRetries != 3 || st.Sent != 4 || st.OK != 1 || st.NAK != 0 {
		t.Errorf("stats %+v: want 3 busy retries, 4 sent, 1 ok", st)
	}
}

// TestCommandBusyUntilExpired: a command still busy when it expires ends
// nak, reason busy, and the queue moves on.
func TestCommandBusyUntilExpired(t *testing.T) {
	w := newCmdWorld(t)
	d := w.startDriver("d1", func(o *driver.Options) {
		o.CommandBusyRetry = 100 * time.Millisecond
		o.CommandBusyRetryMax = 300 * time.Millisecond
	})
	r := dialRaw(t, d.Addr().String())
	r.hello("BUSY2", 1)
	waitSession(t, d, "BUSY2")

	req := unlock(1)
	req.TTL = "1s"
	resp := w.submit("BUSY2", req)
	deadline := time.Now().Add(5 * time.Second)
	sends := 0
	for time.Now().Before(deadline) {
		t, err := r.next(time.Until(deadline))
		if err != nil {
			break
		}
		if t == scpbridge.FramePing {
			r.write(&scpbridge.Pong{Nonce: r.cs.Ping.Nonce})
		}
		if t == scpbridge.FrameCommand {
			sends++
			r.write(&scpbridge.CommandStatus{Tag: r.cs.Command.Tag, Status: scpbridge.StatusNAK, NakReason: scpbridge.NakBusy})
		}
		if time.Now().After(resp.Expires.Add(500 * time.Millisecond)) {
			break
		}
	}
	res := w.waitFinal(5*time.Second, resp.ID)[resp.ID]
	if res.Status != scpgate.StatusNAK || res.Reason != "busy" || !strings.Contains(res.Detail, "expired") {
		t.Fatalf("result %+v, want nak busy once expired", res)
	}
	if sends < 3 {
		t.Errorf("sent %d times within its 1s TTL, want at least 3", sends)
	}
	w.waitDrained("BUSY2")
}
