package agg_test

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	mrand "math/rand"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cockroachdb/apd/v3"

	"github.com/mrengine/mr/rollup/agg"
)

// resolve resolves an aggregate from a call written as in SQL without
// DISTINCT: name, argument types and constant parameters.
func resolve(t testing.TB, name string, distinct bool, types []string, params ...agg.Value) *agg.Func {
	t.Helper()
	args := make([]agg.ArgType, len(types))
	for i, ty := range types {
		a, err := agg.ParseType(ty)
		if err != nil {
			t.Fatal(err)
		}
		args[i] = a
	}
	f, err := agg.Resolve(name, distinct, args, params)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// fold adds rows to a new state of f.
func fold(t testing.TB, f *agg.Func, rows [][]agg.Value) agg.State {
	t.Helper()
	s := f.New()
	args := make([]*agg.Value, 0, 2)
	for _, row := range rows {
		args = args[:0]
		for i := range row {
			args = append(args, &row[i])
		}
		if err := s.Add(args...); err != nil {
			t.Fatalf("%s: Add(%v): %v", f, row, err)
		}
	}
	return s
}

func encode(t testing.TB, s agg.State) []byte {
	t.Helper()
	b, err := s.AppendBinary(nil)
	if err != nil {
		t.Fatalf("AppendBinary: %v", err)
	}
	return b
}

// roundTrip decodes the encoding of s, which must give the same bytes.
func roundTrip(t testing.TB, f *agg.Func, s agg.State) agg.State {
	t.Helper()
	b := encode(t, s)
	d, err := f.Decode(b)
	if err != nil {
		t.Fatalf("%s: Decode(%x): %v", f, b, err)
	}
	if again := encode(t, d); !bytes.Equal(again, b) {
		t.Fatalf("%s: round trip changed the encoding\n got %x\nwant %x", f, again, b)
	}
	return d
}

// resultText is a Result as a comparable string: its text, with floats as
// their bits, and its error.
func resultText(v agg.Value, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	if v.Null {
		return "NULL"
	}
	s := v.String()
	if v.Kind == agg.KindFloat {
		s += fmt.Sprintf(" (%#x)", math.Float64bits(v.Float))
	}
	return s
}

// mergeRandomly folds rows split into random partitions, in a random
// order, round-trips some states through their encoding, and merges them
// in a random tree, with empty states thrown in; it returns the final
// state. It checks on the way that Merge leaves its argument unchanged.
func mergeRandomly(t testing.TB, f *agg.Func, rows [][]agg.Value, rng *rand.Rand) agg.State {
	t.Helper()
	rows = append([][]agg.Value(nil), rows...)
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	k := 1 + rng.IntN(8)
	cuts := make([]int, 0, k+1)
	cuts = append(cuts, 0)
	for i := 1; i < k; i++ {
		cuts = append(cuts, rng.IntN(len(rows)+1))
	}
	cuts = append(cuts, len(rows))
	sortInts(cuts)
	var pool []agg.State
	for i := 0; i+1 < len(cuts); i++ {
		s := fold(t, f, rows[cuts[i]:cuts[i+1]])
		if rng.IntN(2) == 0 {
			s = roundTrip(t, f, s)
		}
		pool = append(pool, s)
	}
	for range rng.IntN(3) {
		pool = append(pool, f.New())
	}
	for len(pool) > 1 {
		i := rng.IntN(len(pool))
		j := rng.IntN(len(pool) - 1)
		if j >= i {
			j++
		}
		before := encode(t, pool[j])
		if err := pool[i].Merge(pool[j]); err != nil {
			t.Fatalf("%s: Merge: %v", f, err)
		}
		if after := encode(t, pool[j]); !bytes.Equal(before, after) {
			t.Fatalf("%s: Merge changed its argument", f)
		}
		if rng.IntN(3) == 0 {
			pool[i] = roundTrip(t, f, pool[i])
		}
		pool = append(pool[:j], pool[j+1:]...)
	}
	return pool[0]
}

func sortInts(a []int) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// gen makes one random argument value.
type gen func(r *rand.Rand) agg.Value

func withNulls(g gen, kind agg.Kind, p float64) gen {
	return func(r *rand.Rand) agg.Value {
		if r.Float64() < p {
			return agg.Null(kind)
		}
		return g(r)
	}
}

// genInt draws integers of the given bit size: mostly small, some from the
// whole range, some at its ends.
func genInt(bits uint) gen {
	hi := int64(1)<<(bits-1) - 1
	lo := -hi - 1
	return func(r *rand.Rand) agg.Value {
		switch r.IntN(10) {
		case 0:
			return agg.IntValue([]int64{lo, hi, lo + 1, hi - 1, 0, -1}[r.IntN(6)])
		case 1, 2:
			return agg.IntValue(lo + int64(r.Uint64N(uint64(hi-lo))+r.Uint64N(2)))
		}
		return agg.IntValue(r.Int64N(2001) - 1000)
	}
}

// genNumericFixed draws numeric(p, s) values.
func genNumericFixed(p, s int) gen {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(p)), nil)
	return func(r *rand.Rand) agg.Value {
		var c big.Int
		switch r.IntN(4) {
		case 0: // small
			c.SetInt64(r.Int64N(1000))
		default:
			c.Rand(mrand.New(randSource{r}), limit)
		}
		if r.IntN(2) == 0 {
			c.Neg(&c)
		}
		var v agg.Value
		v.SetBigDecimal(&c, int32(-s))
		return v
	}
}

