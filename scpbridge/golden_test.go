package scpbridge_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/scpgate/scpgate/scpbridge"
)

var update = flag.Bool("update", false, "rewrite the golden frames in testdata/golden")

const goldenDir = "testdata/golden"

// TestGolden encodes every golden case and compares the bytes with its
// golden file, then decodes the golden bytes and compares the message.
func TestGolden(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(goldenDir, c.name+".hex")
			got, err := scpbridge.AppendFrame(nil, c.msg)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if *update {
				text, err := formatGolden(c, got)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(goldenDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (run with -update to create it): %v", err)
			}
			want, err := parseHex(string(raw))
			if err != nil {
				t.Fatalf("parse %s: %v", path, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("encode:\n got %x\nwant %x", got, want)
			}
			if _, err := formatGolden(c, want); err != nil {
				t.Errorf("layout does not match the golden bytes: %v", err)
			}

			h, err := scpbridge.ParseHeader(want)
			if err != nil {
				t.Fatalf("header: %v", err)
			}
			version := uint8(scpbridge.Version)
			if h, ok := c.msg.(*scpbridge.Hello); ok && h.Secret != "" {
				version = 0x11 // a hello with a secret is 1.1
			}
			if h.Type != c.msg.FrameType() || int(h.Length) != len(want)-scpbridge.HeaderLen || h.Version != version {
				t.Errorf("header: got %+v, want type %s length %d version 0x%02x", h, c.msg.FrameType(), len(want)-scpbridge.HeaderLen, version)
			}
			m, err := scpbridge.Decode(h, want[scpbridge.HeaderLen:])
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !sameMessage(m, c.msg) {
				t.Errorf("decode:\n got %+v\nwant %+v", m, c.msg)
			}
		})
	}
}

// TestGoldenFilesComplete fails on golden files no case produces, so a
// renamed case cannot leave a stale vector behind.
func TestGoldenFilesComplete(t *testing.T) {
	names := map[string]bool{}
	types := map[scpbridge.FrameType]bool{}
	cmds := map[scpbridge.CommandCode]bool{}
	for _, c := range goldenCases() {
		names[c.name+".hex"] = true
		types[c.msg.FrameType()] = true
		if cmd, ok := c.msg.(*scpbridge.Command); ok {
			cmds[cmd.Code] = true
		}
	}
	files, err := os.ReadDir(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, fi := range files {
		if !names[fi.Name()] {
			t.Errorf("stale golden file %s: no case writes it", fi.Name())
		}
	}
	for v := 0; v < 256; v++ {
		if ft := scpbridge.FrameType(v); ft.Known() && !types[ft] {
			t.Errorf("frame type %s has no golden case", ft)
		}
		if cc := scpbridge.CommandCode(v); cc.Valid() && !cmds[cc] {
			t.Errorf("command %s has no golden case", cc)
		}
	}
}

// parseHex reads the golden text format: hex byte pairs separated by white
// space; '#' starts a comment that runs to the end of the line.
func parseHex(text string) ([]byte, error) {
	var out []byte
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, tok := range strings.Fields(line) {
			b, err := hex.DecodeString(tok)
			if err != nil {
				return nil, fmt.Errorf("line %d: %q: %w", n, tok, err)
			}
			out = append(out, b...)
		}
	}
	return out, sc.Err()
}

// formatGolden renders a frame as annotated hex: one line per header field
// and per payload field of c.layout (split every 16 bytes).
func formatGolden(c goldenCase, frame []byte) (string, error) {
	var w strings.Builder
	fmt.Fprintf(&w, "# SCP/TCP v1 golden frame %q (%s), %d bytes.\n", c.name, c.msg.FrameType(), len(frame))
	fmt.Fprintf(&w, "# Regenerate: go test ./scpbridge -run '^TestGolden$' -update\n")
	fmt.Fprintf(&w, "# %s\n", goValue(c.msg))
	fmt.Fprint(&w, annotate(frame, c.layout))
	sum := 0
	for _, fl := range c.layout {
		sum += fl.size
	}
	if n := len(frame) - scpbridge.HeaderLen; sum != n {
		return "", fmt.Errorf("%s: layout covers %d payload bytes, frame has %d", c.name, sum, n)
	}
	return w.String(), nil
}

