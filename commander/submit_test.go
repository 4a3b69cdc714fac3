package commander_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/commands"
)

func TestSubmitStoresCommand(t *testing.T) {
	e := newEnv(t)
	before := time.Now().UTC()
	r := e.submit("S1", map[string]any{
		"type": "momentary_unlock", "params": map[string]any{"door": 3, "seconds": 5}, "ttl": "30s",
	})
	if r.Status != scpgate.StatusQueued || r.Controller != "S1" || r.Type != scpgate.CmdMomentaryUnlock {
		t.Fatalf("got %+v, want a queued momentary_unlock for S1", r)
	}
	if r.ID != commands.ID("S1", r.Seq) || r.Seq == 0 {
		t.Fatalf("got id %q seq %d, want S1.<seq>", r.ID, r.Seq)
	}
	if got := r.Expires.Sub(r.Created); got != 30*time.Second || r.Created.Before(before) {
		t.Fatalf("got created %s expires %s (ttl %s), want ttl 30s after %s", r.Created, r.Expires, got, before)
	}

	msg, err := e.h.Commands.GetMsg(e.ctx, r.Seq)
	if err != nil {
		t.Fatalf("get stored command: %v", err)
	}
	if msg.Subject != "scp.cmd.S1" {
		t.Errorf("got subject %q, want scp.cmd.S1", msg.Subject)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(msg.Data, &raw); err != nil {
		t.Fatalf("decode stored command: %v", err)
	}
	if _, ok := raw["id"]; ok {
		t.Errorf("stored document %s has an id; want none (the id is derived from the sequence)", msg.Data)
	}
	var c scpgate.Command
	if err := json.Unmarshal(msg.Data, &c); err != nil {
		t.Fatalf("decode stored command: %v", err)
	}
	want := scpgate.Command{V: scpgate.SchemaVersion, Controller: "S1", Type: scpgate.CmdMomentaryUnlock,
		Params: scpgate.CommandParams{Door: u16(3), Seconds: 5}, Created: r.Created, Expires: r.Expires}
	if got, _ := json.Marshal(c); !bytes.Equal(got, mustJSON(t, want)) {
		t.Errorf("got stored command %s, want %s", got, mustJSON(t, want))
	}
	if ttl := msg.Header.Get(jetstream.MsgTTLHeader); ttl != (30*time.Second + 24*time.Hour).String() {
		t.Errorf("got message TTL %q, want the command TTL plus 24h", ttl)
	}
	if id := msg.Header.Get(nats.MsgIdHdr); id == "" || strings.Contains(id, ".k.") {
		t.Errorf("got message id %q, want a random one", id)
	}

	// Without a TTL the default (1 h) applies.
	r = e.submit("S1", map[string]any{"type": "reset"})
	if got := r.Expires.Sub(r.Created); got != time.Hour {
		t.Errorf("got default ttl %s, want 1h", got)
	}

	// GET answers queued.
	var rec commands.Record
	a := e.get("/v1/commands/" + r.ID)
	if a.code != http.StatusOK {
		t.Fatalf("get %s: got %d %s, want 200", r.ID, a.code, a.body)
	}
	a.decode(t, &rec)
	if rec.ID != r.ID || rec.Status != scpgate.StatusQueued || rec.Type != scpgate.CmdReset || rec.Seq != r.Seq ||
		!rec.Expires.Equal(r.Expires) || rec.Controller != "S1" {
		t.Errorf("get %s: got %+v, want queued reset", r.ID, rec)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return b
}

func TestSubmitValidation(t *testing.T) {
	e := newEnv(t)
	type tc struct {
		name  string
		body  string
		code  string // "" for 202
		param string // named in the message
	}
	tests := []tc{
		{"set_time", `{"type":"set_time"}`, "", ""},
		{"set_time with time", `{"type":"set_time","params":{"time":"2025-06-01T12:00:00+02:00"}}`, "", ""},
		{"set_time before 1970", `{"type":"set_time","params":{"time":"1960-01-01T00:00:00Z"}}`, "bad_params", "time"},
		{"set_time with door", `{"type":"set_time","params":{"door":1}}`, "bad_params", "door"},

		{"momentary_unlock", `{"type":"momentary_unlock","params":{"door":1,"seconds":3600}}`, "", ""},
		{"momentary_unlock no door", `{"type":"momentary_unlock","params":{"seconds":5}}`, "bad_params", "door"},
		{"momentary_unlock door 0", `{"type":"momentary_unlock","params":{"door":0,"seconds":5}}`, "bad_params", "door"},
		{"momentary_unlock door 65536", `{"type":"momentary_unlock","params":{"door":65536,"seconds":5}}`, "bad_params", "door"},
		{"momentary_unlock no seconds", `{"type":"momentary_unlock","params":{"door":1}}`, "bad_params", "seconds"},
		{"momentary_unlock 3601 s", `{"type":"momentary_unlock","params":{"door":1,"seconds":3601}}`, "bad_params", "seconds"},

		{"door_mode", `{"type":"door_mode","params":{"door":2,"mode":"locked"}}`, "", ""},
		{"door_mode no door", `{"type":"door_mode","params":{"mode":"locked"}}`, "bad_params", "door"},
		{"door_mode bad mode", `{"type":"door_mode","params":{"door":2,"mode":"ajar"}}`, "bad_params", "mode"},
		{"door_mode no mode", `{"type":"door_mode","params":{"door":2}}`, "bad_params", "mode"},

		{"output pulse", `{"type":"output","params":{"output":1,"action":"pulse","ms":250}}`, "", ""},
		{"output on", `{"type":"output","params":{"output":1,"action":"on"}}`, "", ""},
		{"output no output", `{"type":"output","params":{"action":"on"}}`, "bad_params", "output"},
		{"output bad action", `{"type":"output","params":{"output":1,"action":"blink"}}`, "bad_params", "action"},
		{"output pulse no ms", `{"type":"output","params":{"output":1,"action":"pulse"}}`, "bad_params", "ms"},
		{"output pulse too long", `{"type":"output","params":{"output":1,"action":"pulse","ms":3600001}}`, "bad_params", "ms"},
		{"output on with ms", `{"type":"output","params":{"output":1,"action":"on","ms":5}}`, "bad_params", "ms"},

		{"card_add", `{"type":"card_add","params":{"card":99,"facility":7,"pin":"0042","levels":[1,2],` +
			`"activate":"2025-01-01T00:00:00Z","expire":"2030-01-01T00:00:00Z"}}`, "", ""},
		{"card_add no card", `{"type":"card_add","params":{"facility":7}}`, "bad_params", "card"},
		{"card_add long pin", `{"type":"card_add","params":{"card":1,"pin":"123456789"}}`, "bad_params", "pin"},
		{"card_add letters in pin", `{"type":"card_add","params":{"card":1,"pin":"12ab"}}`, "bad_params", "pin"},
		{"card_add 33 levels", `{"type":"card_add","params":{"card":1,"levels":` + list(33) + `}}`, "bad_params", "levels"},
		{"card_add expire before activate", `{"type":"card_add","params":{"card":1,"activate":"2030-01-01T00:00:00Z",` +
			`"expire":"2025-01-01T00:00:00Z"}}`, "bad_params", "expire"},
		{"card_add negative facility", `{"type":"card_add","params":{"card":1,"facility":-1}}`, "bad_params", "facility"},

		{"card_delete", `{"type":"card_delete","params":{"card":99}}`, "", ""},
		{"card_delete no card", `{"type":"card_delete","params":{}}`, "bad_params", "card"},

		{"access_level", `{"type":"access_level","params":{"level":3,"doors":[1,2,3]}}`, "", ""},
		{"access_level no level", `{"type":"access_level","params":{"doors":[1]}}`, "bad_params", "level"},
		{"access_level 65 doors", `{"type":"access_level","params":{"level":1,"doors":` + list(65) + `}}`, "bad_params", "doors"},
		{"access_level door 0", `{"type":"access_level","params":{"level":1,"doors":[0]}}`, "bad_params", "doors"},

		{"reset", `{"type":"reset"}`, "", ""},
		{"id_request", `{"type":"id_request","params":{}}`, "", ""},
		{"tran_status", `{"type":"tran_status"}`, "", ""},
		{"tran_status with card", `{"type":"tran_status","params":{"card":5}}`, "bad_params", "card"},

		{"unknown type", `{"type":"open_sesame"}`, "unknown_type", "open_sesame"},
		{"no type", `{}`, "unknown_type", ""},
		{"unknown field", `{"type":"reset","colour":"red"}`, "bad_request", "colour"},
		{"unknown param", `{"type":"reset","params":{"colour":"red"}}`, "bad_request", "colour"},
		{"key in another case", `{"type":"reset","TYPE":"card_delete"}`, "bad_request", `did you mean "type"`},
		{"only key in another case", `{"Type":"reset"}`, "bad_request", `did you mean "type"`},
		{"param in another case", `{"type":"card_delete","params":{"Card":5}}`, "bad_request", `"Card" in params`},
		{"key twice", `{"type":"reset","type":"reset"}`, "bad_request", "given twice"},
		{"card as a string", `{"type":"card_delete","params":{"card":"18446744073709551615"}}`, "", ""},
		{"card string not a number", `{"type":"card_delete","params":{"card":"12x"}}`, "bad_request", "card"},
		{"card past 64 bits", `{"type":"card_delete","params":{"card":"18446744073709551616"}}`, "bad_request", "card"},
		{"malformed", `{"type":`, "bad_request", ""},
		{"two values", `{"type":"reset"} {}`, "bad_request", ""},
		{"bad ttl", `{"type":"reset","ttl":"soon"}`, "bad_params", "ttl"},
		{"ttl too short", `{"type":"reset","ttl":"500ms"}`, "bad_params", "ttl"},
		{"ttl too long", `{"type":"reset","ttl":"169h"}`, "bad_params", "ttl"},
		{"bad key", `{"type":"reset","idempotency_key":"a b"}`, "bad_params", "idempotency_key"},
	}
	good := uint64(0)
	for _, tt := range tests {
		a := e.post("S1", "", []byte(tt.body))
		if tt.code == "" {
			good++
			if a.code != http.StatusAccepted {
				t.Errorf("%s: got %d %s, want 202", tt.name, a.code, a.body)
			}
			continue
		}
		msg, code := a.apiError(t)
		if a.code != http.StatusBadRequest || code != tt.code || !strings.Contains(msg, tt.param) {
			t.Errorf("%s: got %d %s, want 400 %s naming %q", tt.name, a.code, a.body, tt.code, tt.param)
		}
	}

	other := []struct {
		name, serial, query string
		body                []byte
		want                string
	}{
		{"bad serial", "S.1", "", []byte(`{"type":"reset"}`), "serial"},
		{"long serial", strings.Repeat("x", 33), "", []byte(`{"type":"reset"}`), "serial"},
		{"body over 64 KiB", "S1", "", append([]byte(`{"type":"reset","ttl":"`), bytes.Repeat([]byte("1"), 70<<10)...), "64 KiB"},
		{"bad wait", "S1", "?wait=soon", []byte(`{"type":"reset"}`), "wait"},
		{"wait too long", "S1", "?wait=61s", []byte(`{"type":"reset"}`), "wait"},
		{"query in another case", "S1", "?Wait=5s", []byte(`{"type":"reset"}`), `"Wait"`},
		{"wait twice", "S1", "?wait=1s&wait=2s", []byte(`{"type":"reset"}`), "more than once"},
	}
	for _, tt := range other {
		a := e.post(tt.serial, tt.query, tt.body)
		msg, code := a.apiError(t)
		if a.code != http.StatusBadRequest || code != "bad_request" || !strings.Contains(msg, tt.want) {
			t.Errorf("%s: got %d %s, want 400 bad_request naming %q", tt.name, a.code, a.body, tt.want)
		}
	}
	if n := e.pending("S1"); n != good {
		t.Errorf("got %d queued commands, want %d (only the good ones)", n, good)
	}
}

func list(n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprint(i + 1)
	}
	return "[" + strings.Join(s, ",") + "]"
}

func TestIdempotency(t *testing.T) {
	e := newEnv(t)
	body := map[string]any{"type": "door_mode", "params": map[string]any{"door": 4, "mode": "unlocked"}, "idempotency_key": "order-17:a"}
	first := e.submit("S1", body)
	again := e.submit("S1", body)
	if again.ID != first.ID || !again.Duplicate || first.Duplicate || !again.Expires.Equal(first.Expires) {
		t.Fatalf("second submission: got %+v, want the first one's id %s marked duplicate", again, first.ID)
	}
	if n := e.pending("S1"); n != 1 {
		t.Fatalf("got %d queued commands, want 1", n)
	}
	msg, err := e.h.Commands.GetMsg(e.ctx, first.Seq)
	if err != nil || msg.Header.Get(nats.MsgIdHdr) != "S1.k.order-17:a" {
		t.Fatalf("got message %v (%v), want message id S1.k.order-17:a", msg, err)
	}

	// The same key on another controller is another command.
	other := e.submit("S2", body)
	if other.ID == first.ID || other.Duplicate {
		t.Fatalf("same key on S2: got %+v, want a new command", other)
	}

	// The same key with another body is a conflict.
	body["params"] = map[string]any{"door": 4, "mode": "locked"}
	a := e.post("S1", "", body)
	if msg, code := a.apiError(t); a.code != http.StatusConflict || code != "conflict" || !strings.Contains(msg, first.ID) {
		t.Fatalf("different body, same key: got %d %s, want 409 conflict naming %s", a.code, a.body, first.ID)
	}
	if n := e.pending("S1"); n != 1 {
		t.Fatalf("after the conflict: got %d queued commands, want 1", n)
	}

	// Once the command ended and left the queue, the key answers its result.
	body["params"] = map[string]any{"door": 4, "mode": "unlocked"}
	finished := time.Now().UTC()
	e.putRecord(commands.Record{ID: first.ID, Controller: "S1", Type: scpgate.CmdDoorMode, Status: scpgate.StatusNAK,
		Reason: "out_of_range", Seq: first.Seq, Created: first.Created, Finished: &finished})
	if err := e.h.Commands.DeleteMsg(e.ctx, first.Seq); err != nil {
		t.Fatalf("delete command: %v", err)
	}
	a = e.post("S1", "", body)
	var done commander.SubmitResponse
	a.decode(t, &done)
	if a.code != http.StatusOK || done.ID != first.ID || done.Result == nil || done.Result.Status != scpgate.StatusNAK ||
		done.Result.Reason != "out_of_range" {
		t.Fatalf("key of a finished command: got %d %s, want 200 with its nak", a.code, a.body)
	}
	// ... and a different type under that key is still a conflict.
	a = e.post("S1", "", map[string]any{"type": "reset", "idempotency_key": "order-17:a"})
	if _, code := a.apiError(t); a.code != http.StatusConflict || code != "conflict" {
		t.Fatalf("other type, key of a finished command: got %d %s, want 409", a.code, a.body)
	}
}

func TestQueueFull(t *testing.T) {
	e := newEnv(t, withQueueCap(2))
	for range 2 {
		e.submit("S1", map[string]any{"type": "reset"})
	}
	a := e.post("S1", "", map[string]any{"type": "reset"})
	msg, code := a.apiError(t)
	if a.code != http.StatusTooManyRequests || code != "queue_full" || msg != "controller S1 has 2 pending commands" {
		t.Fatalf("third command: got %d %s, want 429 queue_full \"controller S1 has 2 pending commands\"", a.code, a.body)
	}
	e.submit("S2", map[string]any{"type": "reset"}) // another controller still has room
}

func TestWaitForResult(t *testing.T) {
	e := newEnv(t)
	e.fakeDriver("S1", scpgate.StatusOK)
	start := time.Now()
	a := e.post("S1", "?wait=5s", map[string]any{"type": "output", "params": map[string]any{"output": 1, "action": "on"}})
	var r commander.SubmitResponse
	a.decode(t, &r)
	if a.code != http.StatusOK || r.Status != scpgate.StatusOK || r.Result == nil || r.Result.ID != r.ID ||
		r.Result.Type != scpgate.CmdOutput || r.Result.Driver != "fake" {
		t.Fatalf("got %d %s, want 200 with the ok result", a.code, a.body)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("answer took %s, want well within the wait", d)
	}

	// Many waiters on one controller each get their own result.
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, _ := json.Marshal(map[string]any{"type": "card_delete", "params": map[string]any{"card": i + 1}})
			resp, err := e.svc.Submit(e.ctx, "S1", commander.SubmitRequest{Type: scpgate.CmdCardDelete,
				Params: scpgate.CommandParams{Card: scpgate.CardNumber(i + 1)}, Wait: 10 * time.Second})
			if err != nil || resp.Result == nil || resp.Result.ID != resp.ID || resp.Result.Seq != resp.Seq {
				t.Errorf("waiter %d (%s): got %+v, %v; want its own result", i, b, resp, err)
			}
		}()
	}
	wg.Wait()
}

