package schema_test

import (
	"os"
	"strings"
	"testing"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/commands"
	"github.com/scpgate/scpgate/scpbridge"
)

// TestAPIDoc: docs/api.md names every command type, parameter, status,
// NAK reason, error code and door mode, and every schema file.
func TestAPIDoc(t *testing.T) {
	b, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var want []string
	for _, typ := range commands.Types {
		want = append(want, string(typ))
	}
	want = append(want, "time", "door", "seconds", "mode", "output", "action", "ms", "card", "facility", "pin",
		"levels", "activate", "expire", "level", "doors", "ttl", "idempotency_key", "wait", "after", "next", "limit")
	for _, st := range []scpgate.CommandStatus{scpgate.StatusQueued, scpgate.StatusSent, scpgate.StatusOK,
		scpgate.StatusNAK, scpgate.StatusFailed, scpgate.StatusExpired} {
		want = append(want, string(st))
	}
	for r := scpbridge.NakBadHeader; r <= scpbridge.NakBusy; r++ {
		want = append(want, r.String())
	}
	for m := scpbridge.ModeDisabled; m.Valid(); m++ {
		want = append(want, m.String())
	}
	for _, c := range []commander.Code{commander.CodeBadRequest, commander.CodeUnknownType, commander.CodeBadParams,
		commander.CodeConflict, commander.CodeQueueFull, commander.CodeUnavailable, commander.CodeNotFound, commander.CodeInternal} {
		want = append(want, string(c))
	}
	want = append(want, "unanswered", "invalid_command", "controller", "number_str")
	for _, w := range want {
		if !strings.Contains(doc, "`"+w+"`") {
			t.Errorf("docs/api.md does not name `%s`", w)
		}
	}
	for _, f := range []string{"event.json", "command-request.json", "command.json", "state.json", "api.json", "openapi.json", "asyncapi.json"} {
		if !strings.Contains(doc, "`"+f+"`") {
			t.Errorf("docs/api.md does not name %s", f)
		}
	}
}
