package strictjson_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scpgate/scpgate/internal/strictjson"
)

type inner struct {
	Door  *uint16   `json:"door,omitempty"`
	At    time.Time `json:"at"`
	Skip  string    `json:"-"`
	Count int
}

type Embedded struct {
	Key string `json:"key"`
}

type outer struct {
	Type  string           `json:"type"`
	Inner inner            `json:"inner"`
	List  []inner          `json:"list"`
	Map   map[string]inner `json:"map"`
	Any   any              `json:"any"`
	Embedded
}

func TestUnmarshal(t *testing.T) {
	good := []string{
		`{"type":"a","inner":{"door":1,"at":"2026-01-02T03:04:05Z","Count":2},"list":[{"door":2}],"map":{"X":{"door":3}},"key":"k"}`,
		`{"any":{"Whatever":1,"whatever":2}}`,
		`{}`,
		` {"type":"a"} `,
	}
	for _, in := range good {
		var v outer
		if err := strictjson.Unmarshal([]byte(in), &v); err != nil {
			t.Errorf("%s: got %v, want nil", in, err)
		}
	}
	var v outer
	if err := strictjson.Unmarshal([]byte(good[0]), &v); err != nil || v.Type != "a" || *v.List[0].Door != 2 || v.Key != "k" || v.Inner.Count != 2 {
		t.Errorf("decoded %+v, %v", v, err)
	}

	bad := []struct{ in, want string }{
		{`{"TYPE":"a"}`, `unknown field "TYPE": field names are case-sensitive; did you mean "type"?`},
		{`{"type":"a","Type":"b"}`, `did you mean "type"`},
		{`{"type":"a","type":"b"}`, `field "type" given twice`},
		{`{"inner":{"Door":1}}`, `unknown field "Door" in inner`},
		{`{"list":[{},{"DOOR":1}]}`, `unknown field "DOOR" in list[1]`},
		{`{"map":{"X":{"colour":1}}}`, `unknown field "colour" in map.X`},
		{`{"inner":{"count":1}}`, `did you mean "Count"`},
		{`{"Skip":"x"}`, `unknown field "Skip"`},
		{`{"KEY":"x"}`, `did you mean "key"`},
	}
	for _, tt := range bad {
		var v outer
		err := strictjson.Unmarshal([]byte(tt.in), &v)
		var ke *strictjson.KeyError
		if !errors.As(err, &ke) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want a *KeyError saying %q", tt.in, err, tt.want)
		}
	}
	if err := strictjson.Unmarshal([]byte(`{} {}`), &v); !errors.Is(err, strictjson.ErrTrailingData) {
		t.Errorf("two values: got %v, want ErrTrailingData", err)
	}
	for _, in := range []string{`{"type":`, `{"type":1}`, `[]`, ``} {
		if err := strictjson.Unmarshal([]byte(in), &v); err == nil {
			t.Errorf("%q: got nil, want an error", in)
		}
	}
}
