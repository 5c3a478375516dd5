package agg

import (
	"encoding/binary"
	"math"
	"math/big"
	"math/bits"
	"slices"
)

// fixed is an exact sum of float64 values, or of exact products of two
// float64 values: one two's complement integer of 64-bit limbs, with
// limbs[i] weighing 2^(64·(base+i)). Every finite float64 is an integer
// times 2^-1074, and every product of two an integer times 2^-2148, so
// sums are exact: no rounding until Result, which rounds once. It is a
// superaccumulator (Kulisch) whose limbs cover only the exponents the
// inputs used, so its size follows the data's range: values in [1e-6, 100)
// summed over 10^9 rows need 3 limbs, the whole float64 range 34.
//
// Invariant, while non-empty: the top limb is the sign extension of the
// limb below it, so adding anything that fits below the top limb cannot
// overflow.
type fixed struct {
	limbs []uint64
	base  int32
}

// Bounds on a decoded fixed: products reach 2^-2148 (the limb at -34) and
// 2^2048 times 2^64 rows (limb 33), and a limb of headroom each way.
const (
	minFixedBase  = -36
	maxFixedLimbs = 72
)

// decompose returns x = ±m·2^e for a finite nonzero x.
func decompose(x float64) (m uint64, e int, neg bool) {
	u := math.Float64bits(x)
	exp := int(u >> 52 & 0x7ff)
	m = u & (1<<52 - 1)
	if exp == 0 {
		exp = 1 // subnormal
	} else {
		m |= 1 << 52
	}
	return m, exp - 1075, u>>63 != 0
}

// addFloat adds a finite x.
func (a *fixed) addFloat(x float64) {
	if x == 0 {
		return
	}
	m, e, neg := decompose(x)
	a.addMag(0, m, e, neg)
}

// addProduct adds x·y, exactly, for finite x and y.
func (a *fixed) addProduct(x, y float64) {
	if x == 0 || y == 0 {
		return
	}
	mx, ex, nx := decompose(x)
	my, ey, ny := decompose(y)
	hi, lo := bits.Mul64(mx, my)
	a.addMag(hi, lo, ex+ey, nx != ny)
}

// addMag adds ±(hi·2^64 + lo)·2^e.
func (a *fixed) addMag(hi, lo uint64, e int, neg bool) {
	q := e >> 6 // floor(e / 64)
	r := uint(e & 63)
	var w [3]uint64
	w[0] = lo << r
	w[1] = hi<<r | lo>>(64-r) // a shift by 64 is 0 in Go
	w[2] = hi >> (64 - r)
	n := 3
	for n > 1 && w[n-1] == 0 {
		n--
	}
	off := a.reserve(q, q+n)
	if neg {
		subAt(a.limbs, off, w[:n])
	} else {
		addAt(a.limbs, off, w[:n])
	}
	a.fixTop()
}

// reserve makes the limbs cover the limb indexes [lo, hi) with a limb of
// headroom above, and returns the position of lo.
func (a *fixed) reserve(lo, hi int) int {
	if len(a.limbs) == 0 {
		a.base = int32(lo)
		a.limbs = append(a.limbs[:0], make([]uint64, hi-lo+1)...)
		return 0
	}
	if b := int(a.base); lo < b {
		grown := make([]uint64, b-lo+len(a.limbs), b-lo+len(a.limbs)+2)
		copy(grown[b-lo:], a.limbs)
		a.limbs, a.base = grown, int32(lo)
	}
	need := hi - int(a.base) + 1
	if len(a.limbs) < 2 || a.limbs[len(a.limbs)-1] != signOf(a.limbs[len(a.limbs)-2]) {
		need = max(need, len(a.limbs)+1)
	}
	if ext := signOf(a.limbs[len(a.limbs)-1]); need > len(a.limbs) {
		for len(a.limbs) < need {
			a.limbs = append(a.limbs, ext)
		}
	}
	return lo - int(a.base)
}

// signOf is the sign extension of a limb: 0 or all ones.
func signOf(l uint64) uint64 { return uint64(int64(l) >> 63) }

// fixTop restores the invariant after an addition, which can carry into
// the top limb.
func (a *fixed) fixTop() {
	n := len(a.limbs)
	if top := a.limbs[n-1]; top != signOf(a.limbs[n-2]) {
		a.limbs = append(a.limbs, signOf(top))
	}
}

