package agg

import (
	"fmt"
	"math/big"
	"strings"
)

// Partials returns the SQL aggregates that compute f's state over a group
// at a PostgreSQL source, so that a rollup can push its partial
// aggregation down (GROUP BY in each range query) and merge states built
// by FromPartials. Each holds {x} where the argument's SQL goes. ok
// is false where no exact partials exist: float sums (PostgreSQL's
// depend on row order, mr's are exact), and the sketches, sets and top-n
// lists, which PostgreSQL has no aggregates for.
func (f *Func) Partials() (sqls []string, ok bool) {
	const finite = ` FILTER (WHERE {x} > '-Infinity' AND {x} < 'Infinity')`
	switch f.op {
	case opCountStar:
		return []string{"count(*)"}, true
	case opCount:
		return []string{"count({x})"}, true
	case opMin, opMax:
		return []string{f.Name + "({x})"}, true
	case opSum, opAvg, opVarSamp, opVarPop, opStddevSamp, opStddevPop:
		switch f.Args[0].Kind {
		case KindInt:
			sqls = []string{"count({x})", "sum(({x})::numeric)"}
			if f.needsSquares() {
				sqls = append(sqls, "sum(({x})::numeric * ({x}))")
			}
			return sqls, true
		case KindDecimal:
			// NaN sorts above Infinity, so the filter keeps finite values.
			sqls = []string{"count({x})" + finite, "sum({x})" + finite,
				`count(*) FILTER (WHERE {x} = 'NaN')`, `count(*) FILTER (WHERE {x} = 'Infinity')`,
				`count(*) FILTER (WHERE {x} = '-Infinity')`}
			if f.needsSquares() {
				sqls = append(sqls, "sum({x} * {x})"+finite)
			}
			return sqls, true
		}
	}
	return nil, false
}

// PartialSQL is Partials with the argument's SQL filled in.
func (f *Func) PartialSQL(arg string) []string {
	sqls, _ := f.Partials()
	for i, s := range sqls {
		sqls[i] = strings.ReplaceAll(s, "{x}", arg)
	}
	return sqls
}

// FromPartials returns the state of a group whose Partials the source
// computed as vals (in order; counts as integers, sums as numerics,
// extremes of the argument's kind). It is the state that Adding the
// group's rows gives, encoding for encoding.
func (f *Func) FromPartials(vals []Value) (State, error) {
	want, ok := f.Partials()
	if !ok || len(vals) != len(want) {
		return nil, fmt.Errorf("agg: %s: %d partials, want %d: %w", f, len(vals), len(want), ErrBadArgument)
	}
	count := func(i int) (int64, error) {
		v := vals[i]
		switch {
		case v.Null:
			return 0, nil
		case v.Kind != KindInt || v.Int < 0:
			return 0, fmt.Errorf("agg: %s: partial %s is %s, want a count: %w", f, want[i], v, ErrBadArgument)
		}
		return v.Int, nil
	}
	switch s := f.newState().(type) {
	case *countState:
		n, err := count(0)
		s.n = n
		return s, err
	case *minMaxState:
		return s, s.Add(&vals[0])
	case *decStats:
		var err error
		if s.n, err = count(0); err != nil {
			return nil, err
		}
		if f.Args[0].Kind == KindDecimal {
			for i, c := range []*int64{&s.nan, &s.pinf, &s.ninf} {
				if *c, err = count(2 + i); err != nil {
					return nil, err
				}
			}
		}
		if s.n == 0 {
			return s, nil
		}
		if err := addPartialSum(&s.sum, &vals[1], f, want[1]); err != nil {
			return nil, err
		}
		if f.needsSquares() {
			if err := addPartialSum(&s.sq, &vals[len(vals)-1], f, want[len(want)-1]); err != nil {
				return nil, err
			}
		}
		return s, nil
	}
	return nil, fmt.Errorf("agg: %s has no partials: %w", f, ErrBadArgument)
}

// addPartialSum adds a numeric partial sum to s, keeping an i128 while it
// fits, as Add does.
func addPartialSum(s *decSum, v *Value, f *Func, sql string) error {
	if v.Null || v.Kind != KindDecimal {
		return fmt.Errorf("agg: %s: partial %s is %s, want a numeric: %w", f, strings.TrimSpace(sql), v, ErrBadArgument)
	}
	coef, scale, finite := decParts(*v)
	if !finite || scale < 0 {
		return fmt.Errorf("agg: %s: partial %s is %s, want a finite numeric: %w", f, sql, v, ErrBadArgument)
	}
	if f.Args[0].Kind == KindInt && scale != 0 {
		return fmt.Errorf("agg: %s: partial sum %s of integers has a fraction: %w", f, v, ErrBadArgument)
	}
	if x, ok := i128FromBig(coef); ok {
		s.add(x, scale)
		return nil
	}
	s.addBig(new(big.Int).Set(coef), scale)
	return nil
}
