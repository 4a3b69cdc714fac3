package scpbridge_test

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/scpgate/scpgate/scpbridge"
)

const protocolDoc = "../docs/protocol.md"

var (
	goldenMarker = regexp.MustCompile(`<!-- golden: (\w+) -->`)
	tableMarker  = regexp.MustCompile(`<!-- table: (\w+) -->`)
)

// docTable is a code table of docs/protocol.md and the code's view of it.
type docTable struct {
	name  func(v uint8) string // the code's name for v
	known func(v uint8) bool   // whether the code defines v
}

func fallback(name func(uint8) string, format string) func(uint8) bool {
	return func(v uint8) bool { return name(v) != fmt.Sprintf(format, v) }
}

func docTables() map[string]docTable {
	t := map[string]docTable{
		"frame_type":    {func(v uint8) string { return scpbridge.FrameType(v).String() }, func(v uint8) bool { return scpbridge.FrameType(v).Known() }},
		"tran_type":     {func(v uint8) string { return scpbridge.TranType(v).String() }, func(v uint8) bool { return scpbridge.TranType(v).Valid() }},
		"command_code":  {func(v uint8) string { return scpbridge.CommandCode(v).String() }, func(v uint8) bool { return scpbridge.CommandCode(v).Valid() }},
		"door_mode":     {func(v uint8) string { return scpbridge.DoorMode(v).String() }, func(v uint8) bool { return scpbridge.DoorMode(v).Valid() }},
		"output_action": {func(v uint8) string { return scpbridge.OutputAction(v).String() }, func(v uint8) bool { return scpbridge.OutputAction(v).Valid() }},
	}
	named := map[string]struct {
		name   func(uint8) string
		format string
	}{
		"source_type":   {func(v uint8) string { return scpbridge.SourceType(v).String() }, "source_%d"},
		"status":        {func(v uint8) string { return scpbridge.Status(v).String() }, "status_%d"},
		"nak_reason":    {func(v uint8) string { return scpbridge.NakReason(v).String() }, "nak_%d"},
		"reject_reason": {func(v uint8) string { return scpbridge.RejectReason(v).String() }, "reject_%d"},
		"bye_reason":    {func(v uint8) string { return scpbridge.ByeReason(v).String() }, "bye_%d"},
	}
	for tt := scpbridge.TranAccess; tt.Valid(); tt++ {
		named["code_"+tt.String()] = struct {
			name   func(uint8) string
			format string
		}{func(v uint8) string { return scpbridge.CodeName(tt, v) }, "code_%d"}
	}
	for k, n := range named {
		t[k] = docTable{n.name, fallback(n.name, n.format)}
	}
	return t
}

// fencedBlockAfter returns the first ``` block after offset i of doc.
func fencedBlockAfter(doc string, i int) (string, bool) {
	start := strings.Index(doc[i:], "```")
	if start < 0 {
		return "", false
	}
	start += i
	body := strings.Index(doc[start:], "\n")
	end := strings.Index(doc[start+body:], "\n```")
	if body < 0 || end < 0 {
		return "", false
	}
	return doc[start+body+1 : start+body+end+1], true
}

// tableRowsAfter returns the cells of the markdown table after offset i,
// without its heading and separator rows.
func tableRowsAfter(doc string, i int) [][]string {
	var rows [][]string
	started := false
	for _, line := range strings.Split(doc[i:], "\n")[1:] {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if started {
				break
			}
			continue
		}
		started = true
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		rows = append(rows, cells)
	}
	if len(rows) < 2 {
		return nil
	}
	return rows[2:]
}

// TestProtocolDoc keeps docs/protocol.md and the code from drifting: its
// example frames must be the golden frames, and its code tables must list
// exactly the values and names the code defines.
func TestProtocolDoc(t *testing.T) {
	raw, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	frames := map[string][]byte{}
	for _, c := range goldenCases() {
		frames[c.name] = mustFrame(c.msg)
	}

	seen := map[string]bool{}
	for _, m := range goldenMarker.FindAllStringSubmatchIndex(doc, -1) {
		name := doc[m[2]:m[3]]
		seen[name] = true
		block, ok := fencedBlockAfter(doc, m[1])
		if !ok {
			t.Errorf("golden %s: no code block after the marker", name)
			continue
		}
		got, err := parseHex(block)
		if err != nil {
			t.Errorf("golden %s: %v", name, err)
			continue
		}
		want, ok := frames[name]
		if !ok {
			t.Errorf("golden %s: no such golden case", name)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("example %s in the doc:\n got %x\nwant %x (the code's encoding)", name, got, want)
		}
	}
	for _, name := range []string{"hello", "transaction_access"} {
		if !seen[name] {
			t.Errorf("the doc has no example block for %s", name)
		}
	}

	tables := docTables()
	found := map[string]bool{}
	for _, m := range tableMarker.FindAllStringSubmatchIndex(doc, -1) {
		name := doc[m[2]:m[3]]
		found[name] = true
		tab, ok := tables[name]
		if !ok {
			t.Errorf("table %s: the test does not know it", name)
			continue
		}
		listed := map[uint8]bool{}
		for _, row := range tableRowsAfter(doc, m[1]) {
			if len(row) < 2 {
				t.Errorf("table %s: short row %q", name, row)
				continue
			}
			v, err := strconv.ParseUint(row[0], 0, 8)
			if err != nil {
				t.Errorf("table %s: value %q: %v", name, row[0], err)
				continue
			}
			listed[uint8(v)] = true
			if got, want := strings.Trim(row[1], "`"), tab.name(uint8(v)); got != want || !tab.known(uint8(v)) {
				t.Errorf("table %s: value %d is %q in the doc, %q (known %v) in the code", name, v, got, want, tab.known(uint8(v)))
			}
		}
		for v := 0; v < 256; v++ {
			if tab.known(uint8(v)) && !listed[uint8(v)] {
				t.Errorf("table %s: value %d (%s) is missing from the doc", name, v, tab.name(uint8(v)))
			}
		}
	}
	for name := range tables {
		if !found[name] {
			t.Errorf("the doc has no table marked %q", name)
		}
	}

	for _, s := range []string{
		fmt.Sprintf("at most %d", scpbridge.MaxPayload),
		fmt.Sprintf("**%d bytes**", scpbridge.MaxFrame),
		fmt.Sprintf("version 1.0 is 0x%02x", scpbridge.Version),
		fmt.Sprintf("str, 1..%d", scpbridge.MaxSerialLen),
		fmt.Sprintf("str, 0..%d", scpbridge.MaxPINLen),
		fmt.Sprintf("list, 0..%d", scpbridge.MaxLevels),
		fmt.Sprintf("0..%d doors", scpbridge.MaxDoors),
	} {
		if !strings.Contains(doc, s) {
			t.Errorf("the doc does not say %q", s)
		}
	}
}
