package agg

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/apd/v3"
)

// Kind is the representation of a Value: which of its fields holds it.
type Kind uint8

// The kinds. Each names the PostgreSQL types it carries.
const (
	KindInvalid   Kind = iota
	KindInt            // smallint, integer, bigint: Value.Int
	KindFloat          // real, double precision: Value.Float (a real is a float32 widened)
	KindDecimal        // numeric: Value.Dec, exact
	KindText           // text, character varying, character: Value.Str
	KindBool           // boolean: Value.Int, 0 or 1
	KindDate           // date: Value.Int, days since 1970-01-01
	KindTimestamp      // timestamp, timestamptz: Value.Int, microseconds since 1970-01-01 00:00 UTC
	KindBytes          // bytea: Value.Bytes
	KindArray          // the result of max_n and min_n: Value.Elems
)

var kindNames = [...]string{"invalid", "int", "float", "decimal", "text", "bool", "date", "timestamp", "bytes", "array"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Infinite dates and timestamps ('infinity', '-infinity') are these values
// of Value.Int, as PostgreSQL itself stores them for timestamps.
const (
	InfinityInt    = math.MaxInt64
	NegInfinityInt = math.MinInt64
)

// Value is one typed, nullable value, without boxing: rows are folded one
// value at a time, so a number costs no allocation. Kind says which field
// holds it; the others are ignored. The zero Value is invalid; use the
// constructors, or the Set methods to reuse one Value for many rows.
//
// A Value that Add receives may be reused by the caller as soon as Add
// returns: states copy what they keep, except Str, whose string they keep
// (Go strings are immutable; a caller that builds strings over reused
// bytes with unsafe must not).
type Value struct {
	Kind  Kind
	Null  bool
	Int   int64
	Float float64
	Dec   apd.Decimal
	Str   string
	Bytes []byte
	Elems []Value
}

// Null returns a NULL of kind k.
func Null(k Kind) Value { return Value{Kind: k, Null: true} }

// IntValue returns a smallint, integer or bigint.
func IntValue(x int64) Value { return Value{Kind: KindInt, Int: x} }

// FloatValue returns a double precision (or a real, widened).
func FloatValue(x float64) Value { return Value{Kind: KindFloat, Float: x} }

// DecimalValue returns a numeric holding a copy of d.
func DecimalValue(d *apd.Decimal) Value {
	v := Value{Kind: KindDecimal}
	v.Dec.Set(d)
	return v
}

// ParseDecimal returns the numeric that s spells ("12.50", "NaN",
// "-Infinity", "1e3"), for tests and literals.
func ParseDecimal(s string) (Value, error) {
	v := Value{Kind: KindDecimal}
	if _, _, err := v.Dec.SetString(s); err != nil {
		return Value{}, fmt.Errorf("agg: numeric %q: %w", s, err)
	}
	return v, nil
}

// TextValue returns a text.
func TextValue(s string) Value { return Value{Kind: KindText, Str: s} }

// BoolValue returns a boolean.
func BoolValue(b bool) Value {
	v := Value{Kind: KindBool}
	if b {
		v.Int = 1
	}
	return v
}

// DateValue returns the date of t's year, month and day (in t's location).
func DateValue(t time.Time) Value {
	y, m, d := t.Date()
	days := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
	return Value{Kind: KindDate, Int: days}
}

// TimestampValue returns the timestamp of t, truncated to microseconds as
// PostgreSQL stores them.
func TimestampValue(t time.Time) Value {
	return Value{Kind: KindTimestamp, Int: t.UnixMicro()}
}

// BytesValue returns a bytea; b is not copied until a state keeps it.
func BytesValue(b []byte) Value { return Value{Kind: KindBytes, Bytes: b} }

// SetNull makes v a NULL, keeping its kind.
func (v *Value) SetNull() { v.Null = true }

// SetInt makes v the integer x.
func (v *Value) SetInt(x int64) { v.Kind, v.Null, v.Int = KindInt, false, x }

// SetFloat makes v the float x.
func (v *Value) SetFloat(x float64) { v.Kind, v.Null, v.Float = KindFloat, false, x }

// SetDecimal makes v a copy of the numeric d; it allocates only for
// coefficients beyond 128 bits.
func (v *Value) SetDecimal(d *apd.Decimal) {
	v.Kind, v.Null = KindDecimal, false
	v.Dec.Set(d)
}

// SetBigDecimal makes v the numeric coef × 10^exp (coef signed), the shape
// of pgx's pgtype.Numeric{Int, Exp}.
func (v *Value) SetBigDecimal(coef *big.Int, exp int32) {
	v.Kind, v.Null = KindDecimal, false
	v.Dec.Form = apd.Finite
	v.Dec.Coeff.SetMathBigInt(coef)
	v.Dec.Negative = v.Dec.Coeff.Sign() < 0
	v.Dec.Coeff.Abs(&v.Dec.Coeff)
	v.Dec.Exponent = exp
}

// SetText makes v the text s.
func (v *Value) SetText(s string) { v.Kind, v.Null, v.Str = KindText, false, s }

// Time returns a date or timestamp as a time.Time in UTC. Infinite ones
// have no time.Time; Time returns the zero time for them.
func (v *Value) Time() time.Time {
	switch {
	case v.Int == InfinityInt || v.Int == NegInfinityInt:
		return time.Time{}
	case v.Kind == KindDate:
		return time.Unix(v.Int*86400, 0).UTC()
	default:
		return time.UnixMicro(v.Int).UTC()
	}
}

// String returns v as PostgreSQL's text output spells it: numerics with
// their display scale ("3.10", "NaN"), floats in shortest form ("0.1",
// "1e+20"), booleans as "t"/"f", arrays as "{…}", NULL as "NULL".
func (v Value) String() string { return string(v.AppendText(nil, false)) }

// AppendText appends v's text form (see String) to b. real says that a
// KindFloat is a real, printed with float4 precision.
func (v *Value) AppendText(b []byte, real bool) []byte {
	if v.Null {
		return append(b, "NULL"...)
	}
	switch v.Kind {
	case KindInt:
		return strconv.AppendInt(b, v.Int, 10)
	case KindFloat:
		return appendPGFloat(b, v.Float, real)
	case KindDecimal:
		return appendPGNumeric(b, &v.Dec)
	case KindText:
		return append(b, v.Str...)
	case KindBool:
		if v.Int != 0 {
			return append(b, 't')
		}
		return append(b, 'f')
	case KindDate:
		switch v.Int {
		case InfinityInt:
			return append(b, "infinity"...)
		case NegInfinityInt:
			return append(b, "-infinity"...)
		}
		return v.Time().AppendFormat(b, "2006-01-02")
	case KindTimestamp:
		switch v.Int {
		case InfinityInt:
			return append(b, "infinity"...)
		case NegInfinityInt:
			return append(b, "-infinity"...)
		}
		return v.Time().AppendFormat(b, "2006-01-02 15:04:05.999999")
	case KindBytes:
		b = append(b, `\x`...)
		const hex = "0123456789abcdef"
		for _, c := range v.Bytes {
			b = append(b, hex[c>>4], hex[c&15])
		}
		return b
	case KindArray:
		b = append(b, '{')
		for i := range v.Elems {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendArrayElem(b, &v.Elems[i], real)
		}
		return append(b, '}')
	}
	return append(b, "?"...)
}

// appendArrayElem quotes an element the way array_out does: when it is
// empty, spells NULL, or holds a character that array syntax gives meaning.
func appendArrayElem(b []byte, e *Value, real bool) []byte {
	if e.Null {
		return append(b, "NULL"...)
	}
	s := string(e.AppendText(nil, real))
	if s != "" && !strings.EqualFold(s, "NULL") && !strings.ContainsAny(s, "{},\"\\ \t\n\r\v\f") {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// appendPGNumeric prints a numeric as numeric_out does: every digit of its
// display scale, no exponent, no negative zero.
func appendPGNumeric(b []byte, d *apd.Decimal) []byte {
	switch d.Form {
	case apd.NaN, apd.NaNSignaling:
		return append(b, "NaN"...)
	case apd.Infinite:
		if d.Negative {
			return append(b, "-Infinity"...)
		}
		return append(b, "Infinity"...)
	}
	if d.Coeff.Sign() == 0 && d.Negative {
		var z apd.Decimal
		z.Set(d)
		z.Negative = false
		return z.Append(b, 'f')
	}
	return d.Append(b, 'f')
}

// appendPGFloat prints a float as float8out and float4out do with the
// default extra_float_digits = 1: the shortest digits that read back
// exactly, in exponent form when the decimal exponent is below -4 or at
// least 15 (6 for a real).
func appendPGFloat(b []byte, f float64, real bool) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	}
	bits, limit := 64, 15
	if real {
		bits, limit = 32, 6
	}
	e := strconv.AppendFloat(nil, f, 'e', -1, bits) // d.ddde±XX
	i := strings.LastIndexByte(string(e), 'e')
	exp, _ := strconv.Atoi(string(e[i+1:]))
	if exp < -4 || exp >= limit {
		// PostgreSQL writes at least two exponent digits, as Go does.
		return append(b, e...)
	}
	return strconv.AppendFloat(b, f, 'f', -1, bits)
}
