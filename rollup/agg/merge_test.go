package agg_test

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mrengine/mr/rollup/agg"
)

// aggCase is one aggregate with generators for its arguments and the
// reference that checks its results.
type aggCase struct {
	label    string // what is special about the values, if anything
	name     string
	distinct bool
	types    []string
	params   []agg.Value
	gens     []gen
	check    check
}

func (c aggCase) String() string {
	var b strings.Builder
	b.WriteString(c.name + "(")
	if c.distinct {
		b.WriteString("DISTINCT ")
	}
	b.WriteString(strings.Join(c.types, ","))
	for _, p := range c.params {
		b.WriteString("," + p.String())
	}
	b.WriteString(")")
	if c.label != "" {
		b.WriteString("/" + c.label)
	}
	return b.String()
}

// typeGens is how the cases draw values of each type.
var typeGens = map[string]gen{
	"smallint":         genInt(16),
	"integer":          genInt(32),
	"bigint":           genInt(64),
	"numeric":          genNumericFree(true),
	"numeric(12,2)":    genNumericFixed(12, 2),
	"numeric(9,6)":     genNumericFixed(9, 6),
	"real":             genFloat(true, true),
	"double precision": genFloat(false, true),
	"text":             genText,
	"date":             genDays,
	"timestamptz":      genTimestamp,
	"boolean":          genBool,
	"bytea":            genBytes,
}

var typeKinds = map[string]agg.Kind{
	"smallint": agg.KindInt, "integer": agg.KindInt, "bigint": agg.KindInt,
	"numeric": agg.KindDecimal, "numeric(12,2)": agg.KindDecimal, "numeric(9,6)": agg.KindDecimal,
	"real": agg.KindFloat, "double precision": agg.KindFloat,
	"text": agg.KindText, "date": agg.KindDate, "timestamptz": agg.KindTimestamp,
	"boolean": agg.KindBool, "bytea": agg.KindBytes,
}

