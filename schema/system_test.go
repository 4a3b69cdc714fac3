package schema_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/commands"
	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/internal/systest"
	"github.com/scpgate/scpgate/schema"
	"github.com/scpgate/scpgate/streams"
)

// answer is one HTTP answer a handler gave in the test.
type answer struct {
	service, method, pattern string
	status                   int
	body                     []byte
}

// recorder keeps every HTTP answer of the wrapped handlers.
type recorder struct {
	mu      sync.Mutex
	answers []answer
}

func (rec *recorder) wrap(service string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, r) // the handler's mux sets r.Pattern
		rec.mu.Lock()
		rec.answers = append(rec.answers, answer{service, r.Method, r.Pattern, rr.Code, rr.Body.Bytes()})
		rec.mu.Unlock()
		for k, v := range rr.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rr.Code)
		_, _ = w.Write(rr.Body.Bytes())
	})
}

var wildcard = regexp.MustCompile(`\{[^}]*\}`)

// routeKey is "METHOD /path/{}" for a mux pattern or an OpenAPI path.
func routeKey(method, path string) string {
	return strings.ToUpper(method) + " " + wildcard.ReplaceAllString(path, "{}")
}

// openAPIDoc is the part of the OpenAPI document the checks read.
type openAPIDoc struct {
	Paths map[string]map[string]struct {
		Tags      []string `json:"tags"`
		Responses map[string]struct {
			Content map[string]struct {
				Schema struct {
					Ref string `json:"$ref"`
				} `json:"schema"`
			} `json:"content"`
		} `json:"responses"`
	} `json:"paths"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	b, err := schema.FS.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc
}

// TestOpenAPIRoutes: every route the commander and ingest register is in
// the OpenAPI document under the service's tag, and every operation of
// the document is a registered route.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	for service, routes := range map[string][]string{"commander": commander.Routes(), "ingest": ingest.Routes()} {
		registered := map[string]bool{}
		for _, p := range routes {
			method, path, _ := strings.Cut(p, " ")
			registered[routeKey(method, path)] = true
		}
		documented := map[string]bool{}
		for path, ops := range doc.Paths {
			for method, op := range ops {
				for _, tag := range op.Tags {
					if tag == service {
						documented[routeKey(method, path)] = true
					}
				}
			}
		}
		for k := range registered {
			if !documented[k] {
				t.Errorf("%s serves %s, which openapi.json does not document under tag %s", service, k, service)
			}
		}
		for k := range documented {
			if !registered[k] {
				t.Errorf("openapi.json documents %s for %s, which does not serve it", k, service)
			}
		}
	}
	b, err := schema.OpenAPI()
	if err != nil {
		t.Fatalf("bundle: %v", err)
	}
	var bundled map[string]any
	if err := json.Unmarshal(b, &bundled); err != nil {
		t.Fatalf("bundled document: %v", err)
	}
	if bundled["openapi"] != "3.1.0" {
		t.Errorf("openapi: got %v, want 3.1.0", bundled["openapi"])
	}
	refs := 0
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				refs++
				if !strings.HasPrefix(ref, "#/") {
					t.Errorf("bundled document: $ref %q points outside it", ref)
					return
				}
				node := any(bundled)
				for _, p := range strings.Split(ref[2:], "/") {
					m, _ := node.(map[string]any)
					node = m[p]
				}
				if node == nil {
					t.Errorf("bundled document: $ref %q does not resolve", ref)
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(bundled)
	if refs < 20 {
		t.Errorf("bundled document: only %d references", refs)
	}
}

// TestEmittedDocuments runs the whole system under the NATS permissions
// of deploy/nats/auth.conf, drives every command type and the HTTP and
// micro APIs (answers and errors), and validates every document it
// emitted: each event in SCP_EVENTS, result in SCP_RESULTS, record in
// scp_commands and value in scp_state, each micro answer, and each HTTP
// answer against the schema the OpenAPI document gives for its route and
// status, which must be documented.
func TestEmittedDocuments(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole system")
	}
	rec := &recorder{}
	sys := systest.Start(t, systest.Options{Controllers: 2, Wrap: rec.wrap})
	sys.Generate(t, 40)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	vnd, _ := systest.ConnectAs(t, sys.Server, "vendor")
	microAnswers := exerciseMicro(t, ctx, vnd)
	ids := exerciseHTTP(t, sys)
	natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if st := sys.Ingest.Stats(); st.Results < uint64(len(ids)) {
			return fmt.Errorf("ingest stored %d results, want %d", st.Results, len(ids))
		}
		return nil
	})
	exerciseIngest(t, sys, ids)

	// Micro answers.
	for _, m := range microAnswers {
		validate(t, m.ref, m.data, "micro "+m.endpoint+" answer")
	}

	// HTTP answers: documented, and matching the documented schema.
	doc := loadOpenAPI(t)
	byKey := map[string]string{}
	for path, ops := range doc.Paths {
		for method := range ops {
			byKey[routeKey(method, path)] = path
		}
	}
	statuses := map[string]bool{}
	for _, a := range rec.answers {
		method, path, _ := strings.Cut(a.pattern, " ")
		if a.pattern == "" || method == "" {
			t.Errorf("%s answered %d to a request no route matched: %s", a.service, a.status, a.body)
			continue
		}
		key := routeKey(method, path)
		statuses[key+" "+strconv.Itoa(a.status)] = true
		op, ok := doc.Paths[byKey[key]][strings.ToLower(method)]
		if !ok {
			t.Errorf("%s: %s not in openapi.json", a.service, key)
			continue
		}
		resp, ok := op.Responses[strconv.Itoa(a.status)]
		if !ok {
			t.Errorf("%s %s answered %d, which openapi.json does not document: %s", a.service, key, a.status, a.body)
			continue
		}
		ref := resp.Content["application/json"].Schema.Ref
		if ref != "" {
			validate(t, ref, a.body, fmt.Sprintf("%s %s %d", a.service, key, a.status))
		}
	}
	for _, want := range []string{
		"POST /v1/controllers/{}/commands 200", "POST /v1/controllers/{}/commands 202", "POST /v1/controllers/{}/commands 400",
		"POST /v1/controllers/{}/commands 409", "GET /v1/commands/{} 200", "GET /v1/commands/{} 404",
		"GET /v1/events 200", "GET /v1/controllers/{}/state 200", "GET /v1/results/{} 200", "GET /openapi.json 200",
	} {
		if !statuses[want] {
			t.Errorf("the test never saw %s", want)
		}
	}

	// Every stored document.
	eachMsg(t, ctx, sys.Ops, streams.EventsStream, func(m *jetstream.RawStreamMsg) {
		validate(t, "event.json", m.Data, "event "+m.Subject)
	})
	eachMsg(t, ctx, sys.Ops, streams.ResultsStream, func(m *jetstream.RawStreamMsg) {
		validate(t, "command.json", m.Data, "result "+m.Subject)
	})
	eachMsg(t, ctx, sys.Ops, "KV_"+commands.StatusBucket, func(m *jetstream.RawStreamMsg) {
		if len(m.Data) > 0 {
			validate(t, "command.json", m.Data, "status record "+m.Subject)
		}
	})
	points := regexp.MustCompile(`^\$KV\.scp_state\.[A-Za-z0-9_-]+(\.(door|input|output)\.[0-9]+)?$`)
	n := 0
	eachMsg(t, ctx, sys.Ops, "KV_"+streams.StateBucket, func(m *jetstream.RawStreamMsg) {
		if len(m.Data) == 0 {
			return
		}
		sub := points.FindStringSubmatch(m.Subject)
		switch {
		case sub == nil:
			t.Errorf("state key %s: not <controller>[.<door|input|output>.<n>]", m.Subject)
		case sub[2] == "":
			validate(t, "state.json", m.Data, "state "+m.Subject)
		default:
			validate(t, "state.json#/$defs/"+sub[2], m.Data, "state "+m.Subject)
		}
		n++
	})
	if n == 0 {
		t.Error("no state values written")
	}
}

// microAnswer is one answer of a micro endpoint and the schema it must
// match.
type microAnswer struct {
	endpoint, ref string
	data          []byte
}

// exerciseMicro calls each commander endpoint as the vendor user, with
// good and bad requests, and checks the endpoints' metadata points at
// schemas that exist.
func exerciseMicro(t *testing.T, ctx context.Context, nc *nats.Conn) []microAnswer {
	t.Helper()
	var out []microAnswer
	call := func(endpoint string, body string, wantErr bool) []byte {
		t.Helper()
		m, err := nc.RequestWithContext(ctx, commander.SubjectPrefix+"."+endpoint, []byte(body))
		if err != nil {
			t.Fatalf("micro %s %s: %v", endpoint, body, err)
		}
		isErr := m.Header.Get(micro.ErrorCodeHeader) != ""
		if isErr != wantErr {
			t.Fatalf("micro %s %s: got %s (error %v), want error %v", endpoint, body, m.Data, isErr, wantErr)
		}
		ref := map[string]string{"submit": "command.json", "get": "command.json"}[endpoint]
		switch {
		case isErr:
			ref = "api.json#/$defs/error"
		case endpoint == "controllers" && strings.Contains(body, `"controller"`):
			ref = "api.json#/$defs/controller"
		case endpoint == "controllers":
			ref = "api.json#/$defs/controllerList"
		}
		out = append(out, microAnswer{endpoint, ref, m.Data})
		return m.Data
	}
	var first struct{ ID string }
	_ = json.Unmarshal([]byte(call("submit", `{"controller":"SYS-1","type":"momentary_unlock","params":{"door":1,"seconds":5},"wait":"10s","idempotency_key":"micro-1"}`, false)), &first)
	call("submit", `{"controller":"SYS-1","type":"momentary_unlock","params":{"door":1,"seconds":5},"wait":"10s","idempotency_key":"micro-1"}`, false)
	call("submit", `{"controller":"SYS-2","type":"output","params":{"output":9,"action":"on"},"wait":"10s"}`, false)
	call("submit", `{"controller":"SYS-2","type":"reset","ttl":"1m"}`, false)
	call("submit", `{"controller":"SYS-2","TYPE":"reset"}`, true)
	call("get", `{"id":"`+first.ID+`"}`, false)
	call("get", `{"id":"SYS-1.99999"}`, true)
	call("controllers", ``, false)
	call("controllers", `{"limit":1}`, false)
	call("controllers", `{"controller":"SYS-1"}`, false)

	info, _ := micro.ControlSubject(micro.InfoVerb, commander.ServiceName, "")
	m, err := nc.RequestWithContext(ctx, info, nil)
	if err != nil {
		t.Fatalf("micro info: %v", err)
	}
	var si micro.Info
	if err := json.Unmarshal(m.Data, &si); err != nil {
		t.Fatal(err)
	}
	if len(si.Endpoints) != 3 {
		t.Errorf("micro info: %d endpoints, want 3", len(si.Endpoints))
	}
	for _, e := range si.Endpoints {
		for _, k := range []string{"request_schema", "response_schema", "error_schema"} {
			refs := strings.Fields(e.Metadata[k])
			if len(refs) == 0 {
				t.Errorf("endpoint %s: no %s in its metadata", e.Name, k)
			}
			for _, r := range refs {
				ref, ok := strings.CutPrefix(r, schema.BaseURL)
				if !ok {
					t.Errorf("endpoint %s: %s %q is not under %s", e.Name, k, r, schema.BaseURL)
					continue
				}
				compile(t, ref)
			}
		}
	}
	return out
}

// exerciseHTTP drives the commander's HTTP API and returns the ids of
// the commands that ended.
func exerciseHTTP(t *testing.T, sys *systest.System) []string {
	t.Helper()
	var ids []string
	post := func(serial, query, body string) (int, []byte) {
		t.Helper()
		resp, err := http.Post(sys.CommanderURL+"/v1/controllers/"+serial+"/commands"+query, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	good := []string{
		`{"type":"set_time","params":{"time":"2026-03-14T10:26:53.5+01:00"}}`,
		`{"type":"set_time"}`,
		`{"type":"momentary_unlock","params":{"door":2,"seconds":3}}`,
		`{"type":"door_mode","params":{"door":1,"mode":"card_and_pin"}}`,
		`{"type":"output","params":{"output":1,"action":"pulse","ms":200}}`,
		`{"type":"output","params":{"output":2,"action":"on"}}`,
		`{"type":"card_add","params":{"card":"18446744073709551615","facility":7,"pin":"1234","levels":[1,2],"activate":"2026-01-01T00:00:00Z","expire":"2027-01-01T00:00:00Z"}}`,
		`{"type":"card_delete","params":{"card":42}}`,
		`{"type":"access_level","params":{"level":3,"doors":[1,2]}}`,
		`{"type":"id_request"}`,
		`{"type":"tran_status"}`,
		`{"type":"momentary_unlock","params":{"door":99,"seconds":3}}`, // nak out_of_range
	}
	for i, body := range good {
		code, b := post("SYS-1", "?wait=10s", body)
		var r struct{ ID, Status string }
		if err := json.Unmarshal(b, &r); err != nil || code != http.StatusOK {
			t.Fatalf("submit %s: got %d %s, want 200 with a final status", body, code, b)
		}
		ids = append(ids, r.ID)
		if i == 0 {
			resp, err := http.Get(sys.CommanderURL + "/v1/commands/" + r.ID)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	// 202: queued for a controller that is not connected.
	if code, b := post("NOBODY", "", `{"type":"reset","idempotency_key":"k-1"}`); code != http.StatusAccepted {
		t.Errorf("submit for an absent controller: got %d %s, want 202", code, b)
	} else {
		var r struct{ ID string }
		_ = json.Unmarshal(b, &r)
		get(t, sys.CommanderURL+"/v1/commands/"+r.ID)
	}
	if code, b := post("NOBODY", "", `{"type":"id_request","idempotency_key":"k-1"}`); code != http.StatusConflict {
		t.Errorf("idempotency key reused for another command: got %d %s, want 409", code, b)
	}
	for _, body := range []string{`{"type":`, `{"type":"reset","Ttl":"1m"}`, `{"type":"fly"}`, `{"type":"reset","ttl":"1ms"}`} {
		if code, b := post("SYS-1", "", body); code != http.StatusBadRequest {
			t.Errorf("submit %s: got %d %s, want 400", body, code, b)
		}
	}
	// expired: a command for an absent controller past its TTL.
	if code, b := post("NOBODY", "", `{"type":"reset","ttl":"1s"}`); code != http.StatusAccepted {
		t.Errorf("submit with ttl 1s: got %d %s, want 202", code, b)
	} else {
		var r struct{ ID string }
		_ = json.Unmarshal(b, &r)
		natstest.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
			var rec struct{ Status string }
			if err := json.Unmarshal(get(t, sys.CommanderURL+"/v1/commands/"+r.ID), &rec); err != nil || rec.Status != "expired" {
				return fmt.Errorf("command %s: %s (%v), want expired", r.ID, rec.Status, err)
			}
			return nil
		})
	}
	get(t, sys.CommanderURL+"/v1/commands/SYS-1.999999")
	get(t, sys.CommanderURL+"/v1/commands/nonsense")
	get(t, sys.CommanderURL+"/v1/controllers")
	get(t, sys.CommanderURL+"/v1/controllers?limit=1")
	get(t, sys.CommanderURL+"/v1/controllers?limit=x")
	get(t, sys.CommanderURL+"/v1/controllers/SYS-2")
	get(t, sys.CommanderURL+"/v1/controllers/bad.serial")
	get(t, sys.CommanderURL+"/openapi.json")
	return ids
}

// exerciseIngest drives ingest's query API, following pages to the end.
func exerciseIngest(t *testing.T, sys *systest.System, ids []string) {
	t.Helper()
	next := ""
	for pages := 0; ; pages++ {
		var page struct{ Next string }
		q := "/v1/controllers/SYS-1/events?limit=25"
		if next != "" {
			q += "&after=" + next
		}
		if err := json.Unmarshal(get(t, sys.IngestURL+q), &page); err != nil {
			t.Fatal(err)
		}
		if page.Next == "" || pages > 20 {
			break
		}
		next = page.Next
	}
	get(t, sys.IngestURL+"/v1/events?order=desc&kind=access&limit=5")
	get(t, sys.IngestURL+"/v1/events?limit=0")
	get(t, sys.IngestURL+"/v1/events?colour=red")
	natstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		resp, err := http.Get(sys.IngestURL + "/v1/controllers/SYS-2/state")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
	get(t, sys.IngestURL+"/v1/controllers/NOBODY/state")
	get(t, sys.IngestURL+"/v1/controllers/bad.serial/state")
	for _, id := range ids {
		get(t, sys.IngestURL+"/v1/results/"+id)
	}
	get(t, sys.IngestURL+"/v1/results/SYS-1.999999")
	get(t, sys.IngestURL+"/openapi.json")
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

// eachMsg calls fn with every message stored in stream, read by
// sequence as the ops user.
func eachMsg(t *testing.T, ctx context.Context, js jetstream.JetStream, stream string, fn func(*jetstream.RawStreamMsg)) {
	t.Helper()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	state := st.CachedInfo().State
	n := 0
	for seq := state.FirstSeq; seq <= state.LastSeq && seq > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("%s message %d: %v", stream, seq, err)
		}
		fn(m)
		n++
	}
	if n == 0 {
		t.Errorf("%s: no messages", stream)
	}
}
