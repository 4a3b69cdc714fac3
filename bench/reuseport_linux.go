package bench

import (
	"context"
	"net"
	"syscall"
)

// soReusePort is SO_REUSEPORT on Linux (the syscall package does not name
// it): several sockets bound to one port, the kernel spreading new
// connections over them and, when one closes, sending them all to the rest.
const soReusePort = 0xf

// listenReusePort listens on addr with SO_REUSEPORT, so that two driver
// processes share one controller port the way drivers share a load
// balancer's.
func listenReusePort(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}
