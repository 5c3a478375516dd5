package agg_test

import (
	"errors"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/apd/v3"

	"github.com/mrengine/mr/rollup/agg"
)

// exact is a context of apd for exact arithmetic on the test's numbers.
var exact = apd.BaseContext.WithPrecision(5000)

// The references: each computes what an aggregate must return for rows by
// the simplest means at hand (apd's exact arithmetic, big.Rat, sorting, Go
// maps), independently of the package's states, and checks a Result
// against it. check is their common shape.
type check func(t testing.TB, f *agg.Func, rows [][]agg.Value, got agg.Value, err error)

func expectText(t testing.TB, f *agg.Func, got agg.Value, err error, want string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s = error %v, want %s", f, err, want)
	}
	if g := got.String(); g != want {
		t.Fatalf("%s = %s, want %s", f, g, want)
	}
}

func expectNull(t testing.TB, f *agg.Func, got agg.Value, err error) {
	t.Helper()
	if err != nil || !got.Null {
		t.Fatalf("%s = %s (%v), want NULL", f, got, err)
	}
}

func expectFloat(t testing.TB, f *agg.Func, got agg.Value, err error, want float64) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s = error %v, want %v", f, err, want)
	}
	if got.Null || got.Kind != agg.KindFloat {
		t.Fatalf("%s = %s, want the float %v", f, got, want)
	}
	if !(math.IsNaN(want) && math.IsNaN(got.Float)) && math.Float64bits(got.Float) != math.Float64bits(want) {
		t.Fatalf("%s = %v (%#x), want %v (%#x)", f, got.Float, math.Float64bits(got.Float), want, math.Float64bits(want))
	}
}

// column splits the non-NULL values of argument i into finite ones and
// counts of NaN, +Infinity and -Infinity.
type column struct {
	finite          []agg.Value
	nan, pinf, ninf int
}

func (c *column) total() int    { return len(c.finite) + c.nan + c.pinf + c.ninf }
func (c *column) specials() int { return c.nan + c.pinf + c.ninf }

func columnOf(rows [][]agg.Value, i int) column {
	var c column
	for _, row := range rows {
		v := row[i]
		switch {
		case v.Null:
		case v.Kind == agg.KindFloat && math.IsNaN(v.Float), v.Kind == agg.KindDecimal && (v.Dec.Form == apd.NaN || v.Dec.Form == apd.NaNSignaling):
			c.nan++
		case v.Kind == agg.KindFloat && math.IsInf(v.Float, 1), v.Kind == agg.KindDecimal && v.Dec.Form == apd.Infinite && !v.Dec.Negative:
			c.pinf++
		case v.Kind == agg.KindFloat && math.IsInf(v.Float, -1), v.Kind == agg.KindDecimal && v.Dec.Form == apd.Infinite:
			c.ninf++
		default:
			c.finite = append(c.finite, v)
		}
	}
	return c
}

func checkCount(t testing.TB, f *agg.Func, rows [][]agg.Value, got agg.Value, err error) {
	n := 0
	for _, row := range rows {
		if len(row) == 0 || !row[0].Null {
			n++
		}
	}
	expectText(t, f, got, err, strconv.Itoa(n))
}

// specialWant is PostgreSQL's sum and avg of inputs with NaNs or
// infinities, numeric or float alike; "" when there are none.
func specialWant(c column) string {
	switch {
	case c.nan > 0 || c.pinf > 0 && c.ninf > 0:
		return "NaN"
	case c.pinf > 0:
		return "Infinity"
	case c.ninf > 0:
		return "-Infinity"
	}
	return ""
}

// checkStats checks sum, avg, var_samp, var_pop, stddev_samp and
// stddev_pop, by the name of f's semantics.
func checkStats(op string) check {
	return func(t testing.TB, f *agg.Func, rows [][]agg.Value, got agg.Value, err error) {
		t.Helper()
		c := columnOf(rows, 0)
		if c.total() == 0 {
			expectNull(t, f, got, err)
			return
		}
		sample := op == "var_samp" || op == "stddev_samp"
		switch {
		case op == "sum" || op == "avg":
			if w := specialWant(c); w != "" {
				expectText(t, f, got, err, w)
				return
			}
		case sample && c.total() < 2:
			expectNull(t, f, got, err)
			return
		case c.specials() > 0:
			expectText(t, f, got, err, "NaN")
			return
		}
		if f.Args[0].Kind == agg.KindFloat {
			checkFloatStats(t, f, op, c, got, err)
		} else {
			checkNumericStats(t, f, op, c, got, err)
		}
	}
}

