package agg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"

	"github.com/cockroachdb/apd/v3"
)

// floatStats is sum, avg, variance and stddev over real and double
// precision: the count and exact sums (fixed) of the values and of their
// squares, so that a state is the same whatever order its rows came in,
// and Result rounds once. NaN and infinite inputs are counted apart, as
// PostgreSQL's numeric states count them, and give the results IEEE
// arithmetic gives PostgreSQL.
//
// Encoding: n, NaNs, +Infinities, -Infinities (uvarints), the sum and, for
// variance and stddev, the sum of squares (see fixed.appendBinary).
type floatStats struct {
	f *Func
	specialCounts
	sum, sq fixed
}

func (s *floatStats) Add(args ...*Value) error {
	v, err := s.f.arg(args)
	if v == nil {
		return err // NULL, or a bad argument
	}
	x := v.Float
	switch {
	case x-x == 0: // finite
		s.n++
		s.sum.addFloat(x)
		if s.f.needsSquares() {
			s.sq.addProduct(x, x)
		}
	case x > 0:
		s.pinf++
	case x < 0:
		s.ninf++
	default:
		s.nan++
	}
	return nil
}

func (s *floatStats) Merge(other State) error {
	o, ok := other.(*floatStats)
	if !ok || o.f.op != s.f.op {
		return s.f.mergeMismatch(other)
	}
	if err := s.specialCounts.add(o.specialCounts); err != nil {
		return err
	}
	s.sum.merge(&o.sum)
	if s.f.needsSquares() {
		s.sq.merge(&o.sq)
	}
	return nil
}

func (s *floatStats) AppendBinary(b []byte) ([]byte, error) {
	b = appendHeader(b, tagFloat)
	b = s.specialCounts.appendBinary(b)
	b = s.sum.appendBinary(b)
	if s.f.needsSquares() {
		b = s.sq.appendBinary(b)
	}
	return b, nil
}

func (s *floatStats) decode(d *decoder) {
	s.specialCounts.decode(d)
	s.sum.decode(d)
	if s.f.needsSquares() {
		s.sq.decode(d)
		if d.err == nil && !s.sq.isZero() && int64(s.sq.limbs[len(s.sq.limbs)-1]) < 0 {
			d.failf("negative sum of squares")
		}
	}
	if d.err == nil && s.n == 0 && (!s.sum.isZero() || !s.sq.isZero()) {
		d.failf("sums of no rows are not zero")
	}
}

func (s *floatStats) Result() (Value, error) {
	total := s.n + s.nan + s.pinf + s.ninf
	if total == 0 {
		return Null(KindFloat), nil
	}
	specials := s.nan + s.pinf + s.ninf
	switch s.f.op {
	case opSum, opAvg:
		switch {
		case s.nan > 0 || s.pinf > 0 && s.ninf > 0:
			return FloatValue(math.NaN()), nil
		case s.pinf > 0:
			return FloatValue(math.Inf(1)), nil
		case s.ninf > 0:
			return FloatValue(math.Inf(-1)), nil
		}
		var r big.Rat
		s.sum.rat(&r)
		if s.f.op == opAvg {
			r.Quo(&r, new(big.Rat).SetInt64(s.n))
		}
		f := ratFloat(&r, s.f.real)
		if math.IsInf(f, 0) {
			return Value{}, fmt.Errorf("agg: %s: the sum is out of range for type %s: %w", s.f, s.f.resultType, ErrOutOfRange)
		}
		return FloatValue(f), nil
	}
	// float8_var_samp and friends: NULL below 2 (or 1) rows, counting
	// NaNs and infinities, which then make the result NaN.
	sample := s.f.op == opVarSamp || s.f.op == opStddevSamp
	if sample && total < 2 {
		return Null(KindFloat), nil
	}
	if specials > 0 {
		return FloatValue(math.NaN()), nil
	}
	// (N·Σx² − (Σx)²) / (N·(N−1)) or / N², exactly.
	var sx, sq big.Rat
	s.sum.rat(&sx)
	s.sq.rat(&sq)
	n := new(big.Rat).SetInt64(s.n)
	num := new(big.Rat).Mul(n, &sq)
	num.Sub(num, sx.Mul(&sx, &sx))
	den := new(big.Rat).Set(n)
	if sample {
		den.Mul(den, new(big.Rat).SetInt64(s.n-1))
	} else {
		den.Mul(den, n)
	}
	v := num.Quo(num, den)
	if s.f.op == opStddevSamp || s.f.op == opStddevPop {
		return FloatValue(sqrtRatFloat64(v)), nil
	}
	return FloatValue(ratFloat(v, false)), nil
}

