package natsconn

import "strings"

// Role is the part an scpgate connection plays; each role has a NATS user
// of its own in deploy/nats/auth.conf and an inbox prefix of its own, so
// that one role cannot read the replies sent to another (a command's
// answer may carry a card's PIN).
type Role string

// The roles of scpgate connections.
const (
	RoleDriver    Role = "driver"
	RoleIngest    Role = "ingest"
	RoleCommander Role = "commander"
	// RoleOps is every tool that looks: status, replay, doctor, bench.
	RoleOps Role = "ops"
	// RoleVendor is the vendor application and the example clients.
	RoleVendor Role = "vendor"
)

// Roles lists every role.
var Roles = []Role{RoleDriver, RoleIngest, RoleCommander, RoleOps, RoleVendor}

// InboxPrefix is the inbox prefix of the role's connections
// ("_INBOX.driver"): request replies and consumer deliveries arrive on
// subjects under it, and auth.conf lets the role's user subscribe to
// "_INBOX.<role>.>" and to no other inbox.
func (r Role) InboxPrefix() string { return "_INBOX." + string(r) }

// RoleOf returns the role of a client called name: "scpgate-driver",
// "scpgate-ingest", "scpgate-commander" and "scpgate-vendor" name their
// role (with or without the "scpgate-" prefix, and with any suffix after
// a further '-'); every other name (scpgate-status, scpgate-replay, ...)
// is RoleOps.
func RoleOf(name string) Role {
	n := strings.TrimPrefix(name, "scpgate-")
	if i := strings.IndexByte(n, '-'); i >= 0 {
		n = n[:i]
	}
	switch r := Role(n); r {
	case RoleDriver, RoleIngest, RoleCommander, RoleVendor:
		return r
	}
	return RoleOps
}
