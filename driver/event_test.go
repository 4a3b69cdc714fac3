package driver_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/streams"
)

var update = flag.Bool("update", false, "rewrite the generated examples of docs/events.md")

const eventsDoc = "../docs/events.md"

// docExample is one example event of docs/events.md, built by the code that
// builds real events.
type docExample struct {
	title string
	ev    scpgate.Event
}

func docExamples() []docExample {
	at := time.Date(2026, 3, 14, 9, 26, 53, 589_000_000, time.UTC)
	recv := at.Add(1_234_567 * time.Nanosecond)
	const serial, epoch, drv = "PANEL-0042", 1773480000, "driver-a1b2c3"
	tx := func(seq uint32, st scpbridge.SourceType, num uint16, tt scpbridge.TranType, code uint8) *scpbridge.Transaction {
		return &scpbridge.Transaction{Seq: seq, TimeMS: at.UnixMilli(), SourceType: st, SourceNum: num, Type: tt, Code: code}
	}
	access := tx(1041, scpbridge.SourceReader, 1, scpbridge.TranAccess, scpbridge.AccessGranted)
	access.Card, access.Facility = 8123456, 105
	overflow := tx(1, scpbridge.SourceController, 0, scpbridge.TranSystem, scpbridge.SystemLogOverLimit)
	overflow.Lost = 312
	p := scpgate.Presence{Session: "5f0c6a1e9b2d4c7f", Remote: "10.20.30.40:51544", Model: "SCP-2000", Firmware: "1.0.0", SessionRev: 48213}
	off := p
	off.Reason = string(scpgate.ReasonDrained)
	return []docExample{
		{"access (granted)", driver.TransactionEvent(serial, epoch, access, recv, drv)},
		{"door (forced open)", driver.TransactionEvent(serial, epoch, tx(1042, scpbridge.SourceDoor, 2, scpbridge.TranDoor, scpbridge.DoorForcedOpen), recv, drv)},
		{"input (alarm)", driver.TransactionEvent(serial, epoch, tx(1043, scpbridge.SourceInput, 5, scpbridge.TranInput, scpbridge.InputAlarm), recv, drv)},
		{"output (on)", driver.TransactionEvent(serial, epoch, tx(1044, scpbridge.SourceOutput, 3, scpbridge.TranOutput, scpbridge.OutputOn), recv, drv)},
		{"tamper (alarm)", driver.TransactionEvent(serial, epoch, tx(1045, scpbridge.SourceController, 0, scpbridge.TranTamper, scpbridge.TamperAlarm), recv, drv)},
		{"power (fail)", driver.TransactionEvent(serial, epoch, tx(1046, scpbridge.SourceController, 0, scpbridge.TranPower, scpbridge.PowerFail), recv, drv)},
		{"system (log over limit)", driver.TransactionEvent(serial, epoch, overflow, recv, drv)},
		{"presence (online)", driver.PresenceEvent(serial, epoch, p, driver.PresenceOnline, at, drv)},
		{"presence (offline)", driver.PresenceEvent(serial, epoch, off, driver.PresenceOffline, at.Add(2*time.Hour), drv)},
	}
}

const (
	examplesBegin = "<!-- examples:begin (generated: go test ./driver -run TestEventsDoc -update) -->"
	examplesEnd   = "<!-- examples:end -->"
)

func renderExamples(t *testing.T) string {
	var b strings.Builder
	b.WriteString(examplesBegin + "\n")
	for _, ex := range docExamples() {
		js, err := json.MarshalIndent(ex.ev, "", "  ")
		if err != nil {
			t.Fatalf("marshal %s: %v", ex.title, err)
		}
		subject, err := streams.EventSubject(ex.ev.Controller, ex.ev.Kind)
		if err != nil {
			t.Fatalf("subject of %s: %v", ex.title, err)
		}
		fmt.Fprintf(&b, "\n### %s\n\nSubject `%s`, Nats-Msg-Id `%s`:\n\n```json\n%s\n```\n", ex.title, subject, ex.ev.ID, js)
	}
	b.WriteString("\n" + examplesEnd)
	return b.String()
}

