package driver

import (
	"io"
	"net"
	"syscall"

	"github.com/scpgate/scpgate/scpbridge"
)

// An idle session holds no read buffer: it waits for its socket to become
// readable without one (see waitReadable), then takes a frame reader from
// the driver's pool, and gives it back as soon as nothing is buffered past
// the frame it just handled. Most of the time, most sessions are idle.

// frameReader is a pooled frame reader whose source can be pointed at
// another connection.
type frameReader struct {
	src connSource
	rd  *scpbridge.Reader
}

// connSource is the io.Reader under a pooled frame reader.
type connSource struct{ r io.Reader }

func (c *connSource) Read(p []byte) (int, error) { return c.r.Read(p) }

// getReader returns a frame reader reading conn.
func (d *Driver) getReader(conn net.Conn) *frameReader {
	fr, _ := d.readers.Get().(*frameReader)
	if fr == nil {
		fr = &frameReader{}
		fr.rd = scpbridge.NewReader(&fr.src, d.opts.ReadBuffer)
	}
	fr.src.r = conn
	return fr
}

// next reads the session's next frame, waiting for the socket first when
// the session holds no reader.
func (s *session) next() (scpbridge.Header, []byte, error) {
	if s.loop.rd == nil {
		if s.loop.raw != nil {
			if err := waitReadable(s.loop.raw); err != nil {
				return scpbridge.Header{}, nil, err
			}
		}
		s.loop.rd = s.d.getReader(s.conn)
	}
	return s.loop.rd.rd.Next()
}

// releaseReader gives the session's frame reader back to the pool when
// nothing is buffered past the last frame read (which must have been read
// without error, and be done with). The bytes of that frame still in the
// reader's buffer are discarded by the reader's next user before it
// reads, so the next connection never sees them.
func (s *session) releaseReader() {
	if s.loop.rd == nil || s.loop.rd.rd.Buffered() > 0 {
		return
	}
	s.loop.rd.src.r = nil
	s.d.readers.Put(s.loop.rd)
	s.loop.rd = nil
}

// rawConnOf returns the raw connection of conn when waitReadable can wait
// on it (a plain TCP connection; not TLS, whose own buffer may hold data).
func rawConnOf(conn net.Conn) syscall.RawConn {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}