// addAt adds w at position off and propagates the carry to the top; a
// carry out of the top limb is the two's complement wrap of a sum that
// fits.
func addAt(l []uint64, off int, w []uint64) {
	var c uint64
	i := off
	for _, x := range w {
		l[i], c = bits.Add64(l[i], x, c)
		i++
	}
	for ; c != 0 && i < len(l); i++ {
		l[i], c = bits.Add64(l[i], 0, c)
	}
}

func subAt(l []uint64, off int, w []uint64) {
	var c uint64
	i := off
	for _, x := range w {
		l[i], c = bits.Sub64(l[i], x, c)
		i++
	}
	for ; c != 0 && i < len(l); i++ {
		l[i], c = bits.Sub64(l[i], 0, c)
	}
}

// merge adds o to a; o may be a.
func (a *fixed) merge(o *fixed) {
	if o == a {
		c := fixed{limbs: slices.Clone(a.limbs), base: a.base}
		o = &c
	}
	lo, hi := o.trimmed()
	if lo == hi {
		return
	}
	ol := o.limbs[lo:hi]
	obase := int(o.base) + lo
	off := a.reserve(obase, obase+len(ol))
	var c uint64
	i := off
	for _, x := range ol {
		a.limbs[i], c = bits.Add64(a.limbs[i], x, c)
		i++
	}
	ext := signOf(ol[len(ol)-1])
	for ; i < len(a.limbs); i++ {
		a.limbs[i], c = bits.Add64(a.limbs[i], ext, c)
	}
	a.fixTop()
}

// trimmed returns the range of limbs that the canonical form keeps: no
// zero limbs at the bottom, no redundant sign limbs at the top; lo == hi
// for zero.
func (a *fixed) trimmed() (lo, hi int) {
	hi = len(a.limbs)
	for lo < hi && a.limbs[lo] == 0 {
		lo++
	}
	if lo == hi {
		return 0, 0
	}
	for hi-lo >= 2 && a.limbs[hi-1] == signOf(a.limbs[hi-2]) {
		hi--
	}
	return lo, hi
}

func (a *fixed) isZero() bool {
	lo, hi := a.trimmed()
	return lo == hi
}

// appendBinary encodes the canonical form: the base (a varint) and the
// number of limbs, then the limbs, little-endian.
func (a *fixed) appendBinary(b []byte) []byte {
	lo, hi := a.trimmed()
	if lo == hi {
		return append(b, 0, 0)
	}
	b = binary.AppendVarint(b, int64(a.base)+int64(lo))
	b = binary.AppendUvarint(b, uint64(hi-lo))
	for _, l := range a.limbs[lo:hi] {
		b = binary.LittleEndian.AppendUint64(b, l)
	}
	return b
}

func (a *fixed) decode(d *decoder) {
	base := d.varint()
	n := d.length("limb count", 8)
	if d.err != nil {
		return
	}
	if n > maxFixedLimbs || base < minFixedBase || base+int64(n) > minFixedBase+maxFixedLimbs {
		d.failf("%d limbs from %d exceed the float range", n, base)
		return
	}
	a.base, a.limbs = int32(base), nil
	if n == 0 {
		if base != 0 {
			d.failf("zero with base %d", base)
		}
		return
	}
	a.limbs = make([]uint64, n, n+2)
	for i := range a.limbs {
		a.limbs[i] = d.uint64()
	}
}

// rat sets r to the exact value.
func (a *fixed) rat(r *big.Rat) *big.Rat {
	lo, hi := a.trimmed()
	if lo == hi {
		return r.SetInt64(0)
	}
	l := a.limbs[lo:hi]
	buf := make([]byte, 8*len(l))
	for i, x := range l {
		binary.BigEndian.PutUint64(buf[8*(len(l)-1-i):], x)
	}
	var z big.Int
	z.SetBytes(buf)
	if int64(l[len(l)-1]) < 0 {
		var m big.Int
		z.Sub(&z, m.Lsh(big.NewInt(1), uint(64*len(l))))
	}
	e := 64 * (int(a.base) + lo)
	if e >= 0 {
		return r.SetInt(z.Lsh(&z, uint(e)))
	}
	var den big.Int
	return r.SetFrac(&z, den.Lsh(big.NewInt(1), uint(-e)))
}