func TestWaitWithoutResult(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	a := e.post("S1", "?wait=300ms", map[string]any{"type": "reset"})
	var r commander.SubmitResponse
	a.decode(t, &r)
	if a.code != http.StatusAccepted || r.Status != scpgate.StatusQueued || r.Result != nil {
		t.Fatalf("got %d %s, want 202 queued", a.code, a.body)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("answered after %s, want after the 300ms wait", d)
	}
}

func TestWaitEndsWithSentStatus(t *testing.T) {
	e := newEnv(t)
	// A driver that sends the command but gets no answer from the
	// controller: it writes the "sent" record only.
	bell, err := e.nc.SubscribeSync("scp.cmd.S1")
	if err != nil {
		t.Fatalf("doorbell: %v", err)
	}
	go func() {
		if _, err := bell.NextMsg(10 * time.Second); err != nil {
			t.Errorf("doorbell: %v", err)
			return
		}
		msg, err := e.h.Commands.GetLastMsgForSubject(e.ctx, "scp.cmd.S1")
		if err != nil {
			t.Errorf("read command: %v", err)
			return
		}
		now := time.Now().UTC()
		rec, _ := json.Marshal(commands.Record{ID: commands.ID("S1", msg.Sequence), Controller: "S1", Type: scpgate.CmdReset,
			Status: scpgate.StatusSent, Seq: msg.Sequence, Sent: &now, Driver: "d1"})
		if _, err := e.status.Put(e.ctx, commands.ID("S1", msg.Sequence), rec); err != nil {
			t.Errorf("put sent record: %v", err)
		}
	}()
	a := e.post("S1", "?wait=1s", map[string]any{"type": "reset"})
	var r commander.SubmitResponse
	a.decode(t, &r)
	if a.code != http.StatusAccepted || r.Status != scpgate.StatusSent || r.Result != nil {
		t.Fatalf("got %d %s, want 202 sent", a.code, a.body)
	}
}

func TestNATSDown(t *testing.T) {
	e := newEnv(t, withTimeout(500*time.Millisecond))
	r := e.submit("S1", map[string]any{"type": "reset"})
	e.srv.Shutdown()
	e.srv.WaitForShutdown()

	a := e.post("S1", "", map[string]any{"type": "reset"})
	if _, code := a.apiError(t); a.code != http.StatusServiceUnavailable || code != "unavailable" {
		t.Fatalf("submit with NATS down: got %d %s, want 503 unavailable", a.code, a.body)
	}
	a = e.get("/v1/commands/" + r.ID)
	if _, code := a.apiError(t); a.code != http.StatusServiceUnavailable || code != "unavailable" {
		t.Fatalf("get with NATS down: got %d %s, want 503 unavailable", a.code, a.body)
	}
	a = e.get("/v1/controllers/S1")
	if _, code := a.apiError(t); a.code != http.StatusServiceUnavailable || code != "unavailable" {
		t.Fatalf("controller with NATS down: got %d %s, want 503 unavailable", a.code, a.body)
	}
}