// sums returns Σx and Σx² exactly, and the largest display scale.
func sums(c column) (sx, sxx *big.Rat, scale int32) {
	sx, sxx = new(big.Rat), new(big.Rat)
	for i := range c.finite {
		r := ratOf(&c.finite[i])
		sx.Add(sx, r)
		sxx.Add(sxx, new(big.Rat).Mul(r, r))
		if c.finite[i].Kind == agg.KindDecimal {
			scale = max(scale, scaleOf(&c.finite[i].Dec))
		}
	}
	return sx, sxx, scale
}

// variance is (NΣx² − (Σx)²) / (N(N−1)) or / N².
func variance(c column, sample bool) *big.Rat {
	sx, sxx, _ := sums(c)
	n := new(big.Rat).SetInt64(int64(len(c.finite)))
	num := new(big.Rat).Mul(n, sxx)
	num.Sub(num, new(big.Rat).Mul(sx, sx))
	den := new(big.Rat).Set(n)
	if sample {
		den.Mul(den, new(big.Rat).SetInt64(int64(len(c.finite)-1)))
	} else {
		den.Mul(den, n)
	}
	return num.Quo(num, den)
}

func checkNumericStats(t testing.TB, f *agg.Func, op string, c column, got agg.Value, err error) {
	t.Helper()
	switch op {
	case "sum":
		var acc apd.Decimal
		scale := int32(0)
		for i := range c.finite {
			var x apd.Decimal
			if v := &c.finite[i]; v.Kind == agg.KindInt {
				x.SetInt64(v.Int)
			} else {
				x.Set(&v.Dec)
				scale = max(scale, scaleOf(&x))
			}
			if _, err := apd.BaseContext.Add(&acc, &acc, &x); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := exact.Quantize(&acc, &acc, -scale); err != nil {
			t.Fatal(err)
		}
		want := strings.TrimPrefix(acc.Text('f'), "-")
		if acc.Sign() < 0 {
			want = "-" + want
		}
		if f.ResultType() == "bigint" {
			if i, ierr := acc.Int64(); ierr != nil || acc.Exponent != 0 {
				if !errors.Is(err, agg.ErrOutOfRange) {
					t.Fatalf("%s = %s (%v), want an ErrOutOfRange for %s", f, got, err, want)
				}
				return
			} else {
				want = strconv.FormatInt(i, 10)
			}
		}
		expectText(t, f, got, err, want)
	case "avg":
		sx, _, scale := sums(c)
		exact := sx.Quo(sx, new(big.Rat).SetInt64(int64(len(c.finite))))
		checkRounded(t, f, got, err, exact, scale)
	case "var_samp", "var_pop":
		v := variance(c, op == "var_samp")
		if v.Sign() == 0 {
			expectText(t, f, got, err, "0")
			return
		}
		checkRounded(t, f, got, err, v, 0)
	default: // stddev: the root of the variance rounded at the result's scale
		v := variance(c, op == "stddev_samp")
		if v.Sign() == 0 {
			expectText(t, f, got, err, "0")
			return
		}
		if err != nil || got.Null || got.Dec.Form != apd.Finite || got.Dec.Negative {
			t.Fatalf("%s = %s (%v), want a positive numeric", f, got, err)
		}
		s := -got.Dec.Exponent
		vr := roundRat(v, s) // the variance at that scale, as PostgreSQL rounds it first
		// c = round(sqrt(vr·10^s)): (2c−1)² ≤ 4·vr·10^s < (2c+1)².
		coef := got.Dec.Coeff.MathBigInt()
		x := new(big.Int).Mul(vr, pow10(s))
		x.Lsh(x, 2)
		lo := new(big.Int).Lsh(coef, 1)
		hi := new(big.Int).Add(lo, big.NewInt(1))
		lo.Sub(lo, big.NewInt(1))
		if lo.Sign() > 0 && lo.Mul(lo, lo).Cmp(x) > 0 || hi.Mul(hi, hi).Cmp(x) <= 0 {
			t.Fatalf("%s = %s, not the rounded root of %s at scale %d", f, got, new(big.Rat).SetFrac(vr, pow10(s)).FloatString(int(s)), s)
		}
	}
}

func pow10(k int32) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(k)), nil) }

// roundRat is round(r·10^s) half away from zero.
func roundRat(r *big.Rat, s int32) *big.Int {
	x := new(big.Rat).Mul(r, new(big.Rat).SetInt(pow10(s)))
	num, den := new(big.Int).Set(x.Num()), x.Denom()
	neg := num.Sign() < 0
	num.Abs(num)
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	if m.Lsh(m, 1).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	return q
}

