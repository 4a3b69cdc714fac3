//go:build !unix

package driver

import "syscall"

// waitReadable returns at once where the socket cannot be peeked at: the
// session then takes its reader before it knows there is data.
func waitReadable(syscall.RawConn) error { return nil }
