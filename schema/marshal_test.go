package schema_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/scpgate/scpgate"
)

// TestMarshalersKeepEveryField: the types that encode themselves (fixed
// width times, card numbers twice) copy their fields into a struct of
// their own; a field added to the type but not to that copy would be
// dropped from every document without a word. Each of them, fully
// populated, must encode every field its struct tags name.
func TestMarshalersKeepEveryField(t *testing.T) {
	for _, v := range []any{
		&scpgate.Event{}, &scpgate.Card{}, &scpgate.Mark{}, &scpgate.ControllerState{},
		&scpgate.CommandParams{}, &scpgate.Command{}, &scpgate.Result{},
	} {
		rv := reflect.ValueOf(v)
		fill(rv)
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%T: %v", v, err)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%T: %s: %v", v, b, err)
		}
		typ := rv.Elem().Type()
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if _, ok := got[name]; !ok {
				t.Errorf("%s.%s: key %q missing from its encoding %s", typ.Name(), f.Name, name, b)
			}
		}
	}
}
