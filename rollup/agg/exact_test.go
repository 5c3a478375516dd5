package agg_test

import (
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"

	"github.com/mrengine/mr/rollup/agg"
)

// values parses inputs of a type: integers, numerics ("NaN" too), floats.
func values(t testing.TB, typ string, in []string) [][]agg.Value {
	t.Helper()
	rows := make([][]agg.Value, len(in))
	for i, s := range in {
		var v agg.Value
		switch k := agg.MustParseType(typ).Kind; {
		case s == "NULL":
			v = agg.Null(k)
		case k == agg.KindInt:
			x, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			v = agg.IntValue(x)
		case k == agg.KindFloat:
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatal(err)
			}
			v = agg.FloatValue(x)
		default:
			var err error
			if v, err = agg.ParseDecimal(s); err != nil {
				t.Fatal(err)
			}
		}
		rows[i] = []agg.Value{v}
	}
	return rows
}

// TestNumeric_PostgreSQLRules checks results computed by hand from
// numeric.c's rules (and confirmed on PostgreSQL 15). select_div_scale:
// weight and first digit of each operand in base 10000; qweight = w1 − w2,
// minus 1 if the first digits are d1 ≤ d2; rscale = max(16 − 4·qweight,
// both display scales, 0), at most 1000; round half away from zero.
func TestNumeric_PostgreSQLRules(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		fn, typ string
		in      []string
		want    string
		why     string
	}{
		{"avg", "integer", []string{"1", "2"}, "1.5000000000000000", "3/2: d1 = 3 > d2 = 2, qweight 0, rscale 16"},
		{"avg", "integer", []string{"1", "1", "1"}, "1.00000000000000000000", "3/3: d1 = d2, qweight −1, rscale 20"},
		{"avg", "integer", []string{"1", "2", "4"}, "2.3333333333333333", "7/3: rscale 16"},
		{"avg", "integer", []string{"100000"}, "100000.000000000000", "100000 = 10·10000¹: weight 1, d1 = 10 > 1, qweight 1, rscale 12"},
		{"avg", "numeric", []string{"1e20"}, "100000000000000000000", "10²⁰ = 1·10000⁵: d1 = d2 = 1, qweight 4, rscale 0"},
		{"avg", "numeric", []string{"0.000001"}, "0.000001000000000000000000", "10⁻⁶ = 100·10000⁻²: weight −2, qweight −2, rscale 24"},
		{"avg", "numeric", []string{"0.00", "0.00"}, "0.00000000000000000000", "zero: weight 0, digit 0 ≤ 2, qweight −1, rscale 20"},
		{"avg", "numeric", []string{"-0.5", "0.5"}, "0.00000000000000000000", "a zero sum of scale 1: rscale 20"},
		{"avg", "numeric", []string{"1.123456789012345678901", "1"}, "1.061728394506172839451", "rscale 16 < the sum's scale 21: 21; …4505 rounds up"},
		{"avg", "numeric", []string{"-1", "-2"}, "-1.5000000000000000", "negative"},
		{"avg", "numeric", []string{"-0.00000000000000000005", "0"}, "-0.000000000000000000025000000000000000", "5·10⁻²⁰ = 5·10000⁻⁵: d1 = 5 > 2, qweight −5, rscale 36"},
		{"avg", "numeric", []string{"-0.0000000000000000000000000000000000005", "0", "0", "0"}, "-0.00000000000000000000000000000000000012500000000000000000", "5·10⁻³⁷ = 5000·10000⁻¹⁰: d1 = 5000 > 4, qweight −10, rscale 56"},
		{"variance", "integer", []string{"1", "2", "3", "4"}, "1.6666666666666667", "(4·30 − 10²)/(4·3) = 20/12, rscale 16"},
		{"stddev", "integer", []string{"1", "2", "3", "4"}, "1.2909944487358056", "√1.6666666666666667 at 16"},
		{"var_pop", "integer", []string{"1", "2", "3", "4"}, "1.2500000000000000", "20/16: d1 = 20 > 16, rscale 16"},
		{"stddev_pop", "integer", []string{"1", "2", "3", "4"}, "1.1180339887498948", "√1.25 at 16"},
		{"var_pop", "integer", []string{"1", "2"}, "0.25000000000000000000", "1/4: d1 = 1 ≤ 4, rscale 20"},
		{"stddev_pop", "integer", []string{"1", "2"}, "0.50000000000000000000", "√0.25 at 20"},
		{"stddev", "numeric", []string{"-0.5", "0.5"}, "0.70710678118654752440", "(2·0.50 − 0)/2 = 0.50 at scale 2: 0.5, rscale 20"},
		{"stddev", "integer", []string{"1", "2", "4"}, "1.5275252316519467", "14/6 at 16, then its root"},
		{"variance", "numeric", []string{"1.5", "1.5"}, "0", "a zero numerator gives 0 of scale 0, not 0.0"},
		{"var_pop", "numeric", []string{"5.5"}, "0", "one row: N·Σx² − (Σx)² = 0"},
		{"variance", "numeric", []string{"5.5"}, "NULL", "the sample variance of one row"},
		{"variance", "numeric", []string{"NaN"}, "NULL", "one row, even a NaN: NULL"},
		{"var_pop", "numeric", []string{"NaN"}, "NaN", "NaN"},
		{"variance", "numeric", []string{"Infinity", "1"}, "NaN", "infinities make variances NaN"},
		{"avg", "numeric", []string{"Infinity", "1"}, "Infinity", ""},
		{"avg", "numeric", []string{"Infinity", "-Infinity"}, "NaN", ""},
		{"sum", "numeric", []string{"-Infinity", "1", "NULL"}, "-Infinity", ""},
		{"sum", "numeric", []string{"NaN", "Infinity"}, "NaN", ""},
		{"sum", "numeric", []string{"1.10", "2.2"}, "3.30", "the largest display scale"},
		{"sum", "numeric", []string{"1e3", "2.1"}, "1002.1", "1E+3 has display scale 0"},
		{"sum", "numeric", []string{"1.5", "-1.50"}, "0.00", "zero keeps its scale"},
		{"sum", "bigint", []string{"9223372036854775807", "9223372036854775807"}, "18446744073709551614", "sum(bigint) is numeric"},
		{"sum", "smallint", []string{"32767", "32767"}, "65534", "sum(smallint) is bigint"},
		{"sum", "integer", []string{"NULL", "NULL"}, "NULL", "no non-NULL rows"},
		{"avg", "numeric", []string{}, "NULL", "no rows"},
		{"count", "numeric", []string{"NULL", "1", "NaN"}, "2", ""},
		{"max", "numeric", []string{"1.5", "1.50", "1.500", "-2"}, "1.500", "ties: the greatest scale"},
		{"min", "numeric", []string{"1.50", "1.5", "3"}, "1.5", "ties: the smallest scale"},
		{"max", "numeric", []string{"Infinity", "NaN", "1"}, "NaN", "NaN sorts above everything"},
		{"min", "numeric", []string{"Infinity", "NaN", "-Infinity"}, "-Infinity", ""},
		{"max", "numeric", []string{"1e3"}, "1000", "normalized to display scale 0"},
		{"max", "numeric", []string{"-0.00"}, "0.00", "no negative zero"},
		{"avg", "numeric", []string{"1." + strings.Repeat("3", 1199) + "5"}, "1." + strings.Repeat("3", 1000), "rscale is at most NUMERIC_MAX_DISPLAY_SCALE = 1000, below the input's 1200"},
		{"sum", "numeric", []string{"1." + strings.Repeat("3", 1199) + "5"}, "1." + strings.Repeat("3", 1199) + "5", "sums keep every digit"},
	} {
		name := c.want
		if len(name) > 40 {
			name = name[:40] + "…"
		}
		t.Run(c.fn+"/"+name, func(t *testing.T) {
			t.Parallel()
			f := resolve(t, c.fn, false, []string{c.typ})
			rows := values(t, c.typ, c.in)
			got, err := fold(t, f, rows).Result()
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != c.want {
				t.Fatalf("%s over %v = %s, want %s (%s)", f, c.in, got, c.want, c.why)
			}
		})
	}
}

