//go:build !linux

package bench

import (
	"errors"
	"net"
)

// listenReusePort is only available on Linux.
func listenReusePort(string) (net.Listener, error) {
	return nil, errors.New("SO_REUSEPORT listeners need Linux")
}
