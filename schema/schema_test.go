package schema_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/commands"
	"github.com/scpgate/scpgate/schema"
	"github.com/scpgate/scpgate/streams"
)

// schemas compiles the schema files once.
var schemas = sync.OnceValues(func() (*jsonschema.Compiler, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, f := range schema.Files {
		b, err := schema.FS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		if err := c.AddResource(schema.BaseURL+f, doc); err != nil {
			return nil, err
		}
	}
	return c, nil
})

var (
	compiledMu sync.Mutex
	compiled   = map[string]*jsonschema.Schema{}
)

// compile returns the schema at ref ("command.json",
// "api.json#/$defs/error"), relative to schema.BaseURL.
func compile(t testing.TB, ref string) *jsonschema.Schema {
	t.Helper()
	c, err := schemas()
	if err != nil {
		t.Fatalf("load schemas: %v", err)
	}
	compiledMu.Lock()
	defer compiledMu.Unlock()
	if s, ok := compiled[ref]; ok {
		return s
	}
	s, err := c.Compile(schema.BaseURL + ref)
	if err != nil {
		t.Fatalf("compile %s: %v", ref, err)
	}
	compiled[ref] = s
	return s
}

// validate checks the JSON document data against the schema at ref.
func validate(t testing.TB, ref string, data []byte, what string) {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Errorf("%s: not JSON: %v\n%s", what, err, data)
		return
	}
	if err := compile(t, ref).Validate(doc); err != nil {
		t.Errorf("%s does not match %s: %v\n%s", what, ref, err, data)
	}
}

// loadJSON returns a schema file as a generic JSON tree.
func loadJSON(t testing.TB, file string) map[string]any {
	t.Helper()
	b, err := schema.FS.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return m
}

func TestSchemasCompile(t *testing.T) {
	for _, f := range schema.Files {
		compile(t, f)
		for name := range loadJSON(t, f)["$defs"].(map[string]any) {
			compile(t, f+"#/$defs/"+name)
		}
	}
}

// resolve follows $ref (within a file or to another file) until a schema
// that is not only a reference.
func resolve(t *testing.T, file string, node map[string]any) (string, map[string]any) {
	t.Helper()
	for i := 0; i < 10; i++ {
		ref, ok := node["$ref"].(string)
		if !ok {
			return file, node
		}
		target, frag, _ := strings.Cut(ref, "#")
		if target != "" {
			file = target
		}
		node = loadJSON(t, file)
		for _, p := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
			if p != "" {
				node = node[p].(map[string]any)
			}
		}
	}
	t.Fatalf("%s: $ref loop", file)
	return "", nil
}

// sameKeys compares the keys of the encoded Go value doc, fully
// populated, with the properties of the schema node, at every level.
func sameKeys(t *testing.T, path, file string, node map[string]any, doc any) {
	t.Helper()
	file, node = resolve(t, file, node)
	switch d := doc.(type) {
	case map[string]any:
		props, _ := node["properties"].(map[string]any)
		if props == nil {
			return // a free object (the OpenAPI document)
		}
		var inDoc, inSchema []string
		for k := range d {
			inDoc = append(inDoc, k)
		}
		for k := range props {
			inSchema = append(inSchema, k)
		}
		sort.Strings(inDoc)
		sort.Strings(inSchema)
		if !slices.Equal(inDoc, inSchema) {
			t.Errorf("%s: the Go type encodes keys %v, the schema (%s) has properties %v", path, inDoc, file, inSchema)
		}
		for k, v := range d {
			if p, ok := props[k].(map[string]any); ok {
				sameKeys(t, path+"."+k, file, p, v)
			}
		}
	case []any:
		if items, ok := node["items"].(map[string]any); ok && len(d) > 0 {
			sameKeys(t, path+"[0]", file, items, d[0])
		}
	}
}

var fillTime = time.Date(2026, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

// fill sets every field of v (a pointer) to a value that is not zero,
// recursively: one element per slice, a value behind every pointer.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(fillTime))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	}
}

// TestSchemasMatchGoTypes: every key a Go type encodes is a property of
// its schema, and every property of the schema is encoded, so the two
// cannot drift apart.
func TestSchemasMatchGoTypes(t *testing.T) {
	tests := []struct {
		ref string
		v   any
	}{
		{"event.json", &scpgate.Event{}},
		{"command.json", &scpgate.Result{}},
		{"command.json", &commands.Record{}},
		{"command.json", &commander.SubmitResponse{}},
		{"command-request.json#/$defs/submit", &commander.SubmitRequest{}},
		{"command-request.json#/$defs/microSubmit", &commander.MicroSubmit{}},
		{"command-request.json#/$defs/microGet", &commander.MicroGet{}},
		{"command-request.json#/$defs/microControllers", &commander.MicroControllers{}},
		{"state.json", &scpgate.ControllerState{}},
		{"state.json#/$defs/door", &scpgate.DoorState{}},
		{"state.json#/$defs/input", &scpgate.InputState{}},
		{"state.json#/$defs/output", &scpgate.OutputState{}},
		{"state.json#/$defs/mark", &scpgate.Mark{}},
		{"api.json#/$defs/controller", &commander.Controller{}},
		{"api.json#/$defs/controllerList", &commander.ControllerList{}},
		{"api.json#/$defs/eventPage", &scpgate.EventPage{}},
	}
	for _, tt := range tests {
		fill(reflect.ValueOf(tt.v))
		b, err := json.Marshal(tt.v)
		if err != nil {
			t.Fatalf("%T: %v", tt.v, err)
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		file, frag, _ := strings.Cut(tt.ref, "#")
		node := loadJSON(t, file)
		if frag != "" {
			node = map[string]any{"$ref": tt.ref}
		}
		sameKeys(t, reflect.TypeOf(tt.v).Elem().String(), file, node, doc)
	}
}

// TestAsyncAPI: the AsyncAPI document's payloads are schemas that exist,
// its internal references resolve, and its channels are the subjects of
// package streams and the commander's micro endpoints.
func TestAsyncAPI(t *testing.T) {
	doc := loadJSON(t, "asyncapi.json")
	if doc["asyncapi"] != "3.0.0" {
		t.Errorf("asyncapi: got %v, want 3.0.0", doc["asyncapi"])
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				if strings.HasPrefix(ref, "#/") {
					node := any(doc)
					for _, p := range strings.Split(ref[2:], "/") {
						m, _ := node.(map[string]any)
						node = m[p]
					}
					if node == nil {
						t.Errorf("asyncapi.json: %s does not resolve", ref)
					}
				} else {
					compile(t, ref)
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
	walk(doc)
	addresses := map[string]bool{}
	for _, c := range doc["channels"].(map[string]any) {
		if a, ok := c.(map[string]any)["address"].(string); ok {
			addresses[a] = true
		}
	}
	for _, a := range []string{
		"scp.evt.{controller}.{kind}", "scp.res.{controller}", "$KV.scp_state.{key}",
		commander.SubjectPrefix + ".submit", commander.SubjectPrefix + ".get", commander.SubjectPrefix + ".controllers",
	} {
		if !addresses[a] {
			t.Errorf("asyncapi.json: no channel %s", a)
		}
	}
	if s, _ := streams.EventSubject("C1", scpgate.KindAccess); s != "scp.evt.C1.access" {
		t.Errorf("events subject %s no longer matches the channel", s)
	}
	if s, _ := streams.ResultSubject("C1"); s != "scp.res.C1" {
		t.Errorf("results subject %s no longer matches the channel", s)
	}
}