// annotate renders frame as hex lines commented with the header fields and
// the given payload layout. Bytes past the layout are labelled "rest".
func annotate(frame []byte, payload []field) string {
	var w strings.Builder
	line := func(b []byte, comment string) {
		for len(b) > 0 {
			n := min(16, len(b))
			fmt.Fprintf(&w, "%-47s  # %s\n", hexBytes(b[:n]), comment)
			b, comment = b[n:], "..."
		}
	}
	if len(frame) < scpbridge.HeaderLen {
		line(frame, "short header")
		return w.String()
	}
	ft := scpbridge.FrameType(frame[3])
	line(frame[0:2], `magic "SC"`)
	line(frame[2:3], fmt.Sprintf("version %d.%d", frame[2]>>4, frame[2]&0x0f))
	line(frame[3:4], fmt.Sprintf("type %s", ft))
	line(frame[4:5], "flags")
	line(frame[5:6], "reserved")
	line(frame[6:8], fmt.Sprintf("length %d", binary.BigEndian.Uint16(frame[6:8])))
	p := frame[scpbridge.HeaderLen:]
	prev := ""
	var tran scpbridge.TranType
	for _, fl := range payload {
		if fl.size > len(p) {
			break
		}
		b := p[:fl.size]
		p = p[fl.size:]
		if fl.name == "tran_type" {
			tran = scpbridge.TranType(b[0])
		}
		line(b, fl.name+describe(fl.name, prev, b)+enumName(ft, tran, fl.name, b))
		prev = fl.name
	}
	if len(p) > 0 {
		line(p, "rest")
	}
	return w.String()
}

// describe renders a field's value for the comment column.
func describe(name, prev string, b []byte) string {
	switch {
	case prev == name+"_len":
		return fmt.Sprintf(" %q", b)
	case prev == name+"_count":
		var vs []string
		for i := 0; i+1 < len(b); i += 2 {
			vs = append(vs, fmt.Sprint(binary.BigEndian.Uint16(b[i:])))
		}
		return " [" + strings.Join(vs, " ") + "]"
	case name == "mac":
		return " " + strings.ReplaceAll(hexBytes(b), " ", ":")
	case strings.HasSuffix(name, "time_ms") || name == "activate" || name == "expire":
		return fmt.Sprintf(" %d", int64(binary.BigEndian.Uint64(b)))
	}
	switch len(b) {
	case 1:
		return fmt.Sprintf(" %d", b[0])
	case 2:
		return fmt.Sprintf(" %d", binary.BigEndian.Uint16(b))
	case 4:
		return fmt.Sprintf(" %d", binary.BigEndian.Uint32(b))
	case 8:
		return fmt.Sprintf(" %d", binary.BigEndian.Uint64(b))
	}
	return ""
}

func hexBytes(b []byte) string {
	var w strings.Builder
	for i, c := range b {
		if i > 0 {
			w.WriteByte(' ')
		}
		fmt.Fprintf(&w, "%02x", c)
	}
	return w.String()
}

// enumName names a one-byte code field, such as "(granted)".
func enumName(ft scpbridge.FrameType, tran scpbridge.TranType, name string, b []byte) string {
	if len(b) != 1 {
		return ""
	}
	v := b[0]
	var s string
	switch {
	case name == "source_type":
		s = scpbridge.SourceType(v).String()
	case name == "tran_type":
		s = scpbridge.TranType(v).String()
	case name == "code" && ft == scpbridge.FrameTransaction:
		s = scpbridge.CodeName(tran, v)
	case name == "code" && ft == scpbridge.FrameCommand:
		s = scpbridge.CommandCode(v).String()
	case name == "mode":
		s = scpbridge.DoorMode(v).String()
	case name == "action":
		s = scpbridge.OutputAction(v).String()
	case name == "status":
		s = scpbridge.Status(v).String()
	case name == "nak_reason":
		s = scpbridge.NakReason(v).String()
	case name == "reason" && ft == scpbridge.FrameReject:
		s = scpbridge.RejectReason(v).String()
	case name == "reason" && ft == scpbridge.FrameBye:
		s = scpbridge.ByeReason(v).String()
	default:
		return ""
	}
	return " (" + s + ")"
}

// goValue renders a message as Type{Field:value ...}, leaving out zero
// fields.
func goValue(m scpbridge.Message) string {
	v := reflect.ValueOf(m).Elem()
	var parts []string
	for i := 0; i < v.NumField(); i++ {
		fv := v.Field(i)
		if fv.IsZero() || (fv.Kind() == reflect.Slice && fv.Len() == 0) {
			continue
		}
		val := fmt.Sprintf("%v", fv.Interface())
		if fv.Kind() == reflect.String {
			val = fmt.Sprintf("%q", fv.String())
		}
		parts = append(parts, v.Type().Field(i).Name+":"+val)
	}
	return fmt.Sprintf("%T{%s}", m, strings.Join(parts, " "))
}
