package agg

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"slices"
	"strconv"
	"sync"

	"github.com/cockroachdb/apd/v3"
)

// formatVersion is the first byte of every encoded state. A change to any
// state's encoding gets a new version; Decode rejects versions it does not
// know, so stored states are never misread.
const formatVersion = 1

// State tags, the second byte of every encoded state: a state given to the
// Decode of another function is caught before its payload is read.
const (
	tagCount    = 1
	tagDecStats = 2
	tagFloat    = 3
	tagCorr     = 4
	tagMinMax   = 5
	tagTopN     = 6
	tagDistinct = 7
	tagHLL      = 8
	tagQuantile = 9
)

// PostgreSQL's numeric range (src/include/utils/numeric.h): up to 131072
// digits before the decimal point and 16383 after it. Inputs beyond are
// ErrOutOfRange; the bounds also keep a damaged state from asking for a
// giant allocation.
const (
	maxNumericWeight = 131072
	maxDscale        = 16383
	// maxNumericBytes bounds the coefficient of a numeric in PostgreSQL's
	// range: 131072+16383 digits need 61,230 bytes.
	maxNumericBytes = 61230
)

// appendHeader starts the encoding of a state.
func appendHeader(b []byte, tag byte) []byte { return append(b, formatVersion, tag) }

// Decode reads a state that AppendBinary of a state of f wrote. Bytes that
// are not one, in canonical form, give an error wrapping ErrCorrupt that
// names the function and the offset; Decode never panics on any input.
//
// Canonical form is checked by encoding the decoded state again: equal
// bytes or an error. So a decoded state is exactly the one encoded, and
// two states that decode are equal exactly when their bytes are.
func (f *Func) Decode(b []byte) (State, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("agg: decode %s: %d bytes, a state has at least 2: %w", f, len(b), ErrCorrupt)
	}
	if b[0] != formatVersion {
		return nil, fmt.Errorf("agg: decode %s: format version %d, want %d: %w", f, b[0], formatVersion, ErrCorrupt)
	}
	s := f.newState()
	if want := stateTag(s); b[1] != want {
		return nil, fmt.Errorf("agg: decode %s: state tag %d, want %d: %w", f, b[1], want, ErrCorrupt)
	}
	sc := decodeScratches.Get().(*decodeScratch)
	defer decodeScratches.Put(sc)
	d := &sc.d
	*d = decoder{f: f, b: b, off: 2}
	defer func() { *d = decoder{} }() // so that the pool holds no state's bytes
	s.decode(d)
	if d.err == nil && d.off != len(b) {
		d.failf("%d bytes follow the state", len(b)-d.off)
	}
	if d.err != nil {
		return nil, d.err
	}
	again, err := s.AppendBinary(sc.again[:0])
	if err != nil {
		return nil, fmt.Errorf("agg: decode %s: %v: %w", f, err, ErrCorrupt)
	}
	sc.again = again
	if !bytes.Equal(again, b) {
		return nil, fmt.Errorf("agg: decode %s: not in canonical form (it encodes again to %d different bytes): %w", f, len(again), ErrCorrupt)
	}
	return s, nil
}

// decodeScratch is what Decode needs besides the state, reused: the
// decoder, which the interface call of a state's decode would move to
// the heap per state, and the buffer of the canonical check's encoding.
// A reduce decodes every state of every record it merges.
type decodeScratch struct {
	d     decoder
	again []byte
}

var decodeScratches = sync.Pool{New: func() any { return new(decodeScratch) }}

func stateTag(s state) byte {
	switch s.(type) {
	case *countState:
		return tagCount
	case *decStats:
		return tagDecStats
	case *floatStats:
		return tagFloat
	case *corrState:
		return tagCorr
	case *minMaxState:
		return tagMinMax
	case *topNState:
		return tagTopN
	case *distinctState:
		return tagDistinct
	case *hllState:
		return tagHLL
	case *quantileState:
		return tagQuantile
	}
	return 0
}

// decoder reads an encoded state; the first failure sticks, and every read
// after it returns zeros, so decode methods check d.err only where they
// must not go on (before allocating or looping).
type decoder struct {
	f   *Func
	b   []byte
	off int
	err error
}