// TestFloat_Exact checks that float sums are exact until one rounding,
// where PostgreSQL's running sums round at each row; the comments give
// PostgreSQL 15's answers.
func TestFloat_Exact(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		fn, typ string
		in      []string
		want    float64
	}{
		{"sum", "double precision", []string{"1e16", "1", "-1e16"}, 1},                          // PostgreSQL: 0
		{"sum", "double precision", []string{"1e308", "1e308", "-1e308"}, 1e308},                // PostgreSQL: overflow error
		{"sum", "double precision", []string{"0.1", "0.2", "0.3"}, 0.6},                         // PostgreSQL: 0.6000000000000001
		{"sum", "real", []string{"16777216", "1", "1"}, 16777218},                               // PostgreSQL: 1.6777216e+07
		{"sum", "double precision", []string{"5e-324", "5e-324", "-5e-324"}, 5e-324},            // subnormals are exact too
		{"sum", "double precision", []string{"1e-300", "1e300", "-1e300"}, 1e-300},              // 2000 bits apart
		{"avg", "double precision", []string{"1e308", "1e308"}, 1e308},                          // PostgreSQL: overflow error
		{"var_pop", "double precision", []string{"1e9", "1e9", "1e9"}, 0},                       //
		{"stddev_pop", "double precision", []string{"1e308", "-1e308"}, 1e308},                  // PostgreSQL: overflow error
		{"stddev_samp", "double precision", []string{"0.1", "0.2", "0.3"}, 0.09999999999999999}, // PostgreSQL: 0.09999999999999996
	} {
		f := resolve(t, c.fn, false, []string{c.typ})
		got, err := fold(t, f, values(t, c.typ, c.in)).Result()
		expectFloat(t, f, got, err, c.want)
	}
	ten := make([]string, 10)
	for i := range ten {
		ten[i] = "0.1"
	}
	f := resolve(t, "sum", false, []string{"double precision"})
	got, err := fold(t, f, values(t, "double precision", ten)).Result()
	expectFloat(t, f, got, err, 1) // PostgreSQL: 0.9999999999999999

	_, err = fold(t, f, values(t, "double precision", []string{"1e308", "1e308"})).Result()
	if !errors.Is(err, agg.ErrOutOfRange) {
		t.Fatalf("sum beyond the range of double precision: %v, want ErrOutOfRange", err)
	}
	corr := resolve(t, "corr", false, []string{"double precision", "double precision"})
	for _, c := range []struct {
		y, x []float64
		want float64 // NaN for NULL
	}{
		{[]float64{3, 5, 7}, []float64{1, 2, 3}, 1},
		{[]float64{-1, -2, -3}, []float64{1, 2, 3}, -1},
		{[]float64{1, 1, 1}, []float64{1, 2, 3}, math.NaN()}, // a horizontal line
		{[]float64{1}, []float64{1}, math.NaN()},
	} {
		s := corr.New()
		for i := range c.x {
			y, x := agg.FloatValue(c.y[i]), agg.FloatValue(c.x[i])
			if err := s.Add(&y, &x); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Result()
		if math.IsNaN(c.want) {
			expectNull(t, corr, got, err)
		} else {
			expectFloat(t, corr, got, err, c.want)
		}
	}
}