// corrState is corr(y, x): the count and the exact sums of x, y, x², y²
// and xy, for rows where neither is NULL. Integer and numeric arguments
// are converted to double precision first, as PostgreSQL's implicit
// casts do (correctly rounded).
//
// Encoding: n, the count of rows with a NaN or infinite argument, then
// Σx, Σy, Σx², Σy², Σxy.
type corrState struct {
	f        *Func
	n        int64 // rows with finite arguments
	specials int64 // rows with a NaN or infinite argument
	sx, sy   fixed
	sxx, syy fixed
	sxy      fixed
}

func (s *corrState) Add(args ...*Value) error {
	if len(args) != 2 {
		return s.f.badArity(len(args))
	}
	if args[0].Null || args[1].Null {
		return nil
	}
	y, err := s.arg(0, args[0])
	if err != nil {
		return err
	}
	x, err := s.arg(1, args[1])
	if err != nil {
		return err
	}
	if x-x != 0 || y-y != 0 {
		s.specials++
		return nil
	}
	s.n++
	s.sx.addFloat(x)
	s.sy.addFloat(y)
	s.sxx.addProduct(x, x)
	s.syy.addProduct(y, y)
	s.sxy.addProduct(x, y)
	return nil
}

func (s *corrState) arg(i int, v *Value) (float64, error) {
	if v.Kind != s.f.Args[i].Kind {
		return 0, s.f.badKind(i, v)
	}
	switch v.Kind {
	case KindFloat:
		return v.Float, nil
	case KindInt:
		return float64(v.Int), nil
	}
	return decimalFloat64(&v.Dec)
}

func (s *corrState) sums() []*fixed { return []*fixed{&s.sx, &s.sy, &s.sxx, &s.syy, &s.sxy} }

func (s *corrState) Merge(other State) error {
	o, ok := other.(*corrState)
	if !ok {
		return s.f.mergeMismatch(other)
	}
	n, err := addCount(s.n, o.n)
	if err != nil {
		return err
	}
	sp, err := addCount(s.specials, o.specials)
	if err != nil {
		return err
	}
	s.n, s.specials = n, sp
	os := o.sums()
	for i, a := range s.sums() {
		a.merge(os[i])
	}
	return nil
}

func (s *corrState) AppendBinary(b []byte) ([]byte, error) {
	b = appendHeader(b, tagCorr)
	b = binary.AppendUvarint(b, uint64(s.n))
	b = binary.AppendUvarint(b, uint64(s.specials))
	for _, a := range s.sums() {
		b = a.appendBinary(b)
	}
	return b, nil
}

func (s *corrState) decode(d *decoder) {
	s.n, s.specials = d.count("count"), d.count("NaN count")
	for _, a := range s.sums() {
		a.decode(d)
		if d.err == nil && s.n == 0 && !a.isZero() {
			d.failf("sums of no rows are not zero")
		}
	}
	for _, a := range []*fixed{&s.sxx, &s.syy} {
		if d.err == nil && !a.isZero() && int64(a.limbs[len(a.limbs)-1]) < 0 {
			d.failf("negative sum of squares")
		}
	}
}