func (d *decoder) failf(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("agg: decode %s: at byte %d: %s: %w", d.f, d.off, fmt.Sprintf(format, args...), ErrCorrupt)
	}
}

func (d *decoder) rest() []byte {
	if d.err != nil {
		return nil
	}
	return d.b[d.off:]
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.failf("truncated")
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.failf("bad or truncated varint")
		return 0
	}
	d.off += n
	return x
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.failf("bad or truncated varint")
		return 0
	}
	d.off += n
	return x
}

// count reads a count of rows (≥ 0).
func (d *decoder) count(what string) int64 {
	x := d.uvarint()
	if x > math.MaxInt64 {
		d.failf("%s %d overflows int64", what, x)
		return 0
	}
	return int64(x)
}

// length reads a length of items of at least min bytes each, checked
// against the bytes left, so that no damaged length allocates more than
// the input could hold.
func (d *decoder) length(what string, min int) int {
	x := d.uvarint()
	if d.err != nil {
		return 0
	}
	if left := uint64(len(d.b) - d.off); min > 0 && x > left/uint64(min) || x > left+1<<20 {
		d.failf("%s %d exceeds the %d bytes left", what, x, left)
		return 0
	}
	return int(x)
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.off {
		d.failf("truncated: %d bytes needed, %d left", n, len(d.b)-d.off)
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

func (d *decoder) uint64() uint64 {
	p := d.bytes(8)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(p)
}

// appendMagnitude appends a non-negative big integer as a length and its
// big-endian bytes, without leading zeros (zero is length 0).
func appendMagnitude(b []byte, x *big.Int) []byte {
	n := (x.BitLen() + 7) / 8
	b = binary.AppendUvarint(b, uint64(n))
	b = slices.Grow(b, n)
	x.FillBytes(b[len(b) : len(b)+n])
	return b[:len(b)+n]
}

// magnitude reads what appendMagnitude wrote into z; it has at most max
// bytes.
func (d *decoder) magnitude(z *big.Int, what string, max int) {
	if p := d.magBytes(what, max); d.err == nil {
		z.SetBytes(p)
	}
}

// magBytes reads what appendMagnitude wrote, as big-endian bytes without
// leading zeros; it has at most max bytes.
func (d *decoder) magBytes(what string, max int) []byte {
	n := d.length(what, 1)
	if n > max {
		d.failf("%s of %d bytes exceeds %d", what, n, max)
		return nil
	}
	p := d.bytes(n)
	if d.err != nil {
		return nil
	}
	if n > 0 && p[0] == 0 {
		d.failf("%s has a leading zero byte", what)
		return nil
	}
	return p
}

// The numeric value encoding: a form byte, then for finite values the
// display scale and the coefficient's magnitude.
const (
	decPos    = 0 // finite, ≥ 0
	decNeg    = 1 // finite, < 0
	decNaN    = 2
	decPosInf = 3
	decNegInf = 4
)

// appendDecimal encodes a numeric that normDecimal has normalized.
func appendDecimal(b []byte, x *apd.Decimal) []byte {
	switch x.Form {
	case apd.NaN, apd.NaNSignaling:
		return append(b, decNaN)
	case apd.Infinite:
		if x.Negative {
			return append(b, decNegInf)
		}
		return append(b, decPosInf)
	}
	if x.Negative {
		b = append(b, decNeg)
	} else {
		b = append(b, decPos)
	}
	b = binary.AppendUvarint(b, uint64(-int64(x.Exponent)))
	if x.Coeff.IsUint64() {
		u := x.Coeff.Uint64()
		n := (bits.Len64(u) + 7) / 8
		b = binary.AppendUvarint(b, uint64(n))
		for i := n - 1; i >= 0; i-- {
			b = append(b, byte(u>>(8*i)))
		}
		return b
	}
	return appendMagnitude(b, x.Coeff.MathBigInt())
}

// decimal reads what appendDecimal wrote into x, and checks that it is
// normalized.
func (d *decoder) decimal(x *apd.Decimal) {
	form := d.byte()
	*x = apd.Decimal{}
	switch form {
	case decNaN:
		x.Form = apd.NaN
		return
	case decPosInf, decNegInf:
		x.Form, x.Negative = apd.Infinite, form == decNegInf
		return
	case decPos, decNeg:
	default:
		d.failf("numeric form %d", form)
		return
	}
	scale := d.uvarint()
	if scale > maxDscale {
		d.failf("numeric scale %d exceeds %d", scale, maxDscale)
		return
	}
	var c big.Int
	d.magnitude(&c, "numeric coefficient", maxNumericBytes)
	if d.err != nil {
		return
	}
	if form == decNeg && c.Sign() == 0 {
		d.failf("negative zero numeric")
		return
	}
	if len(c.String())-int(scale) > maxNumericWeight {
		d.failf("numeric has more than %d digits before the point", maxNumericWeight)
		return
	}
	x.Coeff.SetMathBigInt(&c)
	x.Exponent = -int32(scale)
	x.Negative = form == decNeg
}

// normDecimal makes x the canonical form of a numeric input, as
// PostgreSQL's own NumericVar would hold it: a NaN of one kind, no negative
// zero, and an exponent of at most 0 (a display scale of -Exponent ≥ 0;
// "1E+3" is 1000 with scale 0). A numeric beyond PostgreSQL's range is an
// error wrapping ErrOutOfRange.
func normDecimal(x *apd.Decimal) error {
	switch x.Form {
	case apd.NaN, apd.NaNSignaling:
		*x = apd.Decimal{Form: apd.NaN}
		return nil
	case apd.Infinite:
		x.Coeff.SetInt64(0)
		x.Exponent = 0
		return nil
	case apd.Finite:
	default:
		return fmt.Errorf("agg: numeric of unknown form %d: %w", x.Form, ErrBadArgument)
	}
	if x.Exponent < -maxDscale {
		return fmt.Errorf("agg: numeric %s has more than %d digits after the point: %w", x.Text('G'), maxDscale, ErrOutOfRange)
	}
	if x.Coeff.Sign() == 0 {
		x.Negative = false
		if x.Exponent > 0 {
			x.Exponent = 0
		}
		return nil
	}
	if x.Exponent > 0 {
		if x.NumDigits()+int64(x.Exponent) > maxNumericWeight {
			return fmt.Errorf("agg: numeric %s has more than %d digits before the point: %w", x.Text('G'), maxNumericWeight, ErrOutOfRange)
		}
		var p apd.BigInt
		p.Exp(apd.NewBigInt(10), apd.NewBigInt(int64(x.Exponent)), nil)
		x.Coeff.Mul(&x.Coeff, &p)
		x.Exponent = 0
		return nil
	}
	if x.NumDigits()+int64(x.Exponent) > maxNumericWeight {
		return fmt.Errorf("agg: numeric %s has more than %d digits before the point: %w", x.Text('G'), maxNumericWeight, ErrOutOfRange)
	}
	return nil
}

// canonicalNaN is the one NaN that float states hold, so that equal states
// encode equally whatever NaN payloads their inputs carried.
var canonicalNaN = math.Float64frombits(0x7ff8000000000001)

// normValue canonicalizes an input Value of kind k in place (see
// normDecimal; NaNs become canonicalNaN). It copies nothing.
func normValue(v *Value) error {
	switch v.Kind {
	case KindDecimal:
		return normDecimal(&v.Dec)
	case KindFloat:
		if v.Float != v.Float {
			v.Float = canonicalNaN
		}
	case KindBool:
		if v.Int != 0 {
			v.Int = 1
		}
	}
	return nil
}

// isNormal reports whether normValue would leave v as it is.
func isNormal(v *Value) bool {
	switch v.Kind {
	case KindDecimal:
		d := &v.Dec
		switch d.Form {
		case apd.NaN:
			return !d.Negative
		case apd.Infinite:
			return true
		case apd.Finite:
			return d.Exponent <= 0 && d.Exponent >= -maxDscale &&
				!(d.Negative && d.Coeff.Sign() == 0) &&
				(d.Coeff.IsUint64() || d.NumDigits()+int64(d.Exponent) <= maxNumericWeight)
		}
		return false
	case KindFloat:
		return v.Float == v.Float || math.Float64bits(v.Float) == math.Float64bits(canonicalNaN)
	case KindBool:
		return v.Int == 0 || v.Int == 1
	}
	return true
}

// copyValue sets dst to a deep copy of src's field for kind k.
func copyValue(dst, src *Value) {
	dst.Kind, dst.Null = src.Kind, src.Null
	switch src.Kind {
	case KindDecimal:
		dst.Dec.Set(&src.Dec)
	case KindFloat:
		dst.Float = src.Float
	case KindText:
		dst.Str = src.Str
	case KindBytes:
		dst.Bytes = append(dst.Bytes[:0:0], src.Bytes...)
	default:
		dst.Int = src.Int
	}
}

// appendValue encodes a normalized non-NULL value of kind k.
func appendValue(b []byte, v *Value) []byte {
	switch v.Kind {
	case KindInt, KindDate, KindTimestamp, KindBool:
		return binary.AppendVarint(b, v.Int)
	case KindFloat:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float))
	case KindDecimal:
		return appendDecimal(b, &v.Dec)
	case KindText:
		b = binary.AppendUvarint(b, uint64(len(v.Str)))
		return append(b, v.Str...)
	case KindBytes:
		b = binary.AppendUvarint(b, uint64(len(v.Bytes)))
		return append(b, v.Bytes...)
	}
	panic("agg: appendValue of kind " + v.Kind.String())
}

