package agg

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"math/bits"

	"github.com/cockroachdb/apd/v3"
)

// i128 is a signed 128-bit integer in two's complement: the fast
// accumulator of exact sums, which PostgreSQL also uses for sums of
// bigints. Sums that outgrow it move to a big.Int and never wrap.
type i128 struct{ lo, hi uint64 }

func i128From(x int64) i128 { return i128{lo: uint64(x), hi: uint64(x >> 63)} }

// i128FromMag is ±u.
func i128FromMag(u uint64, neg bool) i128 {
	if neg {
		return negate128(i128{lo: u})
	}
	return i128{lo: u}
}

// int64 is a, if it fits an int64.
func (a i128) int64() (int64, bool) {
	return int64(a.lo), a.hi == uint64(int64(a.lo)>>63)
}

func (a i128) isNeg() bool  { return int64(a.hi) < 0 }
func (a i128) isZero() bool { return a.lo == 0 && a.hi == 0 }

func negate128(a i128) i128 {
	lo, b := bits.Sub64(0, a.lo, 0)
	hi, _ := bits.Sub64(0, a.hi, b)
	return i128{lo, hi}
}

// add128 is a+b, and false if it overflows.
func add128(a, b i128) (i128, bool) {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	hi, _ := bits.Add64(a.hi, b.hi, c)
	r := i128{lo, hi}
	return r, a.isNeg() != b.isNeg() || r.isNeg() == a.isNeg()
}

// mul128 is a·m, and false if it overflows.
func mul128(a i128, m uint64) (i128, bool) {
	neg := a.isNeg()
	if neg {
		a = negate128(a)
	}
	h1, l1 := bits.Mul64(a.lo, m)
	h2, l2 := bits.Mul64(a.hi, m)
	hi, c := bits.Add64(h1, l2, 0)
	if h2 != 0 || c != 0 || hi>>63 != 0 {
		return i128{}, false
	}
	r := i128{l1, hi}
	if neg {
		r = negate128(r)
	}
	return r, true
}

// pow10u64[k] = 10^k for k ≤ 19.
var pow10u64 = func() (p [20]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// mulPow10 is a·10^k, and false if it overflows.
func mulPow10(a i128, k int32) (i128, bool) {
	if a.isZero() {
		return a, true
	}
	ok := true
	for k > 0 && ok {
		step := min(k, 19)
		a, ok = mul128(a, pow10u64[step])
		k -= step
	}
	return a, ok
}

// appendMag appends |a| as a length and big-endian bytes without leading
// zeros, as appendMagnitude does for a big.Int.
func (a i128) appendMag(b []byte) []byte {
	buf := a.magBytes()
	i := 0
	for i < len(buf) && buf[i] == 0 {
		i++
	}
	b = binary.AppendUvarint(b, uint64(len(buf)-i))
	return append(b, buf[i:]...)
}

func (a i128) magBytes() [16]byte {
	if a.isNeg() {
		a = negate128(a) // -2^127 stays itself: as unsigned, its magnitude
	}
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], a.hi)
	binary.BigEndian.PutUint64(buf[8:], a.lo)
	return buf
}

func (a i128) big(z *big.Int) *big.Int {
	buf := a.magBytes()
	z.SetBytes(buf[:])
	if a.isNeg() {
		z.Neg(z)
	}
	return z
}

// i128FromBig is x if it fits in 127 bits and a sign.
func i128FromBig(x *big.Int) (i128, bool) {
	if x.BitLen() > 127 {
		return i128{}, false
	}
	var buf [16]byte
	x.FillBytes(buf[:])
	r := i128{hi: binary.BigEndian.Uint64(buf[:8]), lo: binary.BigEndian.Uint64(buf[8:])}
	if x.Sign() < 0 {
		r = negate128(r)
	}
	return r, true
}

