package agg_test

import (
	"fmt"
	"math"
	"math/big"
	mrand "math/rand"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/rollup/agg"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// pgColumn is a column of the comparison tables: its SQL type and how its
// values are drawn.
type pgColumn struct {
	name, typ string
	gen       gen
}

// pgTable is random rows in groups, to load into PostgreSQL and to fold in
// mr.
type pgTable struct {
	cols   []pgColumn
	groups [][][]agg.Value // group → row → column
}

// groupSizes draws the sizes of groups: the NULL rules live at 0 to 2 rows.
func groupSizes(r *rand.Rand, n int) []int {
	sizes := make([]int, n)
	for i := range sizes {
		sizes[i] = []int{1, 2, 3, 7, 50, 300, 1000}[r.IntN(7)]
	}
	return sizes
}

func newPGTable(r *rand.Rand, cols []pgColumn, sizes []int, nulls float64) *pgTable {
	tb := &pgTable{cols: cols}
	for gi, size := range sizes {
		allNull := gi%11 == 5 // some groups have no non-NULL values
		g := make([][]agg.Value, size)
		for i := range g {
			g[i] = make([]agg.Value, len(cols))
			for j, c := range cols {
				v := c.gen(r)
				if allNull || r.Float64() < nulls {
					v = agg.Null(v.Kind)
				}
				g[i][j] = v
			}
		}
		tb.groups = append(tb.groups, g)
	}
	return tb
}

// pgValue is v as pgx encodes it into a column of type typ.
func pgValue(v agg.Value, typ string) any {
	if v.Null {
		return nil
	}
	switch v.Kind {
	case agg.KindInt:
		return v.Int
	case agg.KindFloat:
		if typ == "real" {
			return float32(v.Float)
		}
		return v.Float
	case agg.KindDecimal:
		switch v.Dec.Form {
		case 0:
			c := v.Dec.Coeff.MathBigInt()
			if v.Dec.Negative {
				c.Neg(c)
			}
			return pgtype.Numeric{Int: c, Exp: v.Dec.Exponent, Valid: true}
		case 1:
			if v.Dec.Negative {
				return pgtype.Numeric{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
			}
			return pgtype.Numeric{InfinityModifier: pgtype.Infinity, Valid: true}
		}
		return pgtype.Numeric{NaN: true, Valid: true}
	case agg.KindText:
		return v.Str
	case agg.KindDate:
		return pgtype.Date{Time: v.Time(), Valid: true}
	case agg.KindTimestamp:
		switch v.Int {
		case agg.InfinityInt:
			return pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
		case agg.NegInfinityInt:
			return pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
		}
		return pgtype.Timestamptz{Time: v.Time(), Valid: true}
	}
	panic("pgValue of kind " + v.Kind.String())
}

// load creates table t in tx and copies the rows in, with g the group.
func (tb *pgTable) load(t *testing.T, tx pgx.Tx) {
	t.Helper()
	ctx := t.Context()
	defs := []string{"g integer"}
	names := []string{"g"}
	for _, c := range tb.cols {
		defs = append(defs, c.name+" "+c.typ)
		names = append(names, c.name)
	}
	if _, err := tx.Exec(ctx, "CREATE TABLE t ("+strings.Join(defs, ", ")+")"); err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	for gi, g := range tb.groups {
		for _, row := range g {
			vals := []any{gi}
			for j, v := range row {
				vals = append(vals, pgValue(v, tb.cols[j].typ))
			}
			rows = append(rows, vals)
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"t"}, names, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
}

// pgAgg is one aggregate of a comparison: its SQL over t, and the mr
// function with the columns it takes.
type pgAgg struct {
	sql      string
	name     string
	distinct bool
	cols     []int
	params   []agg.Value
}

// query runs SELECT g, <aggs> FROM t GROUP BY g and returns the text of
// every aggregate per group ("NULL" for NULL).
func query(t *testing.T, tx pgx.Tx, tb *pgTable, aggs []pgAgg) [][]string {
	t.Helper()
	exprs := make([]string, len(aggs))
	for i, a := range aggs {
		exprs[i] = "(" + a.sql + ")::text"
	}
	rows, err := tx.Query(t.Context(), "SELECT g, "+strings.Join(exprs, ", ")+" FROM t GROUP BY g ORDER BY g")
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]string, len(tb.groups))
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		g := int(vals[0].(int32))
		out[g] = make([]string, len(aggs))
		for i, v := range vals[1:] {
			if v == nil {
				out[g][i] = "NULL"
			} else {
				out[g][i] = v.(string)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// mrResult folds the rows of group g for a, splitting them into a few
// states merged in a random order, as the engine would.
func mrResult(t *testing.T, tb *pgTable, g int, a pgAgg, r *rand.Rand) (*agg.Func, agg.Value, error) {
	t.Helper()
	types := make([]string, len(a.cols))
	for i, c := range a.cols {
		types[i] = tb.cols[c].typ
	}
	f := resolve(t, a.name, a.distinct, types, a.params...)
	rows := make([][]agg.Value, len(tb.groups[g]))
	for i, row := range tb.groups[g] {
		for _, c := range a.cols {
			rows[i] = append(rows[i], row[c])
		}
	}
	res, err := mergeRandomly(t, f, rows, r).Result()
	return f, res, err
}

func colIndex(tb *pgTable, name string) int {
	for i, c := range tb.cols {
		if c.name == name {
			return i
		}
	}
	panic(name)
}

// numericAggs is every exact aggregate over every column of tb: their
// text must equal PostgreSQL's exactly.
func numericAggs(tb *pgTable) []pgAgg {
	var aggs []pgAgg
	for i, c := range tb.cols {
		for _, op := range []string{"count", "sum", "avg", "var_samp", "var_pop", "stddev_samp", "stddev_pop", "variance", "stddev", "min", "max"} {
			aggs = append(aggs, pgAgg{sql: fmt.Sprintf("%s(%s)", op, c.name), name: op, cols: []int{i}})
		}
		aggs = append(aggs, pgAgg{sql: fmt.Sprintf("count(DISTINCT %s)", c.name), name: "count", distinct: true, cols: []int{i}})
		if c.typ != "numeric" {
			// Of equal numerics of different scales PostgreSQL's DISTINCT
			// keeps any; only typed columns have one scale.
			aggs = append(aggs, pgAgg{sql: fmt.Sprintf("sum(DISTINCT %s)", c.name), name: "sum", distinct: true, cols: []int{i}})
			aggs = append(aggs, pgAgg{sql: fmt.Sprintf("avg(DISTINCT %s)", c.name), name: "avg", distinct: true, cols: []int{i}})
		}
	}
	aggs = append(aggs, pgAgg{sql: "count(*)", name: "count"})
	return aggs
}

// compareExact compares every aggregate of every group with PostgreSQL's
// text, and logs how many it compared.
func compareExact(t *testing.T, tx pgx.Tx, tb *pgTable, aggs []pgAgg, r *rand.Rand) {
	t.Helper()
	want := query(t, tx, tb, aggs)
	n := 0
	for g := range tb.groups {
		for i, a := range aggs {
			f, got, err := mrResult(t, tb, g, a, r)
			if err != nil {
				t.Fatalf("group %d: %s: %v (PostgreSQL: %s)", g, f, err, want[g][i])
			}
			if s := got.String(); s != want[g][i] {
				t.Errorf("group %d (%d rows): %s = %s, PostgreSQL says %s", g, len(tb.groups[g]), a.sql, s, want[g][i])
			}
			n++
		}
	}
	t.Logf("%d aggregates over %d groups equal PostgreSQL's", n, len(tb.groups))
}

// TestNumeric_PostgreSQL compares mr's exact aggregates with a real
// PostgreSQL's text output, digit for digit, over random tables of
// numeric(12,2), numeric(9,6), unconstrained numeric, integer, bigint and
// smallint columns: typical values, tiny ones (where select_div_scale
// picks large scales), huge ones (sums beyond bigint, squares beyond 128
// bits), constant groups (variance 0) and NaN and infinities.
func TestNumeric_PostgreSQL(t *testing.T) {
	t.Parallel()
	small := func(max int64, scale int32) gen {
		return func(r *rand.Rand) agg.Value {
			var v agg.Value
			v.SetBigDecimal(big.NewInt(r.Int64N(2*max+1)-max), -scale)
			return v
		}
	}
	constant := func(g gen) gen {
		var v *agg.Value
		return func(r *rand.Rand) agg.Value {
			if v == nil || r.IntN(500) == 0 {
				x := g(r)
				v = &x
			}
			return *v
		}
	}
	huge := func(r *rand.Rand) agg.Value {
		var c big.Int
		c.Rand(mrand.New(randSource{r}), new(big.Int).Exp(big.NewInt(10), big.NewInt(40), nil))
		if r.IntN(2) == 0 {
			c.Neg(&c)
		}
		var v agg.Value
		v.SetBigDecimal(&c, int32(-r.IntN(30)))
		return v
	}
	profiles := []struct {
		name string
		cols []pgColumn
	}{
		{"typical", []pgColumn{
			{"a", "numeric(12,2)", genNumericFixed(12, 2)},
			{"b", "numeric(9,6)", genNumericFixed(9, 6)},
			{"c", "integer", genInt(32)},
			{"d", "bigint", genInt(64)},
			{"e", "smallint", genInt(16)},
			{"n", "numeric", genNumericFree(false)},
		}},
		{"tiny", []pgColumn{
			{"a", "numeric(12,2)", small(3, 2)},
			{"b", "numeric(9,6)", small(20, 6)},
			{"c", "integer", func(r *rand.Rand) agg.Value { return agg.IntValue(r.Int64N(5) - 2) }},
			{"n", "numeric", small(9, 18)},
		}},
		{"huge", []pgColumn{
			{"d", "bigint", func(r *rand.Rand) agg.Value { return agg.IntValue(math.MaxInt64 - r.Int64N(1000)) }},
			{"c", "integer", func(r *rand.Rand) agg.Value { return agg.IntValue(math.MinInt32 + r.Int64N(1000)) }},
			{"n", "numeric", huge},
		}},
		{"constant", []pgColumn{
			{"a", "numeric(12,2)", constant(genNumericFixed(12, 2))},
			{"c", "integer", constant(genInt(32))},
			{"n", "numeric", constant(genNumericFree(false))},
		}},
		{"specials", []pgColumn{
			{"n", "numeric", genNumericFree(true)},
			{"m", "numeric", func(r *rand.Rand) agg.Value {
				v, _ := agg.ParseDecimal([]string{"NaN", "Infinity", "-Infinity", "1.5", "2.25", "-3"}[r.IntN(6)])
				return v
			}},
		}},
	}
	for pi, p := range profiles {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(uint64(pi), 15))
			tb := newPGTable(r, p.cols, groupSizes(r, 25), 0.05)
			tx := pgtest.Tx(t)
			tb.load(t, tx)
			compareExact(t, tx, tb, numericAggs(tb), r)
		})
	}
}

// TestOrdered_PostgreSQL compares min, max, max_n, min_n and the counts
// over text (COLLATE "C"), dates and timestamps with PostgreSQL.
func TestOrdered_PostgreSQL(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 7))
	tb := newPGTable(r, []pgColumn{
		{"s", "text", genText},
		{"d", "date", genDays},
		{"ts", "timestamp with time zone", genTimestamp},
		{"a", "numeric(12,2)", genNumericFixed(4, 2)},
		{"i", "integer", genInt(8)},
	}, groupSizes(r, 25), 0.1)
	tx := pgtest.Tx(t)
	tb.load(t, tx)
	if _, err := tx.Exec(t.Context(), "SET LOCAL TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	s, d, ts, a, i := colIndex(tb, "s"), colIndex(tb, "d"), colIndex(tb, "ts"), colIndex(tb, "a"), colIndex(tb, "i")
	// Dates and timestamps as numbers, which need no time zone or format
	// to compare.
	days := "(%s(d) - date '1970-01-01')"
	micros := "CASE WHEN isfinite(%[1]s(ts)) THEN (extract(epoch FROM %[1]s(ts)) * 1000000)::bigint::text ELSE %[1]s(ts)::text END"
	aggs := []pgAgg{
		{sql: `min(s COLLATE "C")`, name: "min", cols: []int{s}},
		{sql: `max(s COLLATE "C")`, name: "max", cols: []int{s}},
		{sql: `count(DISTINCT s)`, name: "count", distinct: true, cols: []int{s}},
		{sql: `(array_agg(s COLLATE "C" ORDER BY s COLLATE "C" DESC) FILTER (WHERE s IS NOT NULL))[1:3]`, name: "max_n", cols: []int{s}, params: []agg.Value{agg.IntValue(3)}},
		{sql: `(array_agg(a ORDER BY a) FILTER (WHERE a IS NOT NULL))[1:4]`, name: "min_n", cols: []int{a}, params: []agg.Value{agg.IntValue(4)}},
		{sql: `(array_agg(i ORDER BY i DESC) FILTER (WHERE i IS NOT NULL))[1:2]`, name: "max_n", cols: []int{i}, params: []agg.Value{agg.IntValue(2)}},
		{sql: fmt.Sprintf(days, "min"), name: "min", cols: []int{d}},
		{sql: fmt.Sprintf(days, "max"), name: "max", cols: []int{d}},
		{sql: `count(DISTINCT d)`, name: "count", distinct: true, cols: []int{d}},
		{sql: fmt.Sprintf(micros, "min"), name: "min", cols: []int{ts}},
		{sql: fmt.Sprintf(micros, "max"), name: "max", cols: []int{ts}},
		{sql: `count(ts)`, name: "count", cols: []int{ts}},
	}
	want := query(t, tx, tb, aggs)
	for g := range tb.groups {
		for k, ag := range aggs {
			_, got, err := mrResult(t, tb, g, ag, r)
			if err != nil {
				t.Fatal(err)
			}
			text := got.String()
			switch {
			case got.Null:
			case got.Kind == agg.KindDate:
				text = fmt.Sprint(got.Int)
			case got.Kind == agg.KindTimestamp:
				if got.Int != agg.InfinityInt && got.Int != agg.NegInfinityInt {
					text = fmt.Sprint(got.Int)
				}
			}
			if text != want[g][k] {
				t.Errorf("group %d: %s = %s, PostgreSQL says %s", g, ag.sql, text, want[g][k])
			}
		}
	}
}