// value reads a value of kind k that appendValue wrote, and checks that it
// is normalized.
func (d *decoder) value(k Kind, v *Value) {
	*v = Value{Kind: k}
	switch k {
	case KindInt, KindDate, KindTimestamp:
		v.Int = d.varint()
	case KindBool:
		v.Int = d.varint()
		if v.Int != 0 && v.Int != 1 {
			d.failf("boolean %d", v.Int)
		}
	case KindFloat:
		v.Float = math.Float64frombits(d.uint64())
		if v.Float != v.Float && math.Float64bits(v.Float) != math.Float64bits(canonicalNaN) {
			d.failf("NaN with payload %#x", math.Float64bits(v.Float))
		}
	case KindDecimal:
		d.decimal(&v.Dec)
	case KindText:
		v.Str = string(d.bytes(d.length("text length", 1)))
	case KindBytes:
		v.Bytes = append([]byte(nil), d.bytes(d.length("bytea length", 1))...)
	default:
		d.failf("value of kind %s", k)
	}
}

// appendKey appends the distinctness key of a normalized value: equal keys
// exactly when PostgreSQL's equality holds (1.0 = 1.00, -0 = 0 for floats,
// NaN = NaN). The keys of integers, floats, dates and timestamps sort as
// their values do.
func appendKey(b []byte, v *Value) []byte {
	switch v.Kind {
	case KindInt, KindDate, KindTimestamp, KindBool:
		return binary.BigEndian.AppendUint64(b, uint64(v.Int)^1<<63)
	case KindFloat:
		f := v.Float
		if f == 0 {
			f = 0 // -0 is 0
		}
		u := math.Float64bits(f)
		if u>>63 != 0 {
			u = ^u
		} else {
			u |= 1 << 63
		}
		return binary.BigEndian.AppendUint64(b, u)
	case KindDecimal:
		return appendDecimalKey(b, &v.Dec)
	case KindText:
		return append(b, v.Str...)
	case KindBytes:
		return append(b, v.Bytes...)
	}
	panic("agg: appendKey of kind " + v.Kind.String())
}

// appendDecimalKey appends a numeric without its trailing zeros, so that
// 1.0 and 1.00 have one key: a form byte, then for finite nonzero values
// the exponent and the coefficient's digits.
func appendDecimalKey(b []byte, x *apd.Decimal) []byte {
	switch x.Form {
	case apd.NaN, apd.NaNSignaling:
		return append(b, decNaN)
	case apd.Infinite:
		if x.Negative {
			return append(b, decNegInf)
		}
		return append(b, decPosInf)
	}
	if x.Coeff.Sign() == 0 {
		return append(b, decPos)
	}
	if x.Negative {
		b = append(b, decNeg)
	} else {
		b = append(b, decPos)
	}
	exp := int64(x.Exponent)
	if x.Coeff.IsUint64() {
		u := x.Coeff.Uint64()
		for u%10 == 0 {
			u /= 10
			exp++
		}
		b = binary.AppendVarint(b, exp)
		return strconv.AppendUint(b, u, 10)
	}
	var r apd.Decimal
	r.Reduce(x)
	b = binary.AppendVarint(b, int64(r.Exponent))
	return r.Coeff.Append(b, 10)
}
