package scpbridge_test

import (
	"testing"
	"time"

	"github.com/scpgate/scpgate/scpbridge"
)

// cycleReader serves the same bytes forever.
type cycleReader struct {
	b   []byte
	off int
}

func (c *cycleReader) Read(p []byte) (int, error) {
	n := copy(p, c.b[c.off:])
	c.off = (c.off + n) % len(c.b)
	return n, nil
}

func benchTransaction() *scpbridge.Transaction {
	return &scpbridge.Transaction{Seq: 1201, TimeMS: exampleTimeMS, SourceType: scpbridge.SourceReader, SourceNum: 1,
		Type: scpbridge.TranAccess, Code: scpbridge.AccessGranted, Card: 123456789, Facility: 42}
}

func BenchmarkEncodeTransaction(b *testing.B) {
	tx := benchTransaction()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(mustFrame(tx))))
	for b.Loop() {
		var err error
		if buf, err = scpbridge.AppendFrame(buf[:0], tx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeTransaction reads and decodes frames from a buffer of
// 1,024 transactions (a mix of access, door and system) that repeats.
func BenchmarkDecodeTransaction(b *testing.B) {
	stream := transactionStream(1024)
	r := scpbridge.NewReader(&cycleReader{b: stream}, 0)
	var tx scpbridge.Transaction
	b.ReportAllocs()
	b.SetBytes(int64(len(stream) / 1024))
	for b.Loop() {
		_, payload, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		if err := tx.UnmarshalPayload(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHostReceiveTransaction is BenchmarkDecodeTransaction through
// the host session (state and serial checks included).
func BenchmarkHostReceiveTransaction(b *testing.B) {
	const n = 1 << 16
	stream := transactionStream(n)
	r := scpbridge.NewReader(&cycleReader{b: stream}, 0)
	now := time.Now()
	s := scpbridge.NewHostSession(scpbridge.Timing{}, now)
	h, payload := frame(b, helloMsg)
	if _, err := s.Receive(now, h, payload); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i++; i == n+1 { // the stream starts again at seq 1: a new session
			i = 1
			b.StopTimer()
			s = scpbridge.NewHostSession(scpbridge.Timing{}, now)
			hh, hp := frame(b, helloMsg)
			s.Receive(now, hh, hp)
			b.StartTimer()
		}
		h, payload, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Receive(now, h, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAckTracker adds transactions to a 256-slot window and confirms
// them in batches of 8, newest first (the order parallel stores may
// finish in). One op is one Add and one Confirm.
func BenchmarkAckTracker(b *testing.B) {
	a := scpbridge.NewAckTracker(256)
	var batch [8]uint64
	seq := uint32(0)
	b.ReportAllocs()
	for b.Loop() {
		seq++
		t, ok := a.Add(seq)
		if !ok {
			b.Fatalf("Add(%d) refused", seq)
		}
		batch[seq%8] = t
		if seq%8 == 7 {
			for i := 7; i >= 0; i-- {
				a.Confirm(batch[(int(seq)-7+i)%8])
			}
		}
	}
}