// allCases is every function of the package, over the types it takes.
func allCases() []aggCase {
	var cs []aggCase
	label := ""
	oneGen := func(name string, distinct bool, ty string, g gen, chk check, params ...agg.Value) {
		cs = append(cs, aggCase{label: label, name: name, distinct: distinct, types: []string{ty}, params: params,
			gens: []gen{withNulls(g, typeKinds[ty], 0.1)}, check: chk})
	}
	one := func(name string, distinct bool, ty string, chk check, params ...agg.Value) {
		oneGen(name, distinct, ty, typeGens[ty], chk, params...)
	}
	cs = append(cs, aggCase{name: "count", check: checkCount})
	numbers := []string{"smallint", "integer", "bigint", "numeric", "numeric(12,2)", "numeric(9,6)", "real", "double precision"}
	ordered := []string{"smallint", "bigint", "numeric", "numeric(12,2)", "double precision", "real", "text", "date", "timestamptz"}
	all := append(append([]string(nil), numbers...), "text", "date", "timestamptz", "boolean", "bytea")
	for _, ty := range all {
		one("count", false, ty, checkCount)
		one("count", true, ty, checkDistinct(checkCount))
		one("approx_count_distinct", false, ty, checkApproxDistinct)
	}
	for _, ty := range numbers {
		for _, op := range []string{"sum", "avg", "var_samp", "var_pop", "stddev_samp", "stddev_pop"} {
			one(op, false, ty, checkStats(op))
		}
		one("variance", false, ty, checkStats("var_samp"))
		one("stddev", false, ty, checkStats("stddev_samp"))
		one("approx_quantile", false, ty, checkQuantile(0.9), agg.FloatValue(0.9))
		one("median", false, ty, checkQuantile(0.5))
	}
	for _, ty := range []string{"integer", "numeric", "double precision"} {
		one("sum", true, ty, checkDistinct(checkStats("sum")))
		one("avg", true, ty, checkDistinct(checkStats("avg")))
		one("stddev_pop", true, ty, checkDistinct(checkStats("stddev_pop")))
		one("approx_quantile", true, ty, checkDistinct(checkQuantile(0.25)), agg.FloatValue(0.25))
	}
	for _, ty := range ordered {
		one("min", false, ty, checkMinMax(false))
		one("max", false, ty, checkMinMax(true))
		one("max", true, ty, checkMinMax(true))
		one("max_n", false, ty, checkTopN(true, 3), agg.IntValue(3))
		one("min_n", false, ty, checkTopN(false, 1), agg.IntValue(1))
		one("min_n", true, ty, checkDistinct(checkTopN(false, 2)), agg.IntValue(2))
	}
	// Values that are equal but differ (1.5, 1.50; 0, -0), where row
	// order would decide which one min, max, the top-n and DISTINCT keep.
	label = "ties"
	for _, ty := range []string{"numeric", "double precision"} {
		g := genTies(typeKinds[ty])
		oneGen("min", false, ty, g, checkMinMax(false))
		oneGen("max", false, ty, g, checkMinMax(true))
		oneGen("max_n", false, ty, g, checkTopN(true, 2), agg.IntValue(2))
		oneGen("min_n", false, ty, g, checkTopN(false, 5), agg.IntValue(5))
		oneGen("count", true, ty, g, checkDistinct(checkCount))
		oneGen("sum", true, ty, g, checkDistinct(checkStats("sum")))
		oneGen("approx_count_distinct", false, ty, g, checkApproxDistinct)
	}
	label = ""
	for _, tys := range [][2]string{{"double precision", "double precision"}, {"integer", "numeric(9,6)"}, {"real", "bigint"}, {"numeric", "double precision"}} {
		cs = append(cs, aggCase{name: "corr", types: tys[:],
			gens:  []gen{withNulls(typeGens[tys[0]], typeKinds[tys[0]], 0.1), withNulls(typeGens[tys[1]], typeKinds[tys[1]], 0.1)},
			check: checkCorr})
	}
	return cs
}

// rowsFor draws a random number of rows, weighted to the small counts where
// the NULL rules live (0, 1 and 2 rows) and to a few hundred.
func rowsFor(c aggCase, r *rand.Rand) [][]agg.Value {
	n := []int{0, 1, 2, 3, r.IntN(20), r.IntN(400)}[r.IntN(6)]
	rows := make([][]agg.Value, n)
	for i := range rows {
		rows[i] = make([]agg.Value, len(c.gens))
		for j, g := range c.gens {
			rows[i][j] = g(r)
		}
	}
	return rows
}

// TestStates_MergeOrder is the package's central property, for every
// function: random rows folded in one state, and the same rows split into
// random partitions folded, serialized, decoded and merged in random orders
// and tree shapes, give byte-identical encodings and identical Results;
// and the Result is the reference's.
func TestStates_MergeOrder(t *testing.T) {
	t.Parallel()
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	for _, c := range allCases() {
		t.Run(c.String(), func(t *testing.T) {
			t.Parallel()
			f := resolve(t, c.name, c.distinct, c.types, c.params...)
			for seed := range seeds {
				rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
				rows := rowsFor(c, rng)
				s := fold(t, f, rows)
				want := encode(t, s)
				got, err := s.Result()
				res := resultText(got, err)
				if again := encode(t, s); !bytes.Equal(again, want) {
					t.Fatalf("seed %d: Result changed the state", seed)
				}
				c.check(t, f, rows, got, err)
				for try := range 4 {
					m := mergeRandomly(t, f, rows, rng)
					if b := encode(t, m); !bytes.Equal(b, want) {
						t.Fatalf("seed %d, try %d: merged state encodes differently\n got %x\nwant %x", seed, try, b, want)
					}
					if r := resultText(m.Result()); r != res {
						t.Fatalf("seed %d, try %d: merged Result %s, want %s", seed, try, r, res)
					}
				}
			}
		})
	}
}