// TestFloat_PostgreSQL compares the float aggregates with PostgreSQL's
// within a tight relative tolerance: PostgreSQL rounds at every row and
// mr once, so they may differ in the last bits (sum(real) more, as
// PostgreSQL adds in single precision). NaN and infinities must match
// exactly, as must NULLs.
func TestFloat_PostgreSQL(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(9, 9))
	uniform := func(r *rand.Rand) agg.Value { return agg.FloatValue(r.Float64() * 100) }
	withSpecials := func(r *rand.Rand) agg.Value {
		if r.IntN(200) == 0 {
			return agg.FloatValue([]float64{math.NaN(), math.Inf(1), math.Inf(-1)}[r.IntN(3)])
		}
		return agg.FloatValue(r.NormFloat64()*10 + 3)
	}
	tb := newPGTable(r, []pgColumn{
		{"f", "double precision", uniform},
		{"h", "double precision", withSpecials},
		{"q", "real", func(r *rand.Rand) agg.Value { return agg.FloatValue(float64(float32(r.Float64() * 100))) }},
		{"b", "numeric(9,6)", genNumericFixed(8, 6)},
		{"c", "integer", genInt(16)},
	}, groupSizes(r, 30), 0.05)
	tx := pgtest.Tx(t)
	tb.load(t, tx)
	f, h, q, b, c := colIndex(tb, "f"), colIndex(tb, "h"), colIndex(tb, "q"), colIndex(tb, "b"), colIndex(tb, "c")
	type tolAgg struct {
		pgAgg
		tol float64
	}
	var aggs []tolAgg
	for _, col := range []int{f, h, q} {
		for _, op := range []string{"sum", "avg", "var_samp", "var_pop", "stddev_samp", "stddev_pop", "min", "max"} {
			tol := 1e-11
			if op == "sum" && col == q {
				tol = 1e-4 // float4pl rounds every partial sum to 24 bits
			}
			aggs = append(aggs, tolAgg{pgAgg{sql: fmt.Sprintf("%s(%s)", op, tb.cols[col].name), name: op, cols: []int{col}}, tol})
		}
	}
	for _, pair := range [][2]int{{f, h}, {h, f}, {c, b}, {f, q}} {
		aggs = append(aggs, tolAgg{pgAgg{sql: fmt.Sprintf("corr(%s, %s)", tb.cols[pair[0]].name, tb.cols[pair[1]].name), name: "corr", cols: pair[:]}, 1e-10})
	}
	plain := make([]pgAgg, len(aggs))
	for i := range aggs {
		plain[i] = aggs[i].pgAgg
	}
	want := query(t, tx, tb, plain)
	worst := 0.0
	for g := range tb.groups {
		for k, a := range aggs {
			fn, got, err := mrResult(t, tb, g, a.pgAgg, r)
			if err != nil {
				t.Fatal(err)
			}
			w := want[g][k]
			if got.Null || w == "NULL" {
				if !got.Null || w != "NULL" {
					t.Errorf("group %d: %s = %s, PostgreSQL says %s", g, a.sql, got, w)
				}
				continue
			}
			bits := 64
			if fn.ResultType() == "real" {
				bits = 32
			}
			pg, err := strconv.ParseFloat(w, bits)
			if err != nil {
				t.Fatalf("%s: PostgreSQL's %q: %v", a.sql, w, err)
			}
			x := got.Float
			if math.IsNaN(pg) || math.IsInf(pg, 0) || math.IsNaN(x) || math.IsInf(x, 0) {
				if fmt.Sprint(x) != fmt.Sprint(pg) {
					t.Errorf("group %d: %s = %v, PostgreSQL says %v", g, a.sql, x, pg)
				}
				continue
			}
			rel := math.Abs(x-pg) / math.Max(math.Abs(pg), 1e-300)
			if x != pg && rel > a.tol {
				t.Errorf("group %d (%d rows): %s = %v, PostgreSQL says %v (relative difference %.3g > %g)", g, len(tb.groups[g]), fn, x, pg, rel, a.tol)
			}
			if a.tol < 1e-6 {
				worst = math.Max(worst, rel)
			}
		}
	}
	t.Logf("largest relative difference from PostgreSQL (double precision): %.3g", worst)
}

