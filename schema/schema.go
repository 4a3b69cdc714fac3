// Package schema holds the machine-readable contract of scpgate's vendor
// API: JSON Schemas (draft 2020-12) of every document it publishes or
// serves, the OpenAPI 3.1 document of the commander's and ingest's HTTP
// APIs, and the AsyncAPI 3 document of its NATS subjects and micro
// endpoints. docs/api.md explains them.
//
//	event.json            an event on scp.evt.<controller>.<kind>
//	command-request.json  a command submission (HTTP body, micro requests)
//	command.json          the command document: submit reply, status, result
//	state.json            the values of the scp_state bucket
//	api.json              errors, controller presence, pages
//	openapi.json          the HTTP APIs (served bundled at /openapi.json)
//	asyncapi.json         the NATS API
//
// The files are the source; package tests hold them to the Go types and
// to every document the system emits in the tests.
package schema

import (
	"embed"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// FS holds the schema files.
//
//go:embed *.json
var FS embed.FS

// Files lists the JSON Schema files (not the API documents).
var Files = []string{"event.json", "command-request.json", "command.json", "state.json", "api.json"}

// BaseURL is the base of every schema's $id.
const BaseURL = "https://github.com/scpgate/scpgate/schema/"

// componentNames are the names of the schema files in the bundled OpenAPI
// document's components.
var componentNames = map[string]string{
	"event.json": "Event", "command-request.json": "CommandRequest", "command.json": "Command",
	"state.json": "State", "api.json": "API",
}

var openAPI = sync.OnceValues(bundle)

// OpenAPI returns the OpenAPI document with every schema file it refers
// to inlined under components.schemas, so that it stands alone: what
// GET /openapi.json serves.
func OpenAPI() ([]byte, error) { return openAPI() }

func bundle() ([]byte, error) {
	raw, err := FS.ReadFile("openapi.json")
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("decode openapi.json: %w", err)
	}
	comps, _ := doc["components"].(map[string]any)
	if comps == nil {
		comps = map[string]any{}
		doc["components"] = comps
	}
	schemas, _ := comps["schemas"].(map[string]any)
	if schemas == nil {
		schemas = map[string]any{}
		comps["schemas"] = schemas
	}
	for _, f := range Files {
		b, err := FS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var s map[string]any
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("decode %s: %w", f, err)
		}
		delete(s, "$schema")
		delete(s, "$id")
		schemas[componentNames[f]] = rewriteRefs(s, f)
	}
	doc = rewriteRefs(doc, "").(map[string]any)
	return json.MarshalIndent(doc, "", "  ")
}

// rewriteRefs turns every $ref of v (found in file, "" for the OpenAPI
// document) into a reference inside the bundled document.
func rewriteRefs(v any, file string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "$ref" {
				x[k] = bundledRef(s, file)
				continue
			}
			x[k] = rewriteRefs(e, file)
		}
	case []any:
		for i, e := range x {
			x[i] = rewriteRefs(e, file)
		}
	}
	return v
}

// bundledRef maps a reference to a schema file (or inside one) onto
// components.schemas; references within the OpenAPI document stay.
func bundledRef(ref, file string) string {
	target, frag, _ := strings.Cut(ref, "#")
	if target == "" {
		target = file
	}
	name, ok := componentNames[target]
	if !ok {
		return ref
	}
	return "#/components/schemas/" + name + frag
}

// wildcard matches a path wildcard of a route pattern or an OpenAPI path.
var wildcard = regexp.MustCompile(`\{[^}]*\}`)

var documented = sync.OnceValues(func() (map[string]bool, error) {
	raw, err := FS.ReadFile("openapi.json")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("decode openapi.json: %w", err)
	}
	m := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			for status := range op.Responses {
				m[strings.ToUpper(method)+" "+wildcard.ReplaceAllString(path, "{}")+" "+status] = true
			}
		}
	}
	return m, nil
})

// Documented reports whether the OpenAPI document lists status as an
// answer of the route pattern ("GET /v1/commands/{id}", as registered on
// an http.ServeMux; wildcard names do not matter). Tests of the handlers
// use it to hold every answer they see to the document.
func Documented(pattern string, status int) bool {
	m, err := documented()
	if err != nil {
		return false
	}
	method, path, _ := strings.Cut(pattern, " ")
	return m[method+" "+wildcard.ReplaceAllString(path, "{}")+" "+strconv.Itoa(status)]
}
