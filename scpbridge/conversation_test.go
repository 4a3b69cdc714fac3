package scpbridge_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/scpgate/scpgate/scpbridge"
)

// conn pairs a socket with a frame reader and a write buffer.
type conn struct {
	c   net.Conn
	r   *scpbridge.Reader
	buf []byte
}

func newConn(c net.Conn) *conn { return &conn{c: c, r: scpbridge.NewReader(c, 0)} }

func (c *conn) send(ms ...scpbridge.Message) error {
	c.buf = c.buf[:0]
	for _, m := range ms {
		var err error
		if c.buf, err = scpbridge.AppendFrame(c.buf, m); err != nil {
			return err
		}
	}
	c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.c.Write(c.buf)
	return err
}

// runHost serves one controller connection as the protocol asks: welcome
// after hello, a cumulative ack after each batch of stored transactions,
// one command, and a close after bye. It returns the stored serials.
func runHost(c *conn, stored chan<- uint32) error {
	defer c.c.Close()
	now := time.Now()
	s := scpbridge.NewHostSession(scpbridge.Timing{Handshake: 5 * time.Second}, now)
	acks := scpbridge.NewAckTracker(4)
	var tickets []uint64
	for {
		c.c.SetReadDeadline(s.Deadline())
		h, payload, err := c.r.Next()
		if err != nil {
			return fmt.Errorf("host read: %w", err)
		}
		ft, err := s.Receive(time.Now(), h, payload)
		if err != nil {
			return fmt.Errorf("host receive: %w", err)
		}
		switch ft {
		case scpbridge.FrameHello:
			if err := c.send(s.Welcome(1, time.Now()), &scpbridge.Command{Tag: 1, Code: scpbridge.CmdMomentaryUnlock, Door: 1, Seconds: 5}); err != nil {
				return err
			}
		case scpbridge.FrameTransaction:
			ticket, ok := acks.Add(s.Tx.Seq)
			if !ok {
				return fmt.Errorf("host: window refused seq %d", s.Tx.Seq)
			}
			tickets = append(tickets, ticket)
			stored <- s.Tx.Seq
			if !acks.Full() && c.r.Buffered() > 0 {
				continue // batch: ack once the buffered frames are in
			}
			// Confirm the batch newest first, as parallel stores may finish.
			var ack uint32
			for i := len(tickets) - 1; i >= 0; i-- {
				if seq, ok := acks.Confirm(tickets[i]); ok {
					ack = seq
				}
			}
			tickets = tickets[:0]
			if err := c.send(&scpbridge.TranAck{BootEpoch: s.Hello.BootEpoch, LastSeq: ack}); err != nil {
				return err
			}
		case scpbridge.FrameCommandStatus:
			if s.Status.Tag != 1 || s.Status.Status != scpbridge.StatusOK {
				return fmt.Errorf("host: status %+v", s.Status)
			}
		case scpbridge.FrameBye:
			return nil
		}
	}
}

// TestConversationOverTCP runs both session machines over a loopback
// socket: hello, welcome, transactions with cumulative acks, a command and
// its status, and bye.
func TestConversationOverTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const total = 25
	stored := make(chan uint32, total)
	hostErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			hostErr <- err
			return
		}
		hostErr <- runHost(newConn(c), stored)
	}()

	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := newConn(nc)
	if err := c.send(helloMsg); err != nil {
		t.Fatal(err)
	}
	s := scpbridge.NewControllerSession(scpbridge.Timing{Handshake: 5 * time.Second}, time.Now())
	next, acked, answered := uint32(1), uint32(0), false
	for acked < total || !answered {
		// Keep at most 4 unacknowledged transactions in flight.
		var batch []scpbridge.Message
		for ; s.State() == scpbridge.StateEstablished && next <= total && next-acked <= 4; next++ {
			batch = append(batch, &scpbridge.Transaction{Seq: next, TimeMS: int64(next), Type: scpbridge.TranDoor, Code: scpbridge.DoorOpened})
		}
		if err := c.send(batch...); err != nil {
			t.Fatal(err)
		}
		nc.SetReadDeadline(s.Deadline())
		h, payload, err := c.r.Next()
		if err != nil {
			t.Fatalf("controller read: %v", err)
		}
		ft, err := s.Receive(time.Now(), h, payload)
		if err != nil {
			t.Fatalf("controller receive: %v", err)
		}
		switch ft {
		case scpbridge.FrameTranAck:
			if s.Ack.LastSeq <= acked || s.Ack.BootEpoch != helloMsg.BootEpoch {
				t.Fatalf("ack %+v does not move past %d", s.Ack, acked)
			}
			acked = s.Ack.LastSeq
		case scpbridge.FrameCommand:
			if s.Command.Code != scpbridge.CmdMomentaryUnlock || s.Command.Door != 1 {
				t.Fatalf("command %+v", s.Command)
			}
			if err := c.send(&scpbridge.CommandStatus{Tag: s.Command.Tag}); err != nil {
				t.Fatal(err)
			}
			answered = true
		}
	}
	if err := c.send(&scpbridge.Bye{Reason: scpbridge.ByeShutdown}); err != nil {
		t.Fatal(err)
	}
	if err := <-hostErr; err != nil {
		t.Fatal(err)
	}
	for want := uint32(1); want <= total; want++ {
		if got := <-stored; got != want {
			t.Fatalf("stored seq %d, want %d", got, want)
		}
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after bye: got %v, want the host to close (EOF)", err)
	}
}
