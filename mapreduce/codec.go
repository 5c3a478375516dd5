package mapreduce

import (
	"bytes"
	"fmt"
	"math/bits"
	"strconv"
	"time"

	"github.com/cockroachdb/apd/v3"
)

// codecFor returns c ready for the engine: derived from T when it has
// neither Encode nor Decode (see Codec), then checked against its Fields.
// role is "Key" or "Value".
func codecFor[T any](role string, c Codec[T]) (Codec[T], error) {
	if c.Encode == nil && c.Decode == nil {
		d, err := deriveCodec[T](role, c.Fields)
		if err != nil {
			return c, err
		}
		c = d
	}
	return c, checkCodec(role, c)
}

// checkCodec checks that Encode and Decode take the field types of Fields
// in order, and that they agree on which field is which.
func checkCodec[T any](name string, c Codec[T]) error {
	if len(c.Fields) == 0 || c.Encode == nil || c.Decode == nil {
		return fmt.Errorf("%s codec needs Fields, Encode and Decode, or neither Encode nor Decode to derive them from its Go type", name)
	}
	for _, f := range c.Fields {
		if f.Name == "" || !f.Type.Valid() {
			return fmt.Errorf("%s codec: field %q has no name or an unknown type", name, f.Name)
		}
		if f.Array {
			return fmt.Errorf("%s codec: field %q is an array, which only Output.Values may hold", name, f.Name)
		}
	}
	var zero T
	enc := &fieldRecorder{}
	c.Encode(zero, enc)
	if err := enc.match(name+".Encode", c.Fields); err != nil {
		return err
	}
	dec := &decodeRecorder{}
	c.Decode(dec)
	if err := dec.match(name+".Decode", c.Fields); err != nil {
		return err
	}
	return checkRoundTrip(name, c)
}

// checkRoundTrip decodes a value from probe fields, each different from
// every other, encodes it again and requires the same fields back. Field
// types alone cannot tell two fields of one type apart: a Decode that
// reads them in the other order than Encode writes them would swap the
// columns of every output row. Bools have two values only, so over the
// value rounds bool field i spells i+1 in binary; a last round answers
// NULL wherever Decode asks, to check the NULL-able fields.
//
// A Decode that panics on the probes checks what it reads, as the codec
// of a rollup's encoded aggregate states does: no probe is a value of it,
// so it is not checked.
func checkRoundTrip[T any](name string, c Codec[T]) (err error) {
	defer func() {
		if recover() != nil {
			err = nil
		}
	}()
	rounds := bits.Len(uint(len(c.Fields)))
	for round := 0; round <= rounds; round++ {
		d := &probeDecoder{round: round, nulls: round == rounds}
		e := &valuesEncoder{}
		c.Encode(c.Decode(d), e)
		if err := d.match(name, c.Fields, e.values); err != nil {
			return err
		}
	}
	return nil
}

// probeDecoder is a Decoder that yields a probe value for each field, one
// that no other field of the type gets, and notes what it yielded.
type probeDecoder struct {
	round int
	nulls bool  // Null answers true
	got   []any // yielded, in field order; nil for NULL
}

// match compares what a codec encoded, after decoding d's fields, with
// them, and names the fields that do not come back in place.
func (d *probeDecoder) match(name string, fields []Field, encoded []any) error {
	if len(encoded) != len(d.got) {
		return fmt.Errorf("%s codec: Decode reads %d fields of a value whose Encode then writes %d", name, len(d.got), len(encoded))
	}
	for i, want := range d.got {
		if sameValue(encoded[i], want) {
			continue
		}
		for j, got := range encoded {
			if j != i && sameValue(got, want) && d.unique(want) {
				return fmt.Errorf("%s codec: what Decode reads as field %q (%d) Encode writes as field %q (%d): Encode and Decode must take the fields in the same order, that of Fields", name, fields[i].Name, i, fields[j].Name, j)
			}
		}
		return fmt.Errorf("%s codec: field %q (%d) does not survive Decode then Encode: Decode read %s, Encode wrote %s", name, fields[i].Name, i, probeText(want), probeText(encoded[i]))
	}
	return nil
}

// unique reports whether d yielded v once only: a value, not NULL, that
// tells where a field went.
func (d *probeDecoder) unique(v any) bool {
	n := 0
	for _, w := range d.got {
		if sameValue(w, v) {
			n++
		}
	}
	return v != nil && n == 1
}

// probe returns the probe value of type t for field i: the same field
// index always gives the same value, and two indexes different values,
// within the range of every Go type a codec may hold the field in (int8
// for integers, float32 for floats).
func (d *probeDecoder) probe(t Type) any {
	i := len(d.got)
	var v any
	switch t {
	case TypeInt64:
		v = int64(i%127 + 1)
	case TypeFloat64:
		v = float64(i) + 1.5
	case TypeString:
		v = "probe " + strconv.Itoa(i)
	case TypeBool:
		v = (i+1)>>d.round&1 == 1
	case TypeDate:
		v = Date(i + 1)
	case TypeTimestamp:
		v = time.UnixMicro(int64(i+1) * 1_000_001).UTC()
	case TypeDecimal:
		v = apd.New(int64(i+1)*101, -2)
	case TypeBytes:
		v = []byte{'p', byte(i)}
	}
	d.got = append(d.got, v)
	return v
}

