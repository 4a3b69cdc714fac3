package sim

import "net"

// OnIPv4Loopback reports whether target (host:port) is on IPv4 loopback
// ("localhost" counts). A fleet of more controllers than one source
// address has ports for (about 28,000) may then dial from other loopback
// addresses (127.x.y.z) as its local address, one per process.
func OnIPv4Loopback(target string) bool {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return false
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.To4() != nil && ip.IsLoopback()
}
