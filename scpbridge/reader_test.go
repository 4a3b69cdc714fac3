package scpbridge_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/scpgate/scpgate/scpbridge"
)

// bufferSizes exercise both of the Reader's paths: frames that fit the
// buffer (peeked in place) and frames that do not (copied out).
var bufferSizes = []int{16, 40, 64, 0}

// readAll reads frames until an error and decodes each one.
func readAll(r *scpbridge.Reader) ([]scpbridge.Message, error) {
	var out []scpbridge.Message
	for {
		h, payload, err := r.Next()
		if err != nil {
			return out, err
		}
		m, err := scpbridge.Decode(h, payload)
		if err != nil {
			return out, fmt.Errorf("decode frame %d: %w", len(out), err)
		}
		out = append(out, m)
	}
}

func checkMessages(t *testing.T, got []scpbridge.Message, n int) {
	t.Helper()
	cases := goldenCases()
	if len(got) != n {
		t.Fatalf("got %d frames, want %d", len(got), n)
	}
	for i, m := range got {
		if !sameMessage(m, cases[i].msg) {
			t.Errorf("frame %d: got %+v, want %+v", i, m, cases[i].msg)
		}
	}
}

func TestReaderGoldenStream(t *testing.T) {
	stream := goldenStream()
	n := len(goldenCases())
	wrap := map[string]func(io.Reader) io.Reader{
		"plain":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data+err": iotest.DataErrReader,
	}
	for wname, w := range wrap {
		for _, size := range bufferSizes {
			t.Run(fmt.Sprintf("%s/buf%d", wname, size), func(t *testing.T) {
				r := scpbridge.NewReader(w(bytes.NewReader(stream)), size)
				got, err := readAll(r)
				if !errors.Is(err, io.EOF) || errors.Is(err, scpbridge.ErrTruncated) {
					t.Fatalf("after the last frame: got %v, want io.EOF", err)
				}
				checkMessages(t, got, n)
				if b := r.Buffered(); b != 0 {
					t.Errorf("Buffered() = %d at the end, want 0", b)
				}
			})
		}
	}
}

// TestReaderCutAtEveryOffset cuts a valid stream at every byte offset: the
// Reader returns the complete frames, then io.EOF at a frame boundary or
// ErrTruncated inside a frame, and never panics.
func TestReaderCutAtEveryOffset(t *testing.T) {
	stream := goldenStream()
	boundary := map[int]int{0: 0} // offset -> frames before it
	off := 0
	for i, c := range goldenCases() {
		off += len(mustFrame(c.msg))
		boundary[off] = i + 1
	}
	for _, size := range bufferSizes {
		for _, oneByte := range []bool{false, true} {
			t.Run(fmt.Sprintf("buf%d/onebyte=%v", size, oneByte), func(t *testing.T) {
				whole := 0
				for cut := 0; cut <= len(stream); cut++ {
					var src io.Reader = bytes.NewReader(stream[:cut])
					if oneByte {
						src = iotest.OneByteReader(src)
					}
					r := scpbridge.NewReader(src, size)
					got, err := readAll(r)
					_, _, again := r.Next()
					if n, ok := boundary[cut]; ok {
						whole = n
						if err != io.EOF || again != io.EOF {
							t.Fatalf("cut at %d (frame boundary): got %v, then %v; want io.EOF", cut, err, again)
						}
					} else if !errors.Is(err, scpbridge.ErrTruncated) || !errors.Is(again, scpbridge.ErrTruncated) {
						t.Fatalf("cut at %d (inside frame %d): got %v, then %v; want ErrTruncated", cut, whole, err, again)
					}
					checkMessages(t, got, whole)
				}
			})
		}
	}
}

// flakyReader fails once with errTimeout when the stream reaches failAt,
// as a connection with a read deadline would.
type flakyReader struct {
	b      []byte
	off    int
	failAt int
	failed bool
}

var errTimeout = errors.New("i/o timeout")

func (f *flakyReader) Read(p []byte) (int, error) {
	if f.off == f.failAt && !f.failed {
		f.failed = true
		return 0, errTimeout
	}
	if f.off >= len(f.b) {
		return 0, io.EOF
	}
	end := len(f.b)
	if !f.failed && f.failAt > f.off {
		end = f.failAt
	}
	n := copy(p, f.b[f.off:end])
	f.off += n
	return n, nil
}