// TestSketches_PostgreSQL checks the sketches against PostgreSQL's exact
// counterparts: approx_count_distinct against count(DISTINCT x) within
// four standard errors, approx_quantile and median against
// percentile_cont within the stated 1%.
func TestSketches_PostgreSQL(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(11, 11))
	sizes := groupSizes(r, 20)
	sizes = append(sizes, 20000, 60000) // dense HyperLogLogs
	tb := newPGTable(r, []pgColumn{
		{"f", "double precision", func(r *rand.Rand) agg.Value { return agg.FloatValue(math.Exp(r.NormFloat64() * 3)) }},
		{"a", "numeric(12,2)", genNumericFixed(7, 2)},
		{"i", "bigint", func(r *rand.Rand) agg.Value { return agg.IntValue(r.Int64N(1 << 40)) }},
	}, sizes, 0.05)
	tx := pgtest.Tx(t)
	tb.load(t, tx)
	f, a, i := colIndex(tb, "f"), colIndex(tb, "a"), colIndex(tb, "i")
	aggs := []pgAgg{
		{sql: "percentile_cont(0.99) WITHIN GROUP (ORDER BY f)", name: "approx_quantile", cols: []int{f}, params: []agg.Value{agg.FloatValue(0.99)}},
		{sql: "percentile_cont(0.5) WITHIN GROUP (ORDER BY f)", name: "median", cols: []int{f}},
		{sql: "percentile_cont(0.1) WITHIN GROUP (ORDER BY a)", name: "approx_quantile", cols: []int{a}, params: []agg.Value{agg.FloatValue(0.1)}},
		{sql: "percentile_cont(0.5) WITHIN GROUP (ORDER BY i)", name: "median", cols: []int{i}},
		{sql: "count(DISTINCT i)", name: "approx_count_distinct", cols: []int{i}},
		{sql: "count(DISTINCT a)", name: "approx_count_distinct", cols: []int{a}},
	}
	want := query(t, tx, tb, aggs)
	for g := range tb.groups {
		for k, ag := range aggs {
			fn, got, err := mrResult(t, tb, g, ag, r)
			if err != nil {
				t.Fatal(err)
			}
			w := want[g][k]
			if got.Null || w == "NULL" {
				if got.String() != w {
					t.Errorf("group %d: %s = %s, PostgreSQL says %s", g, fn, got, w)
				}
				continue
			}
			var pg float64
			if _, err := fmt.Sscan(w, &pg); err != nil {
				t.Fatal(err)
			}
			x := got.Float
			bound := fn.RelativeError() * math.Abs(pg)
			if got.Kind == agg.KindInt {
				x = float64(got.Int)
				bound = 1 + 4*fn.RelativeError()*pg
			}
			if math.Abs(x-pg) > bound*(1+1e-9) {
				t.Errorf("group %d (%d rows): %s = %v, PostgreSQL's exact answer is %v: off by more than %v", g, len(tb.groups[g]), fn, x, pg, bound)
			}
		}
	}
}