// checkRounded checks that got is exact rounded half away from zero at
// got's own scale, which is at least minScale. (That the scale is
// PostgreSQL's, the hand-computed cases and the comparisons with
// PostgreSQL check.)
func checkRounded(t testing.TB, f *agg.Func, got agg.Value, err error, exact *big.Rat, minScale int32) {
	t.Helper()
	if err != nil || got.Null || got.Dec.Form != apd.Finite {
		t.Fatalf("%s = %s (%v), want a number near %s", f, got, err, exact.FloatString(20))
	}
	s := -got.Dec.Exponent
	if s < minScale {
		t.Fatalf("%s = %s: scale %d below the inputs' %d", f, got, s, minScale)
	}
	coef := got.Dec.Coeff.MathBigInt()
	if got.Dec.Negative {
		coef.Neg(coef)
	}
	if want := roundRat(exact, s); want.Cmp(coef) != 0 {
		t.Fatalf("%s = %s, want %s rounded at scale %d", f, got, exact.FloatString(int(s)+3), s)
	}
}

func floatOf(r *big.Rat, real bool) float64 {
	if real {
		x, _ := r.Float32()
		return float64(x)
	}
	x, _ := r.Float64()
	return x
}

// sqrtFloat is the square root of r rounded to 300 bits, then to a float64.
func sqrtFloat(r *big.Rat) float64 {
	x := new(big.Float).SetPrec(300).SetRat(r)
	x.Sqrt(x)
	f, _ := x.Float64()
	return f
}

func checkFloatStats(t testing.TB, f *agg.Func, op string, c column, got agg.Value, err error) {
	t.Helper()
	sx, _, _ := sums(c)
	switch op {
	case "sum", "avg":
		if op == "avg" {
			sx.Quo(sx, new(big.Rat).SetInt64(int64(len(c.finite))))
		}
		want := floatOf(sx, f.ResultType() == "real")
		if math.IsInf(want, 0) {
			if !errors.Is(err, agg.ErrOutOfRange) {
				t.Fatalf("%s = %s (%v), want ErrOutOfRange", f, got, err)
			}
			return
		}
		expectFloat(t, f, got, err, want)
	case "var_samp", "var_pop":
		expectFloat(t, f, got, err, floatOf(variance(c, op == "var_samp"), false))
	default:
		expectFloat(t, f, got, err, sqrtFloat(variance(c, op == "stddev_samp")))
	}
}

func checkCorr(t testing.TB, f *agg.Func, rows [][]agg.Value, got agg.Value, err error) {
	t.Helper()
	n, specials := 0, 0
	var sx, sy, sxx, syy, sxy big.Rat
	for _, row := range rows {
		if row[0].Null || row[1].Null {
			continue
		}
		y, x := toFloat(&row[0]), toFloat(&row[1])
		if math.IsNaN(x) || math.IsInf(x, 0) || math.IsNaN(y) || math.IsInf(y, 0) {
			specials++
			continue
		}
		n++
		rx, ry := new(big.Rat).SetFloat64(x), new(big.Rat).SetFloat64(y)
		sx.Add(&sx, rx)
		sy.Add(&sy, ry)
		sxx.Add(&sxx, new(big.Rat).Mul(rx, rx))
		syy.Add(&syy, new(big.Rat).Mul(ry, ry))
		sxy.Add(&sxy, new(big.Rat).Mul(rx, ry))
	}
	switch {
	case n+specials == 0:
		expectNull(t, f, got, err)
		return
	case specials > 0:
		expectText(t, f, got, err, "NaN")
		return
	}
	rn := new(big.Rat).SetInt64(int64(n))
	cen := func(sab, sa, sb *big.Rat) *big.Rat {
		c := new(big.Rat).Mul(rn, sab)
		return c.Sub(c, new(big.Rat).Mul(sa, sb))
	}
	cxx, cyy, cxy := cen(&sxx, &sx, &sx), cen(&syy, &sy, &sy), cen(&sxy, &sx, &sy)
	if cxx.Sign() == 0 || cyy.Sign() == 0 {
		expectNull(t, f, got, err)
		return
	}
	d := new(big.Float).SetPrec(300).SetRat(new(big.Rat).Mul(cxx, cyy))
	d.Sqrt(d)
	r := new(big.Float).SetPrec(300).SetRat(cxy)
	r.Quo(r, d)
	want, _ := r.Float64()
	expectFloat(t, f, got, err, want)
}

