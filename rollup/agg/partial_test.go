package agg_test

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/rollup/agg"
)

// TestPartials_PostgreSQL computes each pushable aggregate's Partials in a
// real PostgreSQL, per group, and checks that FromPartials gives the state
// that Adding the group's rows gives, byte for byte: a rollup pushed down
// to the source writes what one that reads every row writes.
func TestPartials_PostgreSQL(t *testing.T) {
	t.Parallel()
	cols := []pgColumn{
		{"a", "numeric(12,2)", genNumericFixed(12, 2)},
		{"c", "integer", genInt(32)},
		{"d", "bigint", func(r *rand.Rand) agg.Value { return agg.IntValue(math.MaxInt64 - r.Int64N(1000)) }},
		{"n", "numeric", genNumericFree(true)},
	}
	r := rand.New(rand.NewPCG(3, 8))
	tb := newPGTable(r, cols, groupSizes(r, 30), 0.05)
	tx := pgtest.Tx(t)
	tb.load(t, tx)
	n := 0
	for ci, c := range tb.cols {
		for _, name := range []string{"count", "sum", "avg", "var_samp", "stddev_pop", "min", "max"} {
			f := resolve(t, name, false, []string{c.typ})
			sqls := f.PartialSQL(c.name)
			if len(sqls) == 0 {
				t.Fatalf("%s has no partials", f)
			}
			got := partials(t, tx, tb, sqls, c.typ)
			for g, rows := range tb.groups {
				var args [][]agg.Value
				for _, row := range rows {
					args = append(args, []agg.Value{row[ci]})
				}
				want := encode(t, fold(t, f, args))
				s, err := f.FromPartials(got[g])
				if err != nil {
					t.Fatalf("group %d: %s: %v", g, f, err)
				}
				if enc := encode(t, s); string(enc) != string(want) {
					t.Errorf("group %d: %s from partials %v encodes %x, from its rows %x", g, f, got[g], enc, want)
				}
				n++
			}
		}
	}
	f := resolve(t, "count", false, nil)
	got := partials(t, tx, tb, f.PartialSQL(""), "")
	for g, rows := range tb.groups {
		if s, err := f.FromPartials(got[g]); err != nil || resultText(s.Result()) != strconv.Itoa(len(rows)) {
			t.Errorf("group %d: count(*) from partials %v = %v, %v; want %d", g, got[g], s, err, len(rows))
		}
	}
	for _, name := range []string{"approx_count_distinct", "max_n"} {
		params := []agg.Value{}
		if name == "max_n" {
			params = append(params, agg.IntValue(2))
		}
		if _, ok := resolve(t, name, false, []string{"integer"}, params...).Partials(); ok {
			t.Errorf("%s has partials: PostgreSQL has no such aggregate", name)
		}
	}
	if _, ok := resolve(t, "sum", false, []string{"double precision"}).Partials(); ok {
		t.Error("sum(double precision) has partials: PostgreSQL's float sum depends on row order")
	}
	t.Logf("%d states from partials equal the states of their rows", n)
}

// partials runs the partial aggregates per group of tb and reads them as
// Values: counts as integers, sums as numerics, extremes of type typ.
func partials(t *testing.T, tx pgx.Tx, tb *pgTable, sqls []string, typ string) [][]agg.Value {
	t.Helper()
	exprs := make([]string, len(sqls))
	for i, s := range sqls {
		exprs[i] = "(" + s + ")::text"
	}
	rows, err := tx.Query(t.Context(), "SELECT g, "+strings.Join(exprs, ", ")+" FROM t GROUP BY g")
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]agg.Value, len(tb.groups))
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		g := int(vals[0].(int32))
		for i, v := range vals[1:] {
			kind := agg.KindDecimal
			switch {
			case strings.HasPrefix(sqls[i], "count("):
				kind = agg.KindInt
			case strings.HasPrefix(sqls[i], "min("), strings.HasPrefix(sqls[i], "max("):
				kind = agg.MustParseType(typ).Kind
			}
			out[g] = append(out[g], parseValue(t, kind, v))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func parseValue(t *testing.T, kind agg.Kind, v any) agg.Value {
	t.Helper()
	if v == nil {
		return agg.Null(kind)
	}
	if kind == agg.KindInt {
		n, err := strconv.ParseInt(v.(string), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return agg.IntValue(n)
	}
	d, err := agg.ParseDecimal(v.(string))
	if err != nil {
		t.Fatal(err)
	}
	return d
}