// TestResultTypes_PostgreSQL asks PostgreSQL for the type of each
// aggregate mr shares with it: ResultType must be that type.
func TestResultTypes_PostgreSQL(t *testing.T) {
	t.Parallel()
	tx := pgtest.Tx(t)
	types := []string{"smallint", "integer", "bigint", "numeric(12,2)", "real", "double precision", "text", "character varying(20)", "character(3)", "date", "timestamp without time zone", "timestamp with time zone", "boolean", "bytea"}
	ops := []string{"count", "sum", "avg", "var_samp", "var_pop", "variance", "stddev_samp", "stddev_pop", "stddev", "min", "max"}
	checked := 0
	for _, ty := range types {
		for _, op := range ops {
			at := agg.MustParseType(ty)
			f, mrErr := agg.Resolve(op, false, []agg.ArgType{at}, nil)
			var pgType string
			if _, err := tx.Exec(t.Context(), "SAVEPOINT s"); err != nil {
				t.Fatal(err)
			}
			err := tx.QueryRow(t.Context(), fmt.Sprintf("SELECT pg_typeof(%s(NULL::%s))::text", op, ty)).Scan(&pgType)
			if _, rerr := tx.Exec(t.Context(), "ROLLBACK TO SAVEPOINT s"); rerr != nil {
				t.Fatal(rerr)
			}
			switch {
			case err != nil && mrErr != nil:
				// Neither has it: min(boolean), sum(text), …
			case err != nil:
				t.Errorf("%s(%s): mr resolves it (%s), PostgreSQL does not: %v", op, ty, f.ResultType(), err)
			case mrErr != nil:
				t.Errorf("%s(%s): PostgreSQL gives %s, mr: %v", op, ty, pgType, mrErr)
			case f.ResultType() != pgType:
				t.Errorf("%s(%s): ResultType %s, PostgreSQL's %s", op, ty, f.ResultType(), pgType)
			default:
				checked++
			}
		}
	}
	var pgType string
	if err := tx.QueryRow(t.Context(), "SELECT pg_typeof(corr(1::float8, 2::float8))::text").Scan(&pgType); err != nil {
		t.Fatal(err)
	}
	if f := resolve(t, "corr", false, []string{"integer", "numeric"}); f.ResultType() != pgType {
		t.Errorf("corr: ResultType %s, PostgreSQL's %s", f.ResultType(), pgType)
	}
	t.Logf("%d result types equal PostgreSQL's", checked)
}
