package scpbridge

import (
	"encoding/binary"
	"strconv"
)

// Field caps. Strings are sent as a 1-byte length and that many bytes of
// printable ASCII (0x20..0x7e).
const (
	MaxSerialLen   = 32
	MaxModelLen    = 64
	MaxFirmwareLen = 64
	MaxTextLen     = 255
	MaxSecretLen   = 64 // a hello's shared secret (1.1)
	MaxLevels      = 32 // access levels on one card
	MaxDoors       = 64 // doors in one access level
)

// decoder reads big-endian fields from a payload. The first failure sticks
// and names the field; it never panics and never allocates on success.
type decoder struct {
	b     []byte
	off   int
	frame FrameType
	err   error
}

func (d *decoder) need(n int, field string) bool {
	if d.err != nil {
		return false
	}
	if len(d.b)-d.off < n {
		d.err = &FieldError{Frame: d.frame, Field: field, Reason: "payload ends at byte " + strconv.Itoa(len(d.b)), Err: ErrTruncated}
		return false
	}
	return true
}

func (d *decoder) fail(field, reason string) {
	if d.err == nil {
		d.err = &FieldError{Frame: d.frame, Field: field, Reason: reason, Err: ErrBadField}
	}
}

func (d *decoder) u8(field string) uint8 {
	if !d.need(1, field) {
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) u16(field string) uint16 {
	if !d.need(2, field) {
		return 0
	}
	v := binary.BigEndian.Uint16(d.b[d.off:])
	d.off += 2
	return v
}

func (d *decoder) u32(field string) uint32 {
	if !d.need(4, field) {
		return 0
	}
	v := binary.BigEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

func (d *decoder) u64(field string) uint64 {
	if !d.need(8, field) {
		return 0
	}
	v := binary.BigEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

func (d *decoder) bytes(n int, field string) []byte {
	if !d.need(n, field) {
		return nil
	}
	v := d.b[d.off : d.off+n]
	d.off += n
	return v
}

// str reads a length-prefixed printable-ASCII string of at most max bytes.
// It allocates the string (hello and text fields only, never per event).
func (d *decoder) str(max int, field string) string {
	n := int(d.u8(field))
	if d.err != nil {
		return ""
	}
	if n > max {
		d.fail(field, "length "+strconv.Itoa(n)+" > "+strconv.Itoa(max))
		return ""
	}
	raw := d.bytes(n, field)
	if d.err != nil {
		return ""
	}
	for _, c := range raw {
		if c < 0x20 || c > 0x7e {
			d.fail(field, "byte 0x"+strconv.FormatUint(uint64(c), 16)+" is not printable ASCII")
			return ""
		}
	}
	return string(raw)
}

// u16list reads a 1-byte count and that many uint16 values into dst[:0].
func (d *decoder) u16list(dst []uint16, max int, field string) []uint16 {
	n := int(d.u8(field))
	if d.err != nil {
		return dst[:0]
	}
	if n > max {
		d.fail(field, "count "+strconv.Itoa(n)+" > "+strconv.Itoa(max))
		return dst[:0]
	}
	dst = dst[:0]
	for i := 0; i < n; i++ {
		dst = append(dst, d.u16(field))
	}
	return dst
}

// encoder appends big-endian fields; the first cap violation sticks.
type encoder struct {
	b     []byte
	frame FrameType
	err   error
}

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }

func (e *encoder) fail(field, reason string) {
	if e.err == nil {
		e.err = &FieldError{Frame: e.frame, Field: field, Reason: reason, Err: ErrBadField}
	}
}

func (e *encoder) str(s string, max int, field string) {
	if len(s) > max {
		e.fail(field, "length "+strconv.Itoa(len(s))+" > "+strconv.Itoa(max))
		return
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			e.fail(field, "not printable ASCII")
			return
		}
	}
	e.b = append(e.b, byte(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) u16list(v []uint16, max int, field string) {
	if len(v) > max {
		e.fail(field, "count "+strconv.Itoa(len(v))+" > "+strconv.Itoa(max))
		return
	}
	e.u8(uint8(len(v)))
	for _, x := range v {
		e.u16(x)
	}
}

func (e *encoder) done() ([]byte, error) { return e.b, e.err }
