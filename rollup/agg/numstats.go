package agg

import (
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/cockroachdb/apd/v3"
)

// countState is count(*) and count(x): a row count.
type countState struct {
	f *Func
	n int64
}

func (s *countState) Add(args ...*Value) error {
	if s.f.op == opCountStar {
		s.n++
		return nil
	}
	if len(args) != 1 {
		return s.f.badArity(len(args))
	}
	if !args[0].Null {
		s.n++
	}
	return nil
}

func (s *countState) Merge(other State) error {
	o, ok := other.(*countState)
	if !ok || o.f.op != s.f.op {
		return s.f.mergeMismatch(other)
	}
	n, err := addCount(s.n, o.n)
	if err != nil {
		return err
	}
	s.n = n
	return nil
}

func (s *countState) AppendBinary(b []byte) ([]byte, error) {
	return binary.AppendUvarint(appendHeader(b, tagCount), uint64(s.n)), nil
}

func (s *countState) decode(d *decoder) { s.n = d.count("count") }

func (s *countState) Result() (Value, error) { return IntValue(s.n), nil }

// decStats is sum, avg, variance and stddev over integers and numerics:
// the count and the exact sums (and sums of squares) that PostgreSQL's
// NumericAggState and Int128AggState hold, merged exactly.
//
// Encoding: n, NaNs, +Infinities, -Infinities (uvarints), the sum (see
// decSum.appendBinary) and, for variance and stddev, the sum of squares.
type decStats struct {
	f *Func
	specialCounts
	sum decSum
	sq  decSum // of squares, at twice the scale of sum
}

// specialCounts are the inputs a statistic counts: the finite ones, and
// the NaN and infinite ones, which decide its result when there are any.
type specialCounts struct {
	n               int64 // finite inputs
	nan, pinf, ninf int64 // NaN, Infinity, -Infinity inputs
}

// appendBinary encodes the four counts as uvarints.
func (c *specialCounts) appendBinary(b []byte) []byte {
	for _, n := range []int64{c.n, c.nan, c.pinf, c.ninf} {
		b = binary.AppendUvarint(b, uint64(n))
	}
	return b
}

func (c *specialCounts) decode(d *decoder) {
	c.n, c.nan, c.pinf, c.ninf = d.count("count"), d.count("NaN count"), d.count("Infinity count"), d.count("-Infinity count")
}

// add adds o to c, all four counts or none.
func (c *specialCounts) add(o specialCounts) error {
	var sum [4]int64
	for i, p := range [][2]int64{{c.n, o.n}, {c.nan, o.nan}, {c.pinf, o.pinf}, {c.ninf, o.ninf}} {
		n, err := addCount(p[0], p[1])
		if err != nil {
			return err
		}
		sum[i] = n
	}
	*c = specialCounts{sum[0], sum[1], sum[2], sum[3]}
	return nil
}

func (s *decStats) Add(args ...*Value) error {
	v, err := s.f.arg(args)
	if v == nil {
		return err // NULL, or a bad argument
	}
	if v.Kind == KindDecimal {
		return s.addDecimal(&v.Dec)
	}
	s.n++
	x := i128From(v.Int)
	if r, ok := add128(s.sum.v, x); ok && s.sum.b == nil {
		s.sum.v = r // integer sums stay at scale 0
	} else {
		s.sum.add(x, 0)
	}
	if s.f.needsSquares() {
		s.sq.addIntSquare(v.Int)
	}
	return nil
}

func (s *decStats) addDecimal(x *apd.Decimal) error {
	switch x.Form {
	case apd.Finite:
	case apd.Infinite:
		if x.Negative {
			s.ninf++
		} else {
			s.pinf++
		}
		return nil
	default:
		s.nan++
		return nil
	}
	t, err := termOf(x)
	if err != nil {
		return err
	}
	s.n++
	t.addTo(&s.sum)
	if s.f.needsSquares() {
		t.addSquareTo(&s.sq)
	}
	return nil
}