func (d *probeDecoder) Int64() int64          { return d.probe(TypeInt64).(int64) }
func (d *probeDecoder) Float64() float64      { return d.probe(TypeFloat64).(float64) }
func (d *probeDecoder) String() string        { return d.probe(TypeString).(string) }
func (d *probeDecoder) Bool() bool            { return d.probe(TypeBool).(bool) }
func (d *probeDecoder) Date() Date            { return d.probe(TypeDate).(Date) }
func (d *probeDecoder) Time() time.Time       { return d.probe(TypeTimestamp).(time.Time) }
func (d *probeDecoder) Decimal() *apd.Decimal { return d.probe(TypeDecimal).(*apd.Decimal) }
func (d *probeDecoder) Bytes() []byte         { return bytes.Clone(d.probe(TypeBytes).([]byte)) }

func (d *probeDecoder) Null() bool {
	if d.nulls {
		d.got = append(d.got, nil)
	}
	return d.nulls
}

// sameValue reports whether two field values, as valuesEncoder holds
// them, are equal.
func sameValue(a, b any) bool {
	switch a := a.(type) {
	case time.Time:
		b, ok := b.(time.Time)
		return ok && a.Equal(b)
	case *apd.Decimal:
		b, ok := b.(*apd.Decimal)
		return ok && a.Cmp(b) == 0
	case []byte:
		b, ok := b.([]byte)
		return ok && bytes.Equal(a, b)
	}
	return a == b
}

// probeText spells a field value in an error message.
func probeText(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case string:
		return strconv.Quote(v)
	case []byte:
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprint(v)
}

// fieldRecorder is an Encoder that notes the sequence of field types it is
// given, to check a Codec against its Fields. A NULL is noted as type 0,
// which matches any field.
type fieldRecorder struct{ types []Type }

func (r *fieldRecorder) match(what string, fields []Field) error {
	if len(r.types) != len(fields) {
		return fmt.Errorf("%s uses %d fields, Fields lists %d", what, len(r.types), len(fields))
	}
	for i, f := range fields {
		if r.types[i] != 0 && r.types[i] != f.Type {
			return fmt.Errorf("%s field %d (%s) is %s, Fields says %s", what, i, f.Name, r.types[i], f.Type)
		}
	}
	return nil
}

func (r *fieldRecorder) Int64(int64)          { r.types = append(r.types, TypeInt64) }
func (r *fieldRecorder) Float64(float64)      { r.types = append(r.types, TypeFloat64) }
func (r *fieldRecorder) String(string)        { r.types = append(r.types, TypeString) }
func (r *fieldRecorder) Bool(bool)            { r.types = append(r.types, TypeBool) }
func (r *fieldRecorder) Date(Date)            { r.types = append(r.types, TypeDate) }
func (r *fieldRecorder) Time(time.Time)       { r.types = append(r.types, TypeTimestamp) }
func (r *fieldRecorder) Decimal(*apd.Decimal) { r.types = append(r.types, TypeDecimal) }
func (r *fieldRecorder) Bytes([]byte)         { r.types = append(r.types, TypeBytes) }
func (r *fieldRecorder) Null()                { r.types = append(r.types, 0) }
func (r *fieldRecorder) Array(any)            { r.types = append(r.types, 0) }

// decodeRecorder is a Decoder that notes the field types asked of it and
// returns zero values.
type decodeRecorder struct{ fieldRecorder }

func (r *decodeRecorder) Int64() int64     { r.types = append(r.types, TypeInt64); return 0 }
func (r *decodeRecorder) Float64() float64 { r.types = append(r.types, TypeFloat64); return 0 }
func (r *decodeRecorder) String() string   { r.types = append(r.types, TypeString); return "" }
func (r *decodeRecorder) Bool() bool       { r.types = append(r.types, TypeBool); return false }
func (r *decodeRecorder) Date() Date       { r.types = append(r.types, TypeDate); return 0 }
func (r *decodeRecorder) Time() time.Time {
	r.types = append(r.types, TypeTimestamp)
	return time.Time{}
}
func (r *decodeRecorder) Decimal() *apd.Decimal {
	r.types = append(r.types, TypeDecimal)
	return new(apd.Decimal)
}
func (r *decodeRecorder) Bytes() []byte { r.types = append(r.types, TypeBytes); return nil }

// Null answers false, so that a codec goes on to decode the field's type.
func (r *decodeRecorder) Null() bool { return false }
