package natsconn_test

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/internal/natsconn"
	"github.com/scpgate/scpgate/internal/natstest"
)

func TestRoleOf(t *testing.T) {
	for name, want := range map[string]natsconn.Role{
		"scpgate-driver": natsconn.RoleDriver, "scpgate-ingest": natsconn.RoleIngest,
		"scpgate-commander": natsconn.RoleCommander, "scpgate-vendor": natsconn.RoleVendor,
		"scpgate-driver-d1": natsconn.RoleDriver, "commander": natsconn.RoleCommander,
		"scpgate-status": natsconn.RoleOps, "scpgate-replay": natsconn.RoleOps, "scpgate-doctor": natsconn.RoleOps,
		"scpgate-bench": natsconn.RoleOps, "": natsconn.RoleOps, "scpgate-drivers": natsconn.RoleOps,
	} {
		if got := natsconn.RoleOf(name); got != want {
			t.Errorf("RoleOf(%q) = %q, want %q", name, got, want)
		}
	}
	if got := natsconn.RoleVendor.InboxPrefix(); got != "_INBOX.vendor" {
		t.Errorf("vendor inbox prefix %q, want _INBOX.vendor", got)
	}
}

// TestConnectInboxPrefix: a connection's inboxes are under its role's
// prefix.
func TestConnectInboxPrefix(t *testing.T) {
	s := natstest.RunServer(t)
	for name, want := range map[string]string{"scpgate-ingest": "_INBOX.ingest.", "scpgate-status": "_INBOX.ops."} {
		nc, err := natsconn.Connect(natsconn.Config{URL: s.ClientURL()}, name, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		if got := nc.NewInbox(); !strings.HasPrefix(got, want) {
			t.Errorf("%s: inbox %s, want under %s", name, got, want)
		}
		nc.Close()
	}
}
