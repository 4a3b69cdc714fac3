package schema_test

import (
	"fmt"
	"os"
	"regexp"
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

// TestDocExamples validates the JSON examples of docs/events.md (events)
// and docs/api.md (a submission, the command document, a presence)
// against the schemas.
func TestDocExamples(t *testing.T) {
	blocks := func(file string) []string {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range regexp.MustCompile("(?s)```json\n(.*?)\n```").FindAllStringSubmatch(string(b), -1) {
			out = append(out, m[1])
		}
		return out
	}
	events := blocks("../docs/events.md")
	if len(events) < 8 {
		t.Fatalf("docs/events.md: %d examples", len(events))
	}
	for i, e := range events {
		validate(t, "event.json", []byte(e), fmt.Sprintf("docs/events.md example %d", i+1))
	}
	api := blocks("../docs/api.md")
	refs := []string{"command-request.json#/$defs/microSubmit", "command.json", "api.json#/$defs/controller"}
	if len(api) != len(refs) {
		t.Fatalf("docs/api.md: %d JSON examples, want %d", len(api), len(refs))
	}
	for i, e := range api {
		validate(t, refs[i], []byte(e), fmt.Sprintf("docs/api.md example %d", i+1))
	}
}