// TestEventsDoc keeps docs/events.md in step with the code: its generated
// examples are what the code produces, every JSON example decodes into
// scpgate.Event (no unknown field) and re-encodes byte for byte, every
// kind has an example, and every code name is listed.
func TestEventsDoc(t *testing.T) {
	raw, err := os.ReadFile(eventsDoc)
	if err != nil {
		t.Fatalf("read %s: %v", eventsDoc, err)
	}
	doc := string(raw)
	i, j := strings.Index(doc, examplesBegin), strings.Index(doc, examplesEnd)
	if i < 0 || j < i {
		t.Fatalf("%s: example markers missing", eventsDoc)
	}
	gen := renderExamples(t)
	if current := doc[i : j+len(examplesEnd)]; current != gen {
		if !*update {
			t.Fatalf("%s: examples differ from the code; run go test ./driver -run TestEventsDoc -update", eventsDoc)
		}
		doc = doc[:i] + gen + doc[j+len(examplesEnd):]
		if err := os.WriteFile(eventsDoc, []byte(doc), 0o644); err != nil {
			t.Fatalf("write %s: %v", eventsDoc, err)
		}
	}

	blocks := regexp.MustCompile("(?s)```json\n(.*?)\n```").FindAllStringSubmatch(doc, -1)
	kinds := map[scpgate.Kind]bool{}
	for _, b := range blocks {
		dec := json.NewDecoder(strings.NewReader(b[1]))
		dec.DisallowUnknownFields()
		var ev scpgate.Event
		if err := dec.Decode(&ev); err != nil {
			t.Errorf("example does not decode into scpgate.Event: %v\n%s", err, b[1])
			continue
		}
		again, _ := json.MarshalIndent(ev, "", "  ")
		if string(again) != b[1] {
			t.Errorf("example does not re-encode identically:\n got %s\nwant %s", again, b[1])
		}
		kinds[ev.Kind] = true
	}
	for _, k := range scpgate.Kinds {
		if !kinds[k] {
			t.Errorf("%s: no example of kind %s", eventsDoc, k)
		}
	}
	for tt := scpbridge.TranAccess; tt <= scpbridge.TranSystem; tt++ {
		for code := 1; ; code++ {
			name := scpbridge.CodeName(tt, uint8(code))
			if strings.HasPrefix(name, "code_") {
				break
			}
			if !strings.Contains(doc, "`"+name+"`") {
				t.Errorf("%s: code %s/%s (%d) not documented", eventsDoc, tt, name, code)
			}
		}
	}
}

// TestTransactionEvent checks the mapping of every field.
func TestTransactionEvent(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_123)
	tx := &scpbridge.Transaction{Seq: 7, TimeMS: at.UnixMilli(), SourceType: scpbridge.SourceReader, SourceNum: 2,
		Type: scpbridge.TranAccess, Code: scpbridge.AccessDeniedBadPIN, Card: 99, Facility: 12}
	recv := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	ev := driver.TransactionEvent("C1", 5, tx, recv, "d9")
	want := scpgate.Event{
		V: 1, ID: "C1.5.7", Controller: "C1", Kind: scpgate.KindAccess, BootEpoch: 5, Seq: 7,
		Time: at.UTC(), Received: recv.UTC(), Driver: "d9", Code: "denied_bad_pin", CodeNum: 5,
		Source: &scpgate.Source{Type: "reader", Number: 2}, Card: &scpgate.Card{Number: 99, Facility: 12},
	}
	got, _ := json.Marshal(ev)
	exp, _ := json.Marshal(want)
	if !bytes.Equal(got, exp) {
		t.Errorf("event\n got %s\nwant %s", got, exp)
	}

	sys := &scpbridge.Transaction{Seq: 8, Type: scpbridge.TranSystem, Code: scpbridge.SystemLogOverLimit, Lost: 40, SourceType: scpbridge.SourceController}
	if ev := driver.TransactionEvent("C1", 5, sys, recv, "d9"); ev.Lost != 40 || ev.Card != nil || ev.Kind != scpgate.KindSystem || ev.Code != "log_over_limit" {
		t.Errorf("log over limit event %+v", ev)
	}
	unknown := &scpbridge.Transaction{Seq: 9, Type: scpbridge.TranDoor, Code: 200}
	if ev := driver.TransactionEvent("C1", 5, unknown, recv, "d9"); ev.Code != "code_200" || ev.CodeNum != 200 {
		t.Errorf("unknown code: %q %d, want code_200 200", ev.Code, ev.CodeNum)
	}
	for tt := scpbridge.TranAccess; tt <= scpbridge.TranSystem; tt++ {
		if k := driver.KindOf(tt); !k.Valid() || k == scpgate.KindPresence {
			t.Errorf("KindOf(%s) = %q", tt, k)
		}
	}
}