// TestReaderResumesAfterReadError injects a read error (a deadline) at
// every offset: Next returns it, and calling Next again continues the
// stream without losing its framing, also for frames larger than the
// buffer.
func TestReaderResumesAfterReadError(t *testing.T) {
	stream := goldenStream()
	n := len(goldenCases())
	for _, size := range bufferSizes {
		t.Run(fmt.Sprintf("buf%d", size), func(t *testing.T) {
			for at := 0; at < len(stream); at++ {
				r := scpbridge.NewReader(&flakyReader{b: stream, failAt: at}, size)
				var got []scpbridge.Message
				timeouts := 0
				for {
					h, payload, err := r.Next()
					if errors.Is(err, errTimeout) {
						timeouts++
						continue
					}
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("fail at %d: frame %d: %v", at, len(got), err)
					}
					m, err := scpbridge.Decode(h, payload)
					if err != nil {
						t.Fatalf("fail at %d: decode frame %d: %v", at, len(got), err)
					}
					got = append(got, m)
				}
				if timeouts != 1 {
					t.Fatalf("fail at %d: got %d timeouts, want 1", at, timeouts)
				}
				checkMessages(t, got, n)
			}
		})
	}
}

// headerOnlyReader serves one header and counts reads after it.
type headerOnlyReader struct {
	hdr   []byte
	reads int
}

func (h *headerOnlyReader) Read(p []byte) (int, error) {
	h.reads++
	if h.reads > 1 {
		return 0, errors.New("payload read after an oversized header")
	}
	return copy(p, h.hdr), nil
}

func TestReaderRefusesOversizedFrame(t *testing.T) {
	for _, length := range []uint16{scpbridge.MaxPayload + 1, 0xffff} {
		for _, size := range bufferSizes {
			t.Run(fmt.Sprintf("len%d/buf%d", length, size), func(t *testing.T) {
				src := &headerOnlyReader{hdr: []byte{'S', 'C', 0x10, 0x10, 0, 0, byte(length >> 8), byte(length)}}
				r := scpbridge.NewReader(src, size)
				h, payload, err := r.Next()
				checkWraps(t, err, scpbridge.ErrFrameTooLarge)
				if payload != nil || h.Length != length {
					t.Errorf("got header %+v payload %d bytes, want length %d and no payload", h, len(payload), length)
				}
				if src.reads != 1 {
					t.Errorf("got %d reads, want 1 (the header only)", src.reads)
				}
				// The refused header stays unread: Next refuses again
				// without touching the source or allocating the payload.
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				const calls = 200
				for i := 0; i < calls; i++ {
					if _, _, err := r.Next(); !errors.Is(err, scpbridge.ErrFrameTooLarge) {
						t.Fatalf("call %d: got %v, want ErrFrameTooLarge", i, err)
					}
				}
				runtime.ReadMemStats(&after)
				if per := (after.TotalAlloc - before.TotalAlloc) / calls; per >= scpbridge.MaxPayload/8 {
					t.Errorf("got %d bytes allocated per refused frame, want far below a payload", per)
				}
				if src.reads != 1 {
					t.Errorf("got %d reads after refusing, want 1", src.reads)
				}
			})
		}
	}
}

func TestReaderLargestFrame(t *testing.T) {
	payload := bytes.Repeat([]byte{0xab}, scpbridge.MaxPayload)
	frame := append([]byte{'S', 'C', 0x10, 0x7e, 0, 0, 0x10, 0x00}, payload...)
	frame = append(frame, mustFrame(&scpbridge.Ping{Nonce: 1})...)
	for _, size := range bufferSizes {
		r := scpbridge.NewReader(bytes.NewReader(frame), size)
		h, got, err := r.Next()
		if err != nil || h.Type != 0x7e || !bytes.Equal(got, payload) {
			t.Fatalf("buf%d: got type %s, %d bytes, %v; want the %d-byte frame", size, h.Type, len(got), err, scpbridge.MaxPayload)
		}
		h, _, err = r.Next()
		if err != nil || h.Type != scpbridge.FramePing {
			t.Fatalf("buf%d: after the largest frame got %s, %v; want ping", size, h.Type, err)
		}
	}
}