// toFloat converts as PostgreSQL's casts to double precision do.
func toFloat(v *agg.Value) float64 {
	switch v.Kind {
	case agg.KindFloat:
		return v.Float
	case agg.KindInt:
		return float64(v.Int)
	}
	x, err := strconv.ParseFloat(v.Dec.Text('E'), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		panic(err)
	}
	return x
}

// canon is v normalized as PostgreSQL holds it: numerics with a display
// scale ≥ 0 and no negative zero, one NaN.
func canon(v agg.Value) agg.Value {
	if v.Kind == agg.KindDecimal {
		var d apd.Decimal
		d.Set(&v.Dec)
		switch d.Form {
		case apd.NaN, apd.NaNSignaling:
			d = apd.Decimal{Form: apd.NaN}
		case apd.Finite:
			if d.Exponent > 0 {
				if _, err := exact.Quantize(&d, &d, 0); err != nil {
					panic(err)
				}
			}
			if d.Coeff.Sign() == 0 {
				d.Negative = false
			}
		}
		return agg.DecimalValue(&d)
	}
	return v
}

// refCompare is PostgreSQL's ordering, written out again: NaN above all
// and equal to itself, -0 = 0, numerics by value, texts bytewise.
func refCompare(a, b agg.Value) int {
	switch a.Kind {
	case agg.KindFloat:
		an, bn := math.IsNaN(a.Float), math.IsNaN(b.Float)
		switch {
		case an && bn:
			return 0
		case an:
			return 1
		case bn:
			return -1
		}
		return big.NewFloat(a.Float).Cmp(big.NewFloat(b.Float))
	case agg.KindDecimal:
		rank := func(d *apd.Decimal) int {
			switch {
			case d.Form == apd.Infinite && d.Negative:
				return 0
			case d.Form == apd.Finite:
				return 1
			case d.Form == apd.Infinite:
				return 2
			}
			return 3
		}
		ra, rb := rank(&a.Dec), rank(&b.Dec)
		if ra != rb || ra != 1 {
			return ra - rb
		}
		return ratOf(&a).Cmp(ratOf(&b))
	case agg.KindText:
		return strings.Compare(a.Str, b.Str)
	}
	switch {
	case a.Int < b.Int:
		return -1
	case a.Int > b.Int:
		return 1
	}
	return 0
}

// refTiebreak: of equal values, the one of greater scale, and 0 over -0.
func refTiebreak(a, b agg.Value) int {
	switch a.Kind {
	case agg.KindDecimal:
		if a.Dec.Form == apd.Finite && b.Dec.Form == apd.Finite {
			return int(scaleOf(&a.Dec)) - int(scaleOf(&b.Dec))
		}
	case agg.KindFloat:
		if math.Signbit(a.Float) != math.Signbit(b.Float) && !math.IsNaN(a.Float) {
			if math.Signbit(a.Float) {
				return -1
			}
			return 1
		}
	}
	return 0
}

func refOrder(a, b agg.Value) int {
	if c := refCompare(a, b); c != 0 {
		return c
	}
	return refTiebreak(a, b)
}

func nonNull(rows [][]agg.Value) []agg.Value {
	var vs []agg.Value
	for _, row := range rows {
		if !row[0].Null {
			vs = append(vs, canon(row[0]))
		}
	}
	return vs
}

func checkMinMax(max bool) check {
	return func(t testing.TB, f *agg.Func, rows [][]agg.Value, got agg.Value, err error) {
		t.Helper()
		vs := nonNull(rows)
		if len(vs) == 0 {
			expectNull(t, f, got, err)
			return
		}
		best := vs[0]
		for _, v := range vs[1:] {
			c := refOrder(v, best)
			if max && c > 0 || !max && c < 0 {
				best = v
			}
		}
		checkSame(t, f, got, err, best)
	}
}

func checkSame(t testing.TB, f *agg.Func, got agg.Value, err error, want agg.Value) {
	t.Helper()
	if want.Kind == agg.KindFloat {
		expectFloat(t, f, got, err, want.Float)
		return
	}
	expectText(t, f, got, err, want.String())
}

func checkTopN(max bool, n int) check {
	return func(t testing.TB, f *agg.Func, rows [][]agg.Value, got agg.Value, err error) {
		t.Helper()
		vs := nonNull(rows)
		if len(vs) == 0 {
			expectNull(t, f, got, err)
			return
		}
		slices.SortStableFunc(vs, func(a, b agg.Value) int {
			if max {
				return refOrder(b, a)
			}
			return refOrder(a, b)
		})
		vs = vs[:min(n, len(vs))]
		if err != nil || got.Kind != agg.KindArray || len(got.Elems) != len(vs) {
			t.Fatalf("%s = %s (%v), want %d values %v", f, got, err, len(vs), vs)
		}
		for i := range vs {
			checkSame(t, f, got.Elems[i], nil, vs[i])
		}
	}
}

