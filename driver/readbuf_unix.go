//go:build unix

package driver

import "syscall"

// waitReadable waits until the socket has data, an end of stream or an
// error to read, under the connection's read deadline, through the
// runtime's poller and without a buffer. A peek that would block means the
// poller will report the next arrival; anything else means a read will not
// block.
func waitReadable(raw syscall.RawConn) error {
	return raw.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN
	})
}
