package commands_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commands"
	"github.com/scpgate/scpgate/scpbridge"
)

func TestToWire(t *testing.T) {
	tests := []struct {
		typ  scpgate.CommandType
		want scpbridge.Command
	}{
		{scpgate.CmdSetTime, scpbridge.Command{Code: scpbridge.CmdSetTime, TimeMS: tm("2025-01-02T03:04:05Z").UnixMilli()}},
		{scpgate.CmdMomentaryUnlock, scpbridge.Command{Code: scpbridge.CmdMomentaryUnlock, Door: 1, Seconds: 5}},
		{scpgate.CmdDoorMode, scpbridge.Command{Code: scpbridge.CmdDoorMode, Door: 65535, Mode: scpbridge.ModeCardAndPIN}},
		{scpgate.CmdOutput, scpbridge.Command{Code: scpbridge.CmdOutput, Output: 2, Action: scpbridge.ActionPulse, PulseMS: 500}},
		{scpgate.CmdCardAdd, scpbridge.Command{Code: scpbridge.CmdCardAdd, Card: 1234567, Facility: 42, PIN: "12345678",
			Levels: []uint16{1, 2, 3}, Activate: tm("2025-01-01T00:00:00Z").Unix(), Expire: tm("2026-01-01T00:00:00Z").Unix()}},
		{scpgate.CmdCardDelete, scpbridge.Command{Code: scpbridge.CmdCardDelete, Card: 1}},
		{scpgate.CmdAccessLevel, scpbridge.Command{Code: scpbridge.CmdAccessLevel, Level: 7, Doors: []uint16{1, 2, 64}}},
		{scpgate.CmdReset, scpbridge.Command{Code: scpbridge.CmdReset}},
		{scpgate.CmdIDRequest, scpbridge.Command{Code: scpbridge.CmdIDRequest}},
		{scpgate.CmdTranStatus, scpbridge.Command{Code: scpbridge.CmdTranStatus}},
	}
	if len(tests) != len(commands.Types) {
		t.Fatalf("got %d cases, want one per type (%d)", len(tests), len(commands.Types))
	}
	for i, tt := range tests {
		c := &scpgate.Command{V: 1, ID: "S1.9", Controller: "S1", Type: tt.typ, Params: validCase[tt.typ]}
		tag := uint32(100 + i)
		got, err := commands.ToWire(c, tag)
		if err != nil {
			t.Fatalf("ToWire(%s): %v", tt.typ, err)
		}
		tt.want.Tag = tag
		if !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("ToWire(%s): got %+v, want %+v", tt.typ, *got, tt.want)
		}
		// The wire command encodes and decodes to itself.
		b, err := got.AppendPayload(nil)
		if err != nil {
			t.Fatalf("encode %s: %v", tt.typ, err)
		}
		var back scpbridge.Command
		if err := back.UnmarshalPayload(b); err != nil {
			t.Fatalf("decode %s: %v", tt.typ, err)
		}
		if !reflect.DeepEqual(back, *got) {
			t.Errorf("round trip of %s: got %+v, want %+v", tt.typ, back, *got)
		}
	}
}

func TestToWireSetTimeDefaultsToNow(t *testing.T) {
	before := time.Now().UnixMilli()
	got, err := commands.ToWire(&scpgate.Command{Type: scpgate.CmdSetTime}, 1)
	if err != nil {
		t.Fatalf("ToWire: %v", err)
	}
	if after := time.Now().UnixMilli(); got.TimeMS < before || got.TimeMS > after {
		t.Fatalf("got time %d, want between %d and %d", got.TimeMS, before, after)
	}
}

func TestToWireRefusesInvalid(t *testing.T) {
	_, err := commands.ToWire(&scpgate.Command{ID: "S1.3", Type: scpgate.CmdMomentaryUnlock}, 1)
	if !errors.Is(err, commands.ErrBadParams) {
		t.Fatalf("got %v, want ErrBadParams", err)
	}
	_, err = commands.ToWire(&scpgate.Command{ID: "S1.4", Type: "fly"}, 1)
	if !errors.Is(err, commands.ErrUnknownType) {
		t.Fatalf("got %v, want ErrUnknownType", err)
	}
}

func TestID(t *testing.T) {
	if got := commands.ID("SCP-1", 42); got != "SCP-1.42" {
		t.Fatalf("ID: got %q, want SCP-1.42", got)
	}
	serial, seq, err := commands.ParseID("SCP-1.42")
	if err != nil || serial != "SCP-1" || seq != 42 {
		t.Fatalf("ParseID: got %q %d %v, want SCP-1 42", serial, seq, err)
	}
	for _, bad := range []string{"", "SCP1", "SCP1.", ".5", "S.0", "S.05", "S.+5", "S.-1", "S.1.2", "S/x.1",
		"S.18446744073709551616", "S.1a"} {
		if _, _, err := commands.ParseID(bad); !errors.Is(err, commands.ErrInvalidID) {
			t.Errorf("ParseID(%q): got %v, want ErrInvalidID", bad, err)
		}
	}
}

func TestValidKey(t *testing.T) {
	good := []string{"a", "order-17:unlock_2.b", string(make64())}
	for _, k := range good {
		if err := commands.ValidKey(k); err != nil {
			t.Errorf("ValidKey(%q): got %v, want nil", k, err)
		}
	}
	for _, k := range []string{"", string(make64()) + "x", "a b", "a*", "a>", "é", "a/b"} {
		if err := commands.ValidKey(k); !errors.Is(err, commands.ErrInvalidKey) {
			t.Errorf("ValidKey(%q): got %v, want ErrInvalidKey", k, err)
		}
	}
	if got := commands.MsgID("S1", "k1"); got != "S1.k.k1" {
		t.Errorf("MsgID: got %q, want S1.k.k1", got)
	}
}

func make64() []byte {
	b := make([]byte, commands.MaxKeyLen)
	for i := range b {
		b[i] = 'k'
	}
	return b
}

func TestRecordResult(t *testing.T) {
	sent := time.Date(2025, 1, 1, 0, 0, 1, 0, time.UTC)
	res := scpgate.Result{V: 1, ID: "S1.3", Controller: "S1", Type: scpgate.CmdReset, Status: scpgate.StatusNAK,
		Reason: "busy", Seq: 3, Created: sent.Add(-time.Second), Sent: &sent, Finished: sent.Add(time.Second), Driver: "d1"}
	rec := commands.RecordOf(&res)
	back, ok := rec.Result()
	if !ok || !reflect.DeepEqual(back, res) {
		t.Fatalf("Result of RecordOf: got %+v %v, want %+v", back, ok, res)
	}
	rec.Status = scpgate.StatusSent
	if _, ok := rec.Result(); ok {
		t.Fatalf("Result of a sent record: got ok, want not final")
	}
	c := &scpgate.Command{Type: scpgate.CmdReset, Created: sent, Expires: sent.Add(time.Minute)}
	if got := commands.QueuedRecord("S1", 3, c, sent).Status; got != scpgate.StatusQueued {
		t.Errorf("queued record before expiry: got %s, want queued", got)
	}
	if got := commands.QueuedRecord("S1", 3, c, sent.Add(2*time.Minute)); got.Status != scpgate.StatusExpired || got.ID != "S1.3" {
		t.Errorf("queued record after expiry: got %+v, want expired S1.3", got)
	}
}