// refKey is PostgreSQL's equality, written out again: 1.0 = 1.00, -0 = 0,
// NaN = NaN.
func refKey(v agg.Value) string {
	switch v.Kind {
	case agg.KindDecimal:
		var d apd.Decimal
		d.Reduce(&v.Dec)
		if d.Form == apd.Finite && d.Coeff.Sign() == 0 {
			return "0"
		}
		return d.Text('E')
	case agg.KindFloat:
		if v.Float == 0 {
			return "0"
		}
		return strconv.FormatFloat(v.Float, 'g', -1, 64)
	}
	return v.String()
}

// distinctRows is the rows of distinct values, each represented by the
// greatest of its equals in the total order.
func distinctRows(rows [][]agg.Value) [][]agg.Value {
	rep := map[string]agg.Value{}
	var keys []string
	for _, v := range nonNull(rows) {
		k := refKey(v)
		if old, ok := rep[k]; !ok {
			keys = append(keys, k)
			rep[k] = v
		} else if refTiebreak(v, old) > 0 {
			rep[k] = v
		}
	}
	out := make([][]agg.Value, len(keys))
	for i, k := range keys {
		out[i] = []agg.Value{rep[k]}
	}
	return out
}

// checkDistinct checks an aggregate over DISTINCT values with the check of
// the plain aggregate over the distinct rows.
func checkDistinct(inner check) check {
	return func(t testing.TB, f *agg.Func, rows [][]agg.Value, got agg.Value, err error) {
		t.Helper()
		inner(t, f, distinctRows(rows), got, err)
	}
}

func checkApproxDistinct(t testing.TB, f *agg.Func, rows [][]agg.Value, got agg.Value, err error) {
	t.Helper()
	exact := len(distinctRows(rows))
	if err != nil || got.Null || got.Kind != agg.KindInt {
		t.Fatalf("%s = %s (%v), want about %d", f, got, err, exact)
	}
	if d := math.Abs(float64(got.Int - int64(exact))); d > 1+4*f.RelativeError()*float64(exact) {
		t.Fatalf("%s = %d, the exact count is %d", f, got.Int, exact)
	}
}

// percentileCont is PostgreSQL's percentile_cont(q) over doubles sorted
// with NaN last; it also returns the two values it interpolates and the
// weight of the second.
func percentileCont(xs []float64, q float64) (v, lo, hi, t float64) {
	slices.SortFunc(xs, func(a, b float64) int { // NaN last, as PostgreSQL sorts
		switch {
		case math.IsNaN(a) || math.IsNaN(b):
			return cmpBool(math.IsNaN(a), math.IsNaN(b))
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	})
	r := q * float64(len(xs)-1)
	i, j := math.Floor(r), math.Ceil(r)
	lo, hi = xs[int(i)], xs[int(j)]
	if i == j {
		return lo, lo, hi, 0
	}
	return lo + (hi-lo)*(r-i), lo, hi, r - i
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// checkQuantile checks the stated accuracy: within 1% of each of the two
// values interpolated, so within 1% of percentile_cont when they have one
// sign; values below 2.3e-308 count as 0.
func checkQuantile(q float64) check {
	return func(t testing.TB, f *agg.Func, rows [][]agg.Value, got agg.Value, err error) {
		t.Helper()
		var xs []float64
		for _, row := range rows {
			if !row[0].Null {
				xs = append(xs, toFloat(&row[0]))
			}
		}
		if len(xs) == 0 {
			expectNull(t, f, got, err)
			return
		}
		want, lo, hi, w := percentileCont(xs, q)
		if err != nil || got.Null {
			t.Fatalf("%s = %s (%v), want about %v", f, got, err, want)
		}
		finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
		if !finite(lo) || !finite(hi) {
			if !finite(want) && !(math.IsNaN(want) && math.IsNaN(got.Float)) && got.Float != want {
				t.Fatalf("%s = %v, want %v", f, got.Float, want)
			}
			return
		}
		bound := f.RelativeError()*((1-w)*math.Abs(lo)+w*math.Abs(hi))*(1+1e-9) + 2.3e-308
		if math.Abs(got.Float-want) > bound {
			t.Fatalf("%s = %v, percentile_cont is %v (between %v and %v): off by more than %v", f, got.Float, want, lo, hi, bound)
		}
	}
}