// pow10Big returns 10^k.
func pow10Big(k int32) *big.Int {
	switch {
	case k < int32(len(pow10u64)):
		return new(big.Int).SetUint64(pow10u64[k])
	case k < int32(len(pow10Table)):
		return new(big.Int).Set(pow10Table[k]) // a copy: callers may change it
	}
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(k)), nil)
}

// pow10Table holds the powers of ten that division and rescaling ask for
// most (avg's and stddev's scales reach a few dozen digits), which
// computing anew with Exp cost a twentieth of a rollup's reduce.
var pow10Table = func() []*big.Int {
	t := make([]*big.Int, 128)
	for k := range t {
		t[k] = new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(k)), nil)
	}
	return t
}()

// decSum is an exact sum of decimals: coef × 10^-scale, where scale is the
// largest display scale of its inputs, as PostgreSQL's sum keeps it (1.5 +
// 2.25 = 3.75, 1.50 + 2.5 = 4.00). The coefficient is an i128 while it fits
// and a big.Int once it does not; the encoding is the same either way.
type decSum struct {
	scale int32
	v     i128
	b     *big.Int // the coefficient, when non-nil; v is then unused
}

// add adds x × 10^-xscale.
func (s *decSum) add(x i128, xscale int32) {
	if xscale > s.scale {
		s.rescale(xscale)
	} else if xscale < s.scale {
		y, ok := mulPow10(x, s.scale-xscale)
		if !ok {
			var bx big.Int
			s.addBig(x.big(&bx), xscale)
			return
		}
		x = y
	}
	if s.b == nil {
		if r, ok := add128(s.v, x); ok {
			s.v = r
			return
		}
		s.promote()
	}
	var bx big.Int
	s.b.Add(s.b, x.big(&bx))
}

// addBig adds x × 10^-xscale; x is not modified.
func (s *decSum) addBig(x *big.Int, xscale int32) {
	if xscale > s.scale {
		s.rescale(xscale)
	}
	if s.b == nil {
		s.promote()
	}
	if xscale < s.scale {
		var t big.Int
		s.b.Add(s.b, t.Mul(x, pow10Big(s.scale-xscale)))
		return
	}
	s.b.Add(s.b, x)
}

func (s *decSum) promote() {
	s.b = s.v.big(new(big.Int))
	s.v = i128{}
}

// rescale raises the scale to scale, multiplying the coefficient.
func (s *decSum) rescale(scale int32) {
	k := scale - s.scale
	s.scale = scale
	if s.b == nil {
		if r, ok := mulPow10(s.v, k); ok {
			s.v = r
			return
		}
		s.promote()
	}
	s.b.Mul(s.b, pow10Big(k))
}

func (s *decSum) merge(o *decSum) {
	if o.b != nil {
		s.addBig(o.b, o.scale)
	} else {
		s.add(o.v, o.scale)
	}
}

// coef returns the coefficient as a new big.Int.
func (s *decSum) coef() *big.Int {
	if s.b != nil {
		return new(big.Int).Set(s.b)
	}
	return s.v.big(new(big.Int))
}

func (s *decSum) sign() int {
	if s.b != nil {
		return s.b.Sign()
	}
	switch {
	case s.v.isNeg():
		return -1
	case s.v.isZero():
		return 0
	}
	return 1
}

// appendBinary encodes the scale, a sign byte and the magnitude.
func (s *decSum) appendBinary(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(s.scale))
	if s.sign() < 0 {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	if s.b != nil {
		var m big.Int
		return appendMagnitude(b, m.Abs(s.b))
	}
	return s.v.appendMag(b)
}

// maxSumBytes bounds a decoded coefficient: the sum of 2^64 squares of
// numerics in PostgreSQL's range.
const maxSumBytes = 2*maxNumericBytes + 8

