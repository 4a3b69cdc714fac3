// Package envcheck checks a service's environment beyond what envconfig
// does: values against the ranges a config struct declares in its tags,
// envconfig's parse errors rewritten in plain words, and variables with
// the service prefix that no setting reads (a typo, most often).
//
// A field declares its range with tags next to its envconfig tag:
//
//	DrainRate float64 `envconfig:"DRAIN_RATE" min:"0.001"`
//	LogLevel  string  `envconfig:"LOG_LEVEL" oneof:"trace,debug,info,warn,error"`
//
// min and max are inclusive and parsed as the field's type (a duration
// such as "1ms" for a time.Duration); oneof lists the accepted strings.
package envcheck

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// ErrInvalid is returned (wrapped) for a value outside its allowed range
// or one that cannot be read as the setting's type.
var ErrInvalid = errors.New("invalid setting")

// Field is one setting of a config struct.
type Field struct {
	Key   string // environment variable: SCPGATE_DRAIN_RATE
	Desc  string // the desc tag
	Tag   reflect.StructTag
	Value reflect.Value // the field, settable when the struct was passed by pointer
}

// Fields returns the settings of spec (a struct or a pointer to one) read
// with prefix ("" for none), walking embedded structs as envconfig does.
func Fields(prefix string, spec any) []Field {
	v := reflect.ValueOf(spec)
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	var out []Field
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() || sf.Tag.Get("ignored") == "true" {
			continue
		}
		fv := v.Field(i)
		name := sf.Tag.Get("envconfig")
		if sf.Anonymous && fv.Kind() == reflect.Struct && name == "" {
			out = append(out, Fields(prefix, fv.Addr().Interface())...)
			continue
		}
		if name == "" {
			name = strings.ToUpper(sf.Name)
		}
		key := name
		if prefix != "" {
			key = prefix + "_" + name
		}
		out = append(out, Field{Key: key, Desc: sf.Tag.Get("desc"), Tag: sf.Tag, Value: fv})
	}
	return out
}

// Names returns the environment variables spec reads with prefix.
func Names(prefix string, spec any) []string {
	var names []string
	for _, f := range Fields(prefix, spec) {
		names = append(names, f.Key)
	}
	return names
}

// Validate checks every field of spec (read with prefix) against its min,
// max and oneof tags. The error names the variable, its value and the
// allowed range in plain words.
func Validate(prefix string, spec any) error {
	var errs []error
	for _, f := range Fields(prefix, spec) {
		if err := f.check(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// shown is the value of f as the operator set it, or its effective value.
func (f Field) shown() string {
	if v, ok := os.LookupEnv(f.Key); ok {
		return v
	}
	return fmt.Sprint(f.Value.Interface())
}

func (f Field) invalid(rule string) error {
	msg := fmt.Sprintf("%s=%s is not allowed: %s", f.Key, f.shown(), rule)
	if f.Desc != "" {
		msg += " (" + f.Desc + ")"
	}
	return fmt.Errorf("%w: %s", ErrInvalid, msg)
}

func (f Field) check() error {
	if oneof := f.Tag.Get("oneof"); oneof != "" && f.Value.Kind() == reflect.String {
		allowed := strings.Split(oneof, ",")
		if !slices.Contains(allowed, f.Value.String()) {
			return f.invalid("it must be one of " + strings.Join(allowed, ", "))
		}
	}
	lo, hasLo := f.Tag.Lookup("min")
	hi, hasHi := f.Tag.Lookup("max")
	if !hasLo && !hasHi {
		return nil
	}
	v, ok := number(f.Value)
	if !ok {
		return nil
	}
	var bound func(string) float64
	unit := ""
	if f.Value.Type() == reflect.TypeFor[time.Duration]() {
		unit = "a duration"
		bound = func(s string) float64 { d, _ := time.ParseDuration(s); return float64(d) }
	} else {
		unit = "a number"
		if f.Value.CanInt() || f.Value.CanUint() {
			unit = "a whole number"
		}
		bound = func(s string) float64 { x, _ := strconv.ParseFloat(s, 64); return x }
	}
	switch {
	case hasLo && hasHi && (v < bound(lo) || v > bound(hi)):
		return f.invalid(fmt.Sprintf("it must be %s from %s to %s", unit, lo, hi))
	case hasLo && !hasHi && v < bound(lo):
		return f.invalid(fmt.Sprintf("it must be %s of at least %s", unit, lo))
	case hasHi && !hasLo && v > bound(hi):
		return f.invalid(fmt.Sprintf("it must be %s of at most %s", unit, hi))
	}
	return nil
}

// number returns v as a float64 when it is a number (or a duration).
func number(v reflect.Value) (float64, bool) {
	switch {
	case v.CanInt():
		return float64(v.Int()), true
	case v.CanUint():
		return float64(v.Uint()), true
	case v.CanFloat():
		return v.Float(), true
	}
	return 0, false
}

// Explain rewrites an envconfig error about a value that cannot be read
// (SCPGATE_DRAIN_RATE=fast) in plain words; other errors are returned as
// they are.
func Explain(err error) error {
	var pe *envconfig.ParseError
	if !errors.As(err, &pe) {
		return err
	}
	want := "a value of type " + pe.TypeName
	switch pe.TypeName {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		want = "a whole number"
	case "float32", "float64":
		want = "a number"
	case "bool":
		want = "true or false"
	case "Duration", "time.Duration":
		want = "a duration with a unit, such as 500ms, 30s or 2h"
	}
	return fmt.Errorf("%w: %s=%s is not allowed: it must be %s", ErrInvalid, pe.KeyName, pe.Value, want)
}

// Unknown returns the variables of environ ("KEY=value" strings) that
// start with prefix+"_" and are neither in known nor start with one of
// ignore, sorted.
func Unknown(environ []string, prefix string, known []string, ignore ...string) []string {
	var out []string
	for _, kv := range environ {
		key, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(key, prefix+"_") || slices.Contains(known, key) {
			continue
		}
		if slices.ContainsFunc(ignore, func(p string) bool { return strings.HasPrefix(key, p) }) {
			continue
		}
		out = append(out, key)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Closest returns the name of known nearest to key (by edit distance), or
// "" when none is close enough to be a likely typo.
func Closest(key string, known []string) string {
	best, bestD := "", len(key)/3+1
	for _, k := range known {
		if d := distance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