func TestReaderStopsOnBadHeader(t *testing.T) {
	stream := append(mustFrame(&scpbridge.Ping{Nonce: 1}), "GET / HTTP/1.1\r\n"...)
	r := scpbridge.NewReader(bytes.NewReader(stream), 0)
	if _, _, err := r.Next(); err != nil {
		t.Fatalf("first frame: %v", err)
	}
	_, _, err := r.Next()
	checkWraps(t, err, scpbridge.ErrBadMagic)

	v2 := []byte{'S', 'C', 0x20, 0x01, 0, 0, 0, 0}
	h, _, err := scpbridge.NewReader(bytes.NewReader(v2), 0).Next()
	checkWraps(t, err, scpbridge.ErrUnsupportedVersion)
	if h.Type != scpbridge.FrameHello || h.Version != 0x20 {
		t.Errorf("got header %+v, want the 2.0 hello header so the host can reject it", h)
	}
}

// transactionStream encodes n transactions with increasing serials.
func transactionStream(n int) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		tx := scpbridge.Transaction{Seq: uint32(i + 1), TimeMS: exampleTimeMS + int64(i), SourceType: scpbridge.SourceReader,
			SourceNum: uint16(i % 4), Type: scpbridge.TranAccess, Code: scpbridge.AccessGranted, Card: uint64(1000 + i), Facility: 42}
		switch i % 3 {
		case 1:
			tx.Type, tx.Code, tx.SourceType = scpbridge.TranDoor, scpbridge.DoorOpened, scpbridge.SourceDoor
		case 2:
			tx.Type, tx.Code, tx.Lost = scpbridge.TranSystem, scpbridge.SystemLogOverLimit, uint32(i)
		}
		var err error
		if b, err = scpbridge.AppendFrame(b, &tx); err != nil {
			panic(err)
		}
	}
	return b
}

func TestZeroAllocReadTransaction(t *testing.T) {
	const runs = 2000
	r := scpbridge.NewReader(bytes.NewReader(transactionStream(runs+10)), 0)
	var tx scpbridge.Transaction
	var fail error
	allocs := testing.AllocsPerRun(runs, func() {
		h, payload, err := r.Next()
		if err == nil {
			err = tx.UnmarshalPayload(payload)
		}
		if err == nil && h.Type != scpbridge.FrameTransaction {
			err = fmt.Errorf("got %s", h.Type)
		}
		if err != nil && fail == nil {
			fail = err
		}
	})
	if fail != nil {
		t.Fatal(fail)
	}
	if allocs != 0 {
		t.Errorf("Reader.Next + Transaction.UnmarshalPayload: got %v allocs per frame, want 0", allocs)
	}
}

func TestZeroAllocHostReceiveTransaction(t *testing.T) {
	const runs = 2000
	s, now := establishedHost(t)
	r := scpbridge.NewReader(bytes.NewReader(transactionStream(runs+10)), 0)
	var fail error
	allocs := testing.AllocsPerRun(runs, func() {
		h, payload, err := r.Next()
		if err == nil {
			_, err = s.Receive(now, h, payload)
		}
		if err != nil && fail == nil {
			fail = err
		}
	})
	if fail != nil {
		t.Fatal(fail)
	}
	if allocs != 0 {
		t.Errorf("HostSession.Receive(transaction): got %v allocs per frame, want 0", allocs)
	}
}

func TestZeroAllocEncodeTransaction(t *testing.T) {
	tx := goldenCases()[4].msg.(*scpbridge.Transaction)
	buf := make([]byte, 0, 256)
	var fail error
	allocs := testing.AllocsPerRun(1000, func() {
		var err error
		if buf, err = scpbridge.AppendFrame(buf[:0], tx); err != nil {
			fail = err
		}
	})
	if fail != nil {
		t.Fatal(fail)
	}
	if allocs != 0 {
		t.Errorf("AppendFrame(transaction): got %v allocs, want 0", allocs)
	}
}