func (s *decSum) decode(d *decoder, maxScale int32) {
	scale := d.uvarint()
	if scale > uint64(maxScale) {
		d.failf("scale %d exceeds %d", scale, maxScale)
		return
	}
	neg := d.byte()
	if neg > 1 {
		d.failf("sign byte %d", neg)
		return
	}
	mag := d.magBytes("sum coefficient", maxSumBytes)
	if d.err != nil {
		return
	}
	// Up to 15 bytes are an i128 as they are, without a big.Int per
	// decoded state.
	if len(mag) < 16 {
		var buf [16]byte
		copy(buf[16-len(mag):], mag)
		v := i128{hi: binary.BigEndian.Uint64(buf[:8]), lo: binary.BigEndian.Uint64(buf[8:])}
		if neg == 1 {
			if v.isZero() {
				d.failf("negative zero sum")
				return
			}
			v = negate128(v)
		}
		s.scale, s.v, s.b = int32(scale), v, nil
		return
	}
	c := new(big.Int).SetBytes(mag)
	if neg == 1 {
		if c.Sign() == 0 {
			d.failf("negative zero sum")
			return
		}
		c.Neg(c)
	}
	s.scale = int32(scale)
	if v, ok := i128FromBig(c); ok {
		s.v, s.b = v, nil
	} else {
		s.b = c
	}
}

// decimalTerm is a finite numeric input as a sum term: ±coef × 10^-scale.
// small says the coefficient fits a uint64, in u; otherwise it is in big.
type decimalTerm struct {
	neg   bool
	small bool
	u     uint64
	big   *big.Int
	scale int32
}

// termOf splits a finite numeric into a term, with PostgreSQL's range
// checked; it allocates only for coefficients beyond 64 bits or a positive
// exponent beyond 19.
func termOf(x *apd.Decimal) (decimalTerm, error) {
	t := decimalTerm{neg: x.Negative}
	exp := x.Exponent
	if exp < -maxDscale {
		return t, fmt.Errorf("agg: numeric %s has more than %d digits after the point: %w", x.Text('G'), maxDscale, ErrOutOfRange)
	}
	if x.Coeff.IsUint64() {
		t.u, t.small = x.Coeff.Uint64(), true
		if exp <= 0 {
			t.scale = -exp
			return t, nil
		}
		if exp < int32(len(pow10u64)) {
			hi, lo := bits.Mul64(t.u, pow10u64[exp])
			if hi == 0 {
				t.u = lo
				return t, nil
			}
		}
	}
	if x.NumDigits()+int64(exp) > maxNumericWeight {
		return t, fmt.Errorf("agg: numeric %s has more than %d digits before the point: %w", x.Text('G'), maxNumericWeight, ErrOutOfRange)
	}
	t.small = false
	t.big = x.Coeff.MathBigInt()
	if exp > 0 {
		t.big.Mul(t.big, pow10Big(exp))
		exp = 0
	}
	t.scale = -exp
	return t, nil
}

// addTo adds the term to s.
func (t *decimalTerm) addTo(s *decSum) {
	if t.small {
		s.add(i128FromMag(t.u, t.neg), t.scale)
		return
	}
	var x big.Int
	x.Set(t.big)
	if t.neg {
		x.Neg(&x)
	}
	s.addBig(&x, t.scale)
}

// addSquareTo adds the term's square to s, at twice its scale, as
// PostgreSQL's do_numeric_accum computes X*X at X.dscale*2.
func (t *decimalTerm) addSquareTo(s *decSum) {
	if t.small {
		hi, lo := bits.Mul64(t.u, t.u)
		if hi>>63 == 0 {
			s.add(i128{lo, hi}, 2*t.scale)
			return
		}
		var x big.Int
		x.SetUint64(t.u)
		s.addBig(x.Mul(&x, &x), 2*t.scale)
		return
	}
	var x big.Int
	s.addBig(x.Mul(t.big, t.big), 2*t.scale)
}

// addIntSquare adds x² (scale 0) to s; it always fits an i128 term.
func (s *decSum) addIntSquare(x int64) {
	u := uint64(x)
	if x < 0 {
		u = -u
	}
	hi, lo := bits.Mul64(u, u)
	s.add(i128{lo, hi}, 0)
}