func (s *decStats) Merge(other State) error {
	o, ok := other.(*decStats)
	if !ok || o.f.op != s.f.op || o.f.Args[0].Kind != s.f.Args[0].Kind {
		return s.f.mergeMismatch(other)
	}
	if o == s {
		c := *o
		c.sum.b, c.sq.b = copyBig(o.sum.b), copyBig(o.sq.b)
		o = &c
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

func copyBig(x *big.Int) *big.Int {
	if x == nil {
		return nil
	}
	return new(big.Int).Set(x)
}

func (s *decStats) AppendBinary(b []byte) ([]byte, error) {
	b = appendHeader(b, tagDecStats)
	b = s.specialCounts.appendBinary(b)
	b = s.sum.appendBinary(b)
	if s.f.needsSquares() {
		b = s.sq.appendBinary(b)
	}
	return b, nil
}

func (s *decStats) decode(d *decoder) {
	s.specialCounts.decode(d)
	maxScale := int32(maxDscale)
	if s.f.Args[0].Kind == KindInt {
		maxScale = 0
	}
	s.sum.decode(d, maxScale)
	if s.f.needsSquares() {
		s.sq.decode(d, 2*maxScale)
		if d.err == nil && s.sq.scale != 2*s.sum.scale {
			d.failf("sum of squares at scale %d, sum at %d", s.sq.scale, s.sum.scale)
		}
		if d.err == nil && s.sq.sign() < 0 {
			d.failf("negative sum of squares")
		}
	}
	if d.err == nil && s.n == 0 && (s.sum.sign() != 0 || s.sum.scale != 0 || s.sq.sign() != 0 || s.sq.scale != 0) {
		d.failf("sums of no rows are not zero")
	}
}

func (s *decStats) Result() (Value, error) {
	total := s.n + s.nan + s.pinf + s.ninf // NA_TOTAL_COUNT
	if total == 0 {
		return Null(s.f.resultKind), nil
	}
	switch s.f.op {
	case opSum:
		if s.f.intResult {
			if x, ok := s.sum.v.int64(); ok && s.sum.b == nil {
				return IntValue(x), nil
			}
			return Value{}, fmt.Errorf("agg: %s: the sum %s is out of range for type bigint: %w", s.f, s.sum.coef(), ErrOutOfRange)
		}
		if v, special := s.specialSum(); special {
			return v, nil
		}
		return decimalResult(s.sum.coef(), s.sum.scale), nil
	case opAvg:
		if v, special := s.specialSum(); special {
			return v, nil
		}
		q, scale := pgDiv(s.sum.coef(), s.sum.scale, big.NewInt(s.n), 0)
		return decimalResult(q, scale), nil
	}
	// numeric_stddev_internal.
	sample := s.f.op == opVarSamp || s.f.op == opStddevSamp
	if sample && total <= 1 {
		return Null(KindDecimal), nil
	}
	if s.nan+s.pinf+s.ninf > 0 {
		return Value{Kind: KindDecimal, Dec: apd.Decimal{Form: apd.NaN}}, nil
	}
	// N·sumX2 − sumX², at sumX2's scale (twice sumX's).
	n := big.NewInt(s.n)
	sx := s.sum.coef()
	num := new(big.Int).Mul(n, s.sq.coef())
	num.Sub(num, sx.Mul(sx, sx))
	if num.Sign() <= 0 {
		return decimalResult(new(big.Int), 0), nil
	}
	den := new(big.Int).Set(n)
	if sample {
		den.Mul(den, big.NewInt(s.n-1))
	} else {
		den.Mul(den, n)
	}
	v, scale := pgDiv(num, s.sq.scale, den, 0)
	if s.f.op == opStddevSamp || s.f.op == opStddevPop {
		v = sqrtRound(v, scale)
	}
	return decimalResult(v, scale), nil
}

// specialSum is numeric_sum's and numeric_avg's answer when the input held
// NaNs or infinities.
func (s *decStats) specialSum() (Value, bool) {
	v := Value{Kind: KindDecimal}
	switch {
	case s.nan > 0 || s.pinf > 0 && s.ninf > 0:
		v.Dec.Form = apd.NaN
	case s.pinf > 0:
		v.Dec.Form = apd.Infinite
	case s.ninf > 0:
		v.Dec.Form, v.Dec.Negative = apd.Infinite, true
	default:
		return v, false
	}
	return v, true
}

func decimalResult(coef *big.Int, scale int32) Value {
	v := Value{Kind: KindDecimal}
	setDecimal(&v.Dec, coef, scale)
	return v
}
