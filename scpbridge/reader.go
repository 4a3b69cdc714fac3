package scpbridge

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// DefaultReadBuffer is the Reader's buffer size when none is given: large
// enough to batch dozens of transaction frames per read, small enough that
// ten thousand idle sessions stay cheap.
const DefaultReadBuffer = 1024

// Reader reads frames from a byte stream. Next returns the header and a
// payload slice that stays valid until the following call; reading a frame
// that fits the buffer allocates nothing. A header announcing more than
// MaxPayload is refused before any of the payload is read.
type Reader struct {
	br      *bufio.Reader
	discard int    // bytes of the previous frame still to drop from br
	big     []byte // payloads larger than the buffer, allocated on first need

	// A frame larger than the buffer whose payload is being read into big.
	// When a read fails part way (a read deadline, say), the next call to
	// Next resumes it instead of losing the stream's framing.
	inBig  bool
	bigHdr Header
	bigGot int
}

// NewReader returns a Reader over r with a buffer of size bytes (at least
// HeaderLen; DefaultReadBuffer when size <= 0).
func NewReader(r io.Reader, size int) *Reader {
	if size <= 0 {
		size = DefaultReadBuffer
	}
	if size < 16 {
		size = 16
	}
	return &Reader{br: bufio.NewReaderSize(r, size)}
}

// Buffered returns how many bytes are buffered past the current frame.
func (r *Reader) Buffered() int { return r.br.Buffered() - r.discard }

// Next reads the next frame. At a clean end of stream between frames it
// returns io.EOF; inside a frame it returns an error wrapping ErrTruncated.
// Errors from ParseHeader (bad magic, version, size) are returned as they
// are: after them the stream has lost its framing and must be closed.
// Other errors of the underlying reader (a read deadline, say) are returned
// as they are too, and a later call resumes the frame where it stopped.
func (r *Reader) Next() (Header, []byte, error) {
	if r.inBig {
		return r.readBig()
	}
	if r.discard > 0 {
		if _, err := r.br.Discard(r.discard); err != nil {
			return Header{}, nil, err
		}
		r.discard = 0
	}
	hb, err := r.br.Peek(HeaderLen)
	if err != nil {
		if errors.Is(err, io.EOF) {
			if len(hb) == 0 {
				return Header{}, nil, io.EOF
			}
			return Header{}, nil, fmt.Errorf("%w: stream ended inside a header (%d bytes)", ErrTruncated, len(hb))
		}
		return Header{}, nil, err
	}
	h, err := ParseHeader(hb)
	if err != nil {
		return h, nil, err
	}
	n := int(h.Length)
	if HeaderLen+n <= r.br.Size() {
		fb, err := r.br.Peek(HeaderLen + n)
		if err != nil {
			return h, nil, truncated(h, len(fb)-HeaderLen, err)
		}
		r.discard = HeaderLen + n
		return h, fb[HeaderLen:], nil
	}
	if _, err := r.br.Discard(HeaderLen); err != nil {
		return h, nil, err
	}
	if r.big == nil {
		r.big = make([]byte, MaxPayload)
	}
	r.inBig, r.bigHdr, r.bigGot = true, h, 0
	return r.readBig()
}

// readBig reads the rest of a payload larger than the buffer into big.
func (r *Reader) readBig() (Header, []byte, error) {
	h, n := r.bigHdr, int(r.bigHdr.Length)
	got, err := io.ReadFull(r.br, r.big[r.bigGot:n])
	r.bigGot += got
	if err != nil {
		return h, nil, truncated(h, r.bigGot, err)
	}
	r.inBig = false
	return h, r.big[:n], nil
}

func truncated(h Header, got int, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s payload ended after %d of %d bytes", ErrTruncated, h.Type, got, h.Length)
	}
	return err
}
