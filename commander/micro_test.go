package commander_test

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commander"
)

func (e *env) request(endpoint string, body any) *nats.Msg {
	e.t.Helper()
	b, ok := body.([]byte)
	if !ok {
		b = mustJSON(e.t, body)
	}
	m, err := e.nc.Request(commander.SubjectPrefix+"."+endpoint, b, 10*time.Second)
	if err != nil {
		e.t.Fatalf("request %s: %v", endpoint, err)
	}
	return m
}

func TestMicroMatchesHTTP(t *testing.T) {
	e := newEnv(t)
	svc, err := e.svc.Register(e.nc)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if info := svc.Info(); info.Name != commander.ServiceName || len(info.Endpoints) != 3 {
		t.Fatalf("got service %+v, want %s with 3 endpoints", info, commander.ServiceName)
	}

	// submit over NATS, then the same key over HTTP: one command.
	m := e.request("submit", map[string]any{"controller": "S1", "type": "output",
		"params": map[string]any{"output": 2, "action": "off"}, "idempotency_key": "k1"})
	var viaNATS commander.SubmitResponse
	if err := json.Unmarshal(m.Data, &viaNATS); err != nil || m.Header.Get(micro.ErrorCodeHeader) != "" {
		t.Fatalf("submit: got %s (%v, headers %v), want a SubmitResponse", m.Data, err, m.Header)
	}
	if viaNATS.Status != scpgate.StatusQueued || viaNATS.ID == "" || viaNATS.Expires.IsZero() {
		t.Fatalf("submit: got %+v, want queued with id and expiry", viaNATS)
	}
	viaHTTP := e.submit("S1", map[string]any{"type": "output", "params": map[string]any{"output": 2, "action": "off"},
		"idempotency_key": "k1"})
	if viaHTTP.ID != viaNATS.ID || !viaHTTP.Expires.Equal(viaNATS.Expires) || !viaHTTP.Duplicate {
		t.Fatalf("got HTTP %+v, NATS %+v; want the same command", viaHTTP, viaNATS)
	}

	// get answers the same bytes.
	m = e.request("get", map[string]any{"id": viaNATS.ID})
	a := e.get("/v1/commands/" + viaNATS.ID)
	if !bytes.Equal(append(m.Data, '\n'), a.body) {
		t.Fatalf("get: got NATS %s, HTTP %s; want the same", m.Data, a.body)
	}

	// Errors carry the HTTP status and the same JSON body.
	errorCases := []struct {
		endpoint string
		nats     any
		http     func() answer
	}{
		{"submit", map[string]any{"controller": "S1", "type": "momentary_unlock", "params": map[string]any{"door": 1}},
			func() answer {
				return e.post("S1", "", map[string]any{"type": "momentary_unlock", "params": map[string]any{"door": 1}})
			}},
		{"submit", map[string]any{"controller": "S.1", "type": "reset"},
			func() answer { return e.post("S.1", "", map[string]any{"type": "reset"}) }},
		{"get", map[string]any{"id": "S1.424242"}, func() answer { return e.get("/v1/commands/S1.424242") }},
	}
	for _, tt := range errorCases {
		m := e.request(tt.endpoint, tt.nats)
		a := tt.http()
		if got := m.Header.Get(micro.ErrorCodeHeader); got != strconv.Itoa(a.code) {
			t.Errorf("%s %v: got error code header %q, want %d", tt.endpoint, tt.nats, got, a.code)
		}
		if !bytes.Equal(append(m.Data, '\n'), a.body) || m.Header.Get(micro.ErrorHeader) == "" {
			t.Errorf("%s %v: got NATS %s, HTTP %s; want the same error", tt.endpoint, tt.nats, m.Data, a.body)
		}
	}
	m = e.request("submit", []byte(`{"controller":"S1","type":"reset","wait":"later"}`))
	if m.Header.Get(micro.ErrorCodeHeader) != "400" {
		t.Errorf("submit with a bad wait: got %s %v, want 400", m.Data, m.Header)
	}

	// controllers: one and the list.
	m = e.request("controllers", map[string]any{"controller": "C1"})
	a = e.get("/v1/controllers/C1")
	if !bytes.Equal(append(m.Data, '\n'), a.body) {
		t.Errorf("controller: got NATS %s, HTTP %s; want the same", m.Data, a.body)
	}
	m = e.request("controllers", []byte{})
	a = e.get("/v1/controllers")
	if !bytes.Equal(append(m.Data, '\n'), a.body) {
		t.Errorf("controllers: got NATS %s, HTTP %s; want the same", m.Data, a.body)
	}
}

func TestMicroWaitDoesNotBlockOthers(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.Register(e.nc); err != nil {
		t.Fatalf("register: %v", err)
	}
	e.fakeDriver("S1", scpgate.StatusFailed)

	// A submission that waits (no driver for S9) ...
	waiting := make(chan *nats.Msg, 1)
	go func() {
		m, err := e.nc.Request(commander.SubjectPrefix+".submit", []byte(`{"controller":"S9","type":"reset","wait":"2s"}`), 10*time.Second)
		if err != nil {
			t.Errorf("waiting submit: %v", err)
		}
		waiting <- m
	}()
	// ... does not hold up another one that gets its result at once.
	start := time.Now()
	m := e.request("submit", []byte(`{"controller":"S1","type":"tran_status","wait":"5s"}`))
	var r commander.SubmitResponse
	if err := json.Unmarshal(m.Data, &r); err != nil || r.Result == nil || r.Result.Status != scpgate.StatusFailed {
		t.Fatalf("submit with wait: got %s (%v), want the failed result", m.Data, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("submit with wait answered after %s, want at once while another waits", d)
	}
	m = <-waiting
	r = commander.SubmitResponse{}
	if err := json.Unmarshal(m.Data, &r); err != nil || r.Status != scpgate.StatusQueued || r.Result != nil {
		t.Fatalf("waiting submit: got %s (%v), want queued after its wait", m.Data, err)
	}
}
