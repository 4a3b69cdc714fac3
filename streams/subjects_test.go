package streams_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/streams"
)

func TestValidSerial(t *testing.T) {
	tests := []struct {
		serial string
		ok     bool
	}{
		{"SCP-0001", true},
		{"a", true},
		{"ctrl_42", true},
		{strings.Repeat("x", streams.MaxSerialLen), true},
		{"", false},
		{strings.Repeat("x", streams.MaxSerialLen+1), false},
		{"a.b", false},
		{"a*", false},
		{"a>", false},
		{"a b", false},
		{"a\tb", false},
		{"é", false},
		{"a/b", false},
	}
	for _, tt := range tests {
		err := streams.ValidSerial(tt.serial)
		if got := err == nil; got != tt.ok {
			t.Errorf("ValidSerial(%q): got ok=%v (err %v), want ok=%v", tt.serial, got, err, tt.ok)
		}
		if err != nil && !errors.Is(err, streams.ErrInvalidSerial) {
			t.Errorf("ValidSerial(%q): got error %v, want one wrapping ErrInvalidSerial", tt.serial, err)
		}
	}
}

func TestSubjectBuilders(t *testing.T) {
	type builder struct {
		name string
		fn   func(string) (string, error)
		want string // for serial "S1"
	}
	builders := []builder{
		{"EventSubject", func(s string) (string, error) { return streams.EventSubject(s, scpgate.KindDoor) }, "scp.evt.S1.door"},
		{"EventsFor", streams.EventsFor, "scp.evt.S1.>"},
		{"CommandSubject", streams.CommandSubject, "scp.cmd.S1"},
		{"ResultSubject", streams.ResultSubject, "scp.res.S1"},
	}
	bad := []string{"", "a.b", "*", ">", "a b", strings.Repeat("z", 33)}
	for _, b := range builders {
		got, err := b.fn("S1")
		if err != nil || got != b.want {
			t.Errorf("%s(S1): got %q, %v; want %q, nil", b.name, got, err, b.want)
		}
		for _, s := range bad {
			got, err := b.fn(s)
			if !errors.Is(err, streams.ErrInvalidSerial) || got != "" {
				t.Errorf("%s(%q): got %q, %v; want \"\", ErrInvalidSerial", b.name, s, got, err)
			}
		}
	}
}

func TestEventSubjectKind(t *testing.T) {
	for _, k := range scpgate.Kinds {
		got, err := streams.EventSubject("S1", k)
		if want := "scp.evt.S1." + string(k); err != nil || got != want {
			t.Errorf("EventSubject(S1, %s): got %q, %v; want %q, nil", k, got, err, want)
		}
	}
	for _, k := range []scpgate.Kind{"", "Door", "door.x", "*"} {
		if got, err := streams.EventSubject("S1", k); !errors.Is(err, streams.ErrInvalidKind) {
			t.Errorf("EventSubject(S1, %q): got %q, %v; want ErrInvalidKind", k, got, err)
		}
	}
}

func TestSerialFromSubject(t *testing.T) {
	tests := []struct {
		subject string
		serial  string
		ok      bool
	}{
		{"scp.evt.S1.access", "S1", true},
		{"scp.evt.S-2.presence", "S-2", true},
		{"scp.cmd.S_3", "S_3", true},
		{"scp.res.S4", "S4", true},
		{"scp.evt.S1", "", false},
		{"scp.evt.S1.", "", false},
		{"scp.cmd.", "", false},
		{"scp.cmd.a.b", "", false},
		{"scp.res.*", "", false},
		{"scp.foo.S1", "", false},
		{"other", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		serial, ok := streams.SerialFromSubject(tt.subject)
		if serial != tt.serial || ok != tt.ok {
			t.Errorf("SerialFromSubject(%q): got %q, %v; want %q, %v", tt.subject, serial, ok, tt.serial, tt.ok)
		}
	}
}

func ExampleEventSubject() {
	subject, err := streams.EventSubject("SCP-0042", scpgate.KindAccess)
	fmt.Println(subject, err)
	_, err = streams.EventSubject("SCP.0042", scpgate.KindAccess)
	fmt.Println(err)
	// Output:
	// scp.evt.SCP-0042.access <nil>
	// invalid controller serial: "SCP.0042" has byte '.' at 3; only A-Z a-z 0-9 _ - are allowed
}