// TestSum_Overflow checks that integer sums never wrap: a sum of integers
// beyond bigint is an error for its group, sums of bigints are exact near
// 2^127, and their squares beyond 128 bits (a sum of bigints cannot pass
// 2^127: that takes 2^64 rows).
func TestSum_Overflow(t *testing.T) {
	t.Parallel()
	double := func(s agg.State, times int) {
		for range times {
			if err := s.Merge(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	// 2^40 rows of 2^31−1: beyond bigint.
	f := resolve(t, "sum", false, []string{"integer"})
	s := fold(t, f, [][]agg.Value{{agg.IntValue(math.MaxInt32)}})
	double(s, 40)
	if _, err := s.Result(); !errors.Is(err, agg.ErrOutOfRange) {
		t.Fatalf("sum(integer) beyond bigint: %v, want ErrOutOfRange", err)
	}
	// 3·2^61 rows of 2^63−1 (or −2^63), −1 and 1.
	for _, x := range []int64{math.MaxInt64, math.MinInt64} {
		want := new(big.Int).Lsh(big.NewInt(x), 61)
		for _, fn := range []string{"sum", "avg", "var_pop"} {
			f := resolve(t, fn, false, []string{"bigint"})
			s := fold(t, f, [][]agg.Value{{agg.IntValue(x)}, {agg.IntValue(-1)}, {agg.IntValue(1)}})
			double(s, 61)
			s = roundTrip(t, f, s)
			got, err := s.Result()
			if err != nil {
				t.Fatal(err)
			}
			n := new(big.Int).Lsh(big.NewInt(3), 61)
			switch fn {
			case "sum":
				expectText(t, f, got, nil, want.String())
			case "avg":
				checkRounded(t, f, got, nil, new(big.Rat).SetFrac(want, n), 0)
			case "var_pop": // that of {x, −1, 1}, whatever the multiplicity
				c := column{finite: []agg.Value{agg.IntValue(x), agg.IntValue(-1), agg.IntValue(1)}}
				checkRounded(t, f, got, nil, variance(c, false), 0)
			}
		}
	}
}