// genNumericFree draws values of an unconstrained numeric: scales 0 to
// 20, positive exponents (1E+3), coefficients beyond 64 and 128 bits,
// negative zero, and sometimes NaN and infinities.
func genNumericFree(specials bool) gen {
	return func(r *rand.Rand) agg.Value {
		if specials && r.IntN(25) == 0 {
			v, _ := agg.ParseDecimal([]string{"NaN", "Infinity", "-Infinity"}[r.IntN(3)])
			return v
		}
		var c big.Int
		switch r.IntN(6) {
		case 0:
			c.Rand(mrand.New(randSource{r}), new(big.Int).Lsh(big.NewInt(1), 150))
		case 1:
			c.SetUint64(r.Uint64())
		default:
			c.SetInt64(r.Int64N(100000))
		}
		if r.IntN(2) == 0 {
			c.Neg(&c)
		}
		exp := int32(-r.IntN(21))
		if r.IntN(8) == 0 {
			exp = int32(r.IntN(25))
		}
		var v agg.Value
		v.SetBigDecimal(&c, exp)
		if c.Sign() == 0 && r.IntN(2) == 0 {
			v.Dec.Negative = true
		}
		return v
	}
}

// genFloat draws doubles (or reals, rounded to float32): mostly uniform in
// [0, 100) or normal, some of every magnitude, subnormals, signed zeros,
// and sometimes NaN and infinities.
func genFloat(real, specials bool) gen {
	return func(r *rand.Rand) agg.Value {
		var x float64
		switch r.IntN(12) {
		case 0:
			if specials {
				x = []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Float64frombits(0xfff8000000000123)}[r.IntN(4)]
			}
		case 1:
			x = math.Ldexp(r.Float64()-0.5, r.IntN(2000)-1000)
		case 2:
			x = []float64{0, math.Copysign(0, -1), 5e-324, -5e-324, math.MaxFloat64 / 4, 1e16, -1e16, 1}[r.IntN(8)]
		case 3, 4, 5:
			x = r.NormFloat64() * 1e3
		default:
			x = r.Float64() * 100
		}
		if real {
			x = float64(float32(x))
		}
		return agg.FloatValue(x)
	}
}

// genTies draws from a few values, each in several spellings that
// compare equal: numerics with trailing zeros, floats with either zero.
func genTies(k agg.Kind) gen {
	return func(r *rand.Rand) agg.Value {
		if k == agg.KindFloat {
			return agg.FloatValue([]float64{0, math.Copysign(0, -1), 1, -1, math.NaN()}[r.IntN(5)])
		}
		var c big.Int
		c.SetInt64([]int64{-15, 0, 15, 2}[r.IntN(4)])
		zeros := r.IntN(4)
		c.Mul(&c, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(zeros)), nil))
		var v agg.Value
		v.SetBigDecimal(&c, int32(-1-zeros))
		return v
	}
}

// genText draws short texts of letters, spaces, an accented letter and
// the characters that array syntax quotes.
func genText(r *rand.Rand) agg.Value {
	pieces := []string{"a", "b", "c", "X", "Y", "Z", " ", "é", ",", `"`, "{", `\`}
	var b strings.Builder
	for range r.IntN(5) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return agg.TextValue(b.String())
}

func genDays(r *rand.Rand) agg.Value {
	return agg.Value{Kind: agg.KindDate, Int: r.Int64N(40000) - 20000}
}

func genTimestamp(r *rand.Rand) agg.Value {
	if r.IntN(30) == 0 {
		return agg.Value{Kind: agg.KindTimestamp, Int: []int64{agg.InfinityInt, agg.NegInfinityInt}[r.IntN(2)]}
	}
	return agg.Value{Kind: agg.KindTimestamp, Int: r.Int64N(1e15) - 5e14}
}

func genBool(r *rand.Rand) agg.Value { return agg.BoolValue(r.IntN(2) == 0) }

func genBytes(r *rand.Rand) agg.Value {
	b := make([]byte, r.IntN(4))
	for i := range b {
		b[i] = byte(r.IntN(4))
	}
	return agg.BytesValue(b)
}

// randSource adapts math/rand/v2 to the math/rand that big.Int.Rand takes.
type randSource struct{ r *rand.Rand }

func (s randSource) Int63() int64 { return s.r.Int64() }
func (s randSource) Seed(int64)   {}

// ratOf is the exact value of a finite number.
func ratOf(v *agg.Value) *big.Rat {
	switch v.Kind {
	case agg.KindInt:
		return new(big.Rat).SetInt64(v.Int)
	case agg.KindFloat:
		return new(big.Rat).SetFloat64(v.Float)
	}
	r, ok := new(big.Rat).SetString(v.Dec.Text('E'))
	if !ok {
		panic("ratOf " + v.Dec.Text('E'))
	}
	return r
}

// scaleOf is a numeric's display scale as PostgreSQL keeps it.
func scaleOf(d *apd.Decimal) int32 { return max(0, -d.Exponent) }