// Result is float8_corr's: NULL for no rows or when x or y is constant,
// NaN when an argument was NaN or infinite, else Cxy / sqrt(Cxx·Cyy) with
// C the centered sums (N times them, which cancels), computed exactly and
// rounded once.
func (s *corrState) Result() (Value, error) {
	if s.n+s.specials == 0 {
		return Null(KindFloat), nil
	}
	if s.specials > 0 {
		return FloatValue(math.NaN()), nil
	}
	var sx, sy, sxx, syy, sxy big.Rat
	s.sx.rat(&sx)
	s.sy.rat(&sy)
	s.sxx.rat(&sxx)
	s.syy.rat(&syy)
	s.sxy.rat(&sxy)
	n := new(big.Rat).SetInt64(s.n)
	centered := func(sab, sa, sb *big.Rat) *big.Rat { // N·Σab − Σa·Σb
		c := new(big.Rat).Mul(n, sab)
		return c.Sub(c, new(big.Rat).Mul(sa, sb))
	}
	cxx, cyy, cxy := centered(&sxx, &sx, &sx), centered(&syy, &sy, &sy), centered(&sxy, &sx, &sy)
	if cxx.Sign() == 0 || cyy.Sign() == 0 {
		return Null(KindFloat), nil
	}
	// corr = sign(Cxy) · sqrt(Cxy² / (Cxx·Cyy)).
	r2 := new(big.Rat).Mul(cxy, cxy)
	r2.Quo(r2, cxx.Mul(cxx, cyy))
	c := sqrtRatFloat64(r2)
	if cxy.Sign() < 0 {
		c = -c
	}
	return FloatValue(c), nil
}

// ratFloat rounds r to the nearest float64, or float32 when real (big.Rat
// rounds correctly, half to even, subnormals included).
func ratFloat(r *big.Rat, real bool) float64 {
	if real {
		f, _ := r.Float32()
		return float64(f)
	}
	f, _ := r.Float64()
	return f
}

// sqrtRatFloat64 is the square root of r ≥ 0, correctly rounded to the
// nearest float64: an integer square root with one sticky bit below 55
// significant bits, so that rounding it to 53 rounds the exact root.
func sqrtRatFloat64(r *big.Rat) float64 {
	if r.Sign() <= 0 {
		return 0
	}
	p, q := r.Num(), r.Denom()
	// sqrt(p/q)·2^k has about (len(p)-len(q))/2 + k bits; take k so it
	// has at least 56.
	k := 57 - (p.BitLen()-q.BitLen())/2
	num, den := new(big.Int).Set(p), new(big.Int).Set(q)
	if k >= 0 {
		num.Lsh(num, uint(2*k))
	} else {
		den.Lsh(den, uint(-2*k))
	}
	t, rem := new(big.Int).QuoRem(num, den, new(big.Int))
	s := new(big.Int).Sqrt(t)
	sticky := rem.Sign() != 0 || new(big.Int).Mul(s, s).Cmp(t) != 0
	// (2s + sticky)·2^(-k-1): the same bits as the exact root above the
	// sticky bit, and nonzero below exactly when the root's are.
	s.Lsh(s, 1)
	if sticky {
		s.SetBit(s, 0, 1)
	}
	f := new(big.Float).SetPrec(uint(s.BitLen())).SetInt(s)
	f.SetMantExp(f, -k-1)
	v, _ := f.Float64()
	return v
}

// pow10f[k] = 10^k, exactly representable for k ≤ 22.
var pow10f = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// decimalFloat64 converts a numeric to the nearest float64, as
// numeric_float8 does. Coefficients below 2^53 with exponents within ±22
// take one correctly rounded IEEE operation and no allocation.
func decimalFloat64(d *apd.Decimal) (float64, error) {
	switch d.Form {
	case apd.NaN, apd.NaNSignaling:
		return math.NaN(), nil
	case apd.Infinite:
		if d.Negative {
			return math.Inf(-1), nil
		}
		return math.Inf(1), nil
	}
	if d.Coeff.IsUint64() {
		if u := d.Coeff.Uint64(); u < 1<<53 {
			f, e := float64(u), d.Exponent
			ok := true
			switch {
			case e == 0:
			case e > 0 && e <= 22:
				f *= pow10f[e]
			case e < 0 && e >= -22:
				f /= pow10f[-e]
			default:
				ok = false
			}
			if ok {
				if d.Negative {
					f = -f
				}
				return f, nil
			}
		}
	}
	f, err := strconv.ParseFloat(d.Text('E'), 64)
	var ne *strconv.NumError
	if err != nil && !(errors.As(err, &ne) && ne.Err == strconv.ErrRange) {
		return 0, fmt.Errorf("agg: numeric %s as double precision: %w", d.Text('G'), ErrBadArgument)
	}
	return f, nil
}
