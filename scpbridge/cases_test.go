package scpbridge_test

import (
	"reflect"

	"github.com/scpgate/scpgate/scpbridge"
)

// field is one named run of payload bytes, used to annotate golden files.
type field struct {
	name string
	size int
}

func f(name string, size int) []field { return []field{{name, size}} }

// str is the layout of a length-prefixed string.
func str(name, s string) []field {
	if s == "" {
		return f(name+"_len", 1)
	}
	return []field{{name + "_len", 1}, {name, len(s)}}
}

// list is the layout of a count-prefixed list of u16.
func list(name string, n int) []field {
	if n == 0 {
		return f(name+"_count", 1)
	}
	return []field{{name + "_count", 1}, {name, 2 * n}}
}

func layout(parts ...[]field) []field {
	var out []field
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// goldenCase is one message with its golden file name and payload layout.
type goldenCase struct {
	name   string
	msg    scpbridge.Message
	layout []field
}

var (
	tranHead  = layout(f("seq", 4), f("time_ms", 8), f("source_type", 1), f("source_num", 2), f("tran_type", 1), f("code", 1), f("body_len", 1))
	cmdHead   = layout(f("tag", 4), f("code", 1), f("body_len", 2))
	byeLayout = func(text string) []field {
		return layout(f("reason", 1), f("reconnect_after_ms", 4), str("text", text))
	}
)

// The instant used by the examples: 2026-01-01T00:00:00.123Z.
const exampleTimeMS = 1767225600123

// goldenCases covers every frame type and every command body.
func goldenCases() []goldenCase {
	hello := &scpbridge.Hello{
		Serial: "SCP-000142", Model: "EP4502", Firmware: "1.29.4",
		MAC: [6]byte{0x00, 0x0f, 0xe5, 0x01, 0x02, 0x03}, BootEpoch: 7,
		Log: scpbridge.LogStatus{Capacity: 50000, Oldest: 1, LastLogged: 1234, LastAcked: 1200},
	}
	helloLayout := func(h *scpbridge.Hello) []field {
		return layout(str("serial", h.Serial), str("model", h.Model), str("firmware", h.Firmware),
			f("mac", 6), f("boot_epoch", 4), f("capacity", 4), f("oldest", 4), f("last_logged", 4), f("last_acked", 4))
	}
	helloMin := &scpbridge.Hello{Serial: "A", BootEpoch: 1}
	helloSecret := &scpbridge.Hello{
		Serial: "SCP-000142", Model: "EP4502", Firmware: "1.30.0",
		MAC: [6]byte{0x00, 0x0f, 0xe5, 0x01, 0x02, 0x03}, BootEpoch: 7,
		Log:    scpbridge.LogStatus{Capacity: 50000, Oldest: 1, LastLogged: 1234, LastAcked: 1200},
		Secret: "correct-horse-battery",
	}
	card := &scpbridge.Command{Tag: 105, Code: scpbridge.CmdCardAdd, Card: 123456789, Facility: 42, PIN: "4711",
		Levels: []uint16{1, 2, 300}, Activate: 1767225600, Expire: 1798761600}
	level := &scpbridge.Command{Tag: 107, Code: scpbridge.CmdAccessLevel, Level: 300, Doors: []uint16{1, 2, 3, 4}}
	return []goldenCase{
		{"hello", hello, helloLayout(hello)},
		{"hello_minimal", helloMin, helloLayout(helloMin)},
		{"welcome", &scpbridge.Welcome{SessionID: 0x0102030405060708, HeartbeatMS: 5000, OfflineMS: 15000, HostTimeMS: exampleTimeMS},
			layout(f("session_id", 8), f("heartbeat_ms", 4), f("offline_ms", 4), f("host_time_ms", 8))},
		{"reject", &scpbridge.Reject{Reason: scpbridge.RejectDraining, RetryAfterMS: 2500, Text: "host draining"},
			layout(f("reason", 1), f("retry_after_ms", 4), str("text", "host draining"))},
		{"transaction_access", &scpbridge.Transaction{Seq: 1201, TimeMS: exampleTimeMS, SourceType: scpbridge.SourceReader, SourceNum: 1,
			Type: scpbridge.TranAccess, Code: scpbridge.AccessGranted, Card: 123456789, Facility: 42},
			layout(tranHead, f("card", 8), f("facility", 4))},
		{"transaction_access_denied", &scpbridge.Transaction{Seq: 1202, TimeMS: exampleTimeMS + 1500, SourceType: scpbridge.SourceReader, SourceNum: 2,
			Type: scpbridge.TranAccess, Code: scpbridge.AccessDeniedNotInFile, Card: 987654321, Facility: 7},
			layout(tranHead, f("card", 8), f("facility", 4))},
		{"transaction_door", &scpbridge.Transaction{Seq: 1203, TimeMS: exampleTimeMS + 2000, SourceType: scpbridge.SourceDoor, SourceNum: 1,
			Type: scpbridge.TranDoor, Code: scpbridge.DoorForcedOpen}, tranHead},
		{"transaction_input", &scpbridge.Transaction{Seq: 1204, TimeMS: exampleTimeMS + 3000, SourceType: scpbridge.SourceInput, SourceNum: 5,
			Type: scpbridge.TranInput, Code: scpbridge.InputAlarm}, tranHead},
		{"transaction_output", &scpbridge.Transaction{Seq: 1205, TimeMS: exampleTimeMS + 4000, SourceType: scpbridge.SourceOutput, SourceNum: 2,
			Type: scpbridge.TranOutput, Code: scpbridge.OutputPulse}, tranHead},
		{"transaction_tamper", &scpbridge.Transaction{Seq: 1206, TimeMS: exampleTimeMS + 5000, SourceType: scpbridge.SourceController,
			Type: scpbridge.TranTamper, Code: scpbridge.TamperAlarm}, tranHead},
		{"transaction_power", &scpbridge.Transaction{Seq: 1207, TimeMS: exampleTimeMS + 6000, SourceType: scpbridge.SourceController,
			Type: scpbridge.TranPower, Code: scpbridge.PowerFail}, tranHead},
		{"transaction_system_log_over_limit", &scpbridge.Transaction{Seq: 1, TimeMS: exampleTimeMS + 7000, SourceType: scpbridge.SourceController,
			Type: scpbridge.TranSystem, Code: scpbridge.SystemLogOverLimit, Lost: 1500}, layout(tranHead, f("lost", 4))},
		{"transaction_system_comm_offline", &scpbridge.Transaction{Seq: 2, TimeMS: exampleTimeMS + 8000, SourceType: scpbridge.SourceController,
			Type: scpbridge.TranSystem, Code: scpbridge.SystemCommOffline}, tranHead},
		{"tran_ack", &scpbridge.TranAck{BootEpoch: 7, LastSeq: 1201}, layout(f("boot_epoch", 4), f("last_seq", 4))},
		{"command_set_time", &scpbridge.Command{Tag: 101, Code: scpbridge.CmdSetTime, TimeMS: exampleTimeMS}, layout(cmdHead, f("time_ms", 8))},
		{"command_momentary_unlock", &scpbridge.Command{Tag: 102, Code: scpbridge.CmdMomentaryUnlock, Door: 1, Seconds: 5},
			layout(cmdHead, f("door", 2), f("seconds", 2))},
		{"command_door_mode", &scpbridge.Command{Tag: 103, Code: scpbridge.CmdDoorMode, Door: 2, Mode: scpbridge.ModeCardAndPIN},
			layout(cmdHead, f("door", 2), f("mode", 1))},
		{"command_output", &scpbridge.Command{Tag: 104, Code: scpbridge.CmdOutput, Output: 3, Action: scpbridge.ActionPulse, PulseMS: 1500},
			layout(cmdHead, f("output", 2), f("action", 1), f("ms", 4))},
		{"command_card_add", card,
			layout(cmdHead, f("card", 8), f("facility", 4), str("pin", card.PIN), list("levels", len(card.Levels)), f("activate", 8), f("expire", 8))},
		{"command_card_add_no_pin", &scpbridge.Command{Tag: 108, Code: scpbridge.CmdCardAdd, Card: 5, Facility: 1},
			layout(cmdHead, f("card", 8), f("facility", 4), str("pin", ""), list("levels", 0), f("activate", 8), f("expire", 8))},
		{"command_card_delete", &scpbridge.Command{Tag: 106, Code: scpbridge.CmdCardDelete, Card: 123456789}, layout(cmdHead, f("card", 8))},
		{"command_access_level", level, layout(cmdHead, f("level", 2), list("doors", len(level.Doors)))},
		{"command_reset", &scpbridge.Command{Tag: 109, Code: scpbridge.CmdReset}, cmdHead},
		{"command_id_request", &scpbridge.Command{Tag: 110, Code: scpbridge.CmdIDRequest}, cmdHead},
		{"command_tran_status", &scpbridge.Command{Tag: 111, Code: scpbridge.CmdTranStatus}, cmdHead},
		{"command_status_ok", &scpbridge.CommandStatus{Tag: 101, Status: scpbridge.StatusOK},
			layout(f("tag", 4), f("status", 1), f("nak_reason", 1), str("detail", ""))},
		{"command_status_nak", &scpbridge.CommandStatus{Tag: 103, Status: scpbridge.StatusNAK, NakReason: scpbridge.NakOutOfRange, Detail: "no door 2"},
			layout(f("tag", 4), f("status", 1), f("nak_reason", 1), str("detail", "no door 2"))},
		{"command_status_failed", &scpbridge.CommandStatus{Tag: 104, Status: scpbridge.StatusFailed, Detail: "output driver fault"},
			layout(f("tag", 4), f("status", 1), f("nak_reason", 1), str("detail", "output driver fault"))},
		{"ping", &scpbridge.Ping{Nonce: 0x1122334455667788}, f("nonce", 8)},
		{"pong", &scpbridge.Pong{Nonce: 0x1122334455667788}, f("nonce", 8)},
		{"bye_shutdown", &scpbridge.Bye{Reason: scpbridge.ByeShutdown, Text: "power down"}, byeLayout("power down")},
		{"bye_draining", &scpbridge.Bye{Reason: scpbridge.ByeDraining, ReconnectAfterMS: 3000}, byeLayout("")},
		{"hello_secret", helloSecret, layout(helloLayout(helloSecret), str("secret", helloSecret.Secret))},
	}
}

// normalize makes decoded and constructed messages comparable: an empty
// list decodes as nil.
func normalize(m scpbridge.Message) scpbridge.Message {
	if c, ok := m.(*scpbridge.Command); ok {
		cc := *c
		if len(cc.Levels) == 0 {
			cc.Levels = nil
		}
		if len(cc.Doors) == 0 {
			cc.Doors = nil
		}
		return &cc
	}
	return m
}

func sameMessage(a, b scpbridge.Message) bool {
	return reflect.DeepEqual(normalize(a), normalize(b))
}

// mustFrame encodes m as a frame or panics; for test fixtures only.
func mustFrame(m scpbridge.Message) []byte {
	b, err := scpbridge.AppendFrame(nil, m)
	if err != nil {
		panic(err)
	}
	return b
}

// goldenStream is every golden frame back to back.
func goldenStream() []byte {
	var b []byte
	for _, c := range goldenCases() {
		b = append(b, mustFrame(c.msg)...)
	}
	return b
}
