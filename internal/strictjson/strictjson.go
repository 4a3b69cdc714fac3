// Package strictjson decodes JSON requests strictly: every object key must
// be exactly the JSON name of a field of the target type (encoding/json
// matches names case-insensitively, so {"TYPE": ...} would fill Type), no
// key may appear twice, and no data may follow the value.
package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
)

// KeyError is an object key the target type does not have, or has
// already seen.
type KeyError struct {
	Path   string // where the key is, e.g. "params"; empty at the top
	Key    string // the key as sent
	Want   string // the field it differs from only in case, if any
	Repeat bool   // the key appeared twice
}

// Error names the key and, for a case variant, the field meant.
func (e *KeyError) Error() string {
	where := ""
	if e.Path != "" {
		where = " in " + e.Path
	}
	switch {
	case e.Repeat:
		return fmt.Sprintf("field %q%s given twice", e.Key, where)
	case e.Want != "":
		return fmt.Sprintf("unknown field %q%s: field names are case-sensitive; did you mean %q?", e.Key, where, e.Want)
	}
	return fmt.Sprintf("unknown field %q%s", e.Key, where)
}

// ErrTrailingData is returned by Unmarshal when more follows the value.
var ErrTrailingData = errors.New("more than one JSON value")

// Unmarshal checks data's keys against v's type (a pointer) and then
// decodes it into v with unknown fields disallowed. A key error is a
// *KeyError; other errors are those of encoding/json.
func Unmarshal(data []byte, v any) error {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return errors.New("strictjson: Unmarshal needs a pointer")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := check(dec, t.Elem(), ""); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ErrTrailingData
	}
	dec = json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// check reads one value from dec and checks the keys of every object in
// it against t. Syntax errors are left to the decoding that follows: check
// then returns nil and stops.
func check(dec *json.Decoder, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return skip(dec)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	switch d {
	case '[':
		elem := t
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := check(dec, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, _ = dec.Token()
		return nil
	case '{':
		return checkObject(dec, t, path)
	}
	return nil
}

func checkObject(dec *json.Decoder, t reflect.Type, path string) error {
	var fields map[string]reflect.Type
	if t.Kind() == reflect.Struct {
		fields = fieldsOf(t)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string)
		if seen[key] {
			return &KeyError{Path: path, Key: key, Repeat: true}
		}
		seen[key] = true
		sub := path + "." + key
		if path == "" {
			sub = key
		}
		var ft reflect.Type
		switch t.Kind() {
		case reflect.Struct:
			var ok bool
			if ft, ok = fields[key]; !ok {
				e := &KeyError{Path: path, Key: key}
				for name := range fields {
					if strings.EqualFold(name, key) {
						e.Want = name
					}
				}
				return e
			}
		case reflect.Map:
			ft = t.Elem()
		default:
			ft = reflect.TypeFor[any]()
		}
		if err := check(dec, ft, sub); err != nil {
			return err
		}
	}
	_, _ = dec.Token()
	return nil
}

// skip reads and drops one value.
func skip(dec *json.Decoder) error {
	var raw json.RawMessage
	_ = dec.Decode(&raw)
	return nil
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// fieldsOf returns the JSON names of t's fields and their types,
// including those of embedded structs, as encoding/json sees them.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	addFields(m, t)
	fieldCache.Store(t, m)
	return m
}

func addFields(m map[string]reflect.Type, t reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(m, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := m[name]; !dup {
			m[name] = f.Type
		}
	}
}
