package rollup

import (
	"math/big"
	"strconv"
	"strings"
)

// Query is one parsed rollup: SELECT Items FROM From [WHERE Where]
// [GROUP BY GroupBy]. Every SQL piece in it is a slice of Text.
type Query struct {
	Text    string // the statement as given to Parse
	Items   []Item // the select list, in order
	From    Table
	Where   *SQL  // the WHERE condition as written; nil without WHERE
	GroupBy []int // indexes into Items of the keys, in GROUP BY order, each once
}

// Keys returns the indexes into Items of the key items, in select order.
// They are the same items as GroupBy's, which holds them in GROUP BY order.
func (q *Query) Keys() []int {
	var keys []int
	for i, it := range q.Items {
		if it.IsKey() {
			keys = append(keys, i)
		}
	}
	return keys
}

// String returns the query as one statement built from its pieces: each
// item's text with its name quoted, the table, the condition, and GROUP BY
// by position. Parse reads it back to the same Query but for positions.
func (q *Query) String() string {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, it := range q.Items {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(it.SQL.Text)
		b.WriteString(" AS ")
		b.WriteString(QuoteIdent(it.Name))
	}
	b.WriteString(" FROM ")
	b.WriteString(q.From.SQL.Text)
	if q.From.Alias != "" {
		b.WriteString(" AS ")
		b.WriteString(QuoteIdent(q.From.Alias))
	}
	if q.Where != nil {
		b.WriteString(" WHERE ")
		b.WriteString(q.Where.Text)
	}
	for i, k := range q.GroupBy {
		if i == 0 {
			b.WriteString(" GROUP BY ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(k + 1))
	}
	return b.String()
}

// QuoteIdent quotes name as an SQL identifier: "name", with any " doubled.
func QuoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// Item is one entry of the select list: a key or an aggregate.
type Item struct {
	// Name is the output column's name: the alias (AS name, or a bare
	// name), else the name PostgreSQL gives the expression: a column's
	// name, or a function's (count, sum, date_trunc …). An expression
	// PostgreSQL would call ?column? (arithmetic, a literal) must have an
	// alias. Unquoted names are folded to lower case; names are unique.
	Name string
	// Expr is a Key (*Column, *DateTrunc, *TimeBucket, *SQL) when the
	// item contains no aggregate call, else an Agg (*Call, *Binary,
	// *Unary, *Number) computed from the aggregates once a group is
	// complete.
	Expr Expr
	// SQL is the item's expression as written, without its alias.
	SQL SQL
}

// IsKey reports whether the item is a key, that is, has no aggregate.
func (it Item) IsKey() bool {
	_, ok := it.Expr.(Key)
	return ok
}

// SQL is a piece of the query's text exactly as the user wrote it
// (spelling, quoting, casts and inner comments kept), from the start of
// its first token to the end of its last: Query.Text[Pos:End] == Text.
// As a Key it is an expression that the source computes for each row.
type SQL struct {
	Text     string
	Pos, End int // byte offsets into Query.Text
}

// Table is the one table a rollup reads: [Schema.]Name [AS Alias].
type Table struct {
	Schema string // "" when the name is not qualified
	Name   string // unquoted identifiers folded to lower case, quoted ones as written
	Alias  string // "" without one
	SQL    SQL    // the name as written, without the alias
}

// Expr is a node of an item's expression: a Key or an Agg.
type Expr interface {
	// Span is the node's text.
	Span() SQL
	isExpr()
}

// Key is what a key item computes for each row: *Column, *DateTrunc,
// *TimeBucket, or *SQL (any other scalar expression, left to the source).
type Key interface {
	Expr
	isKey()
}

// Agg is a node of an aggregate item: *Call (one aggregate), *Binary,
// *Unary or *Number (arithmetic over aggregates, after aggregation).
type Agg interface {
	Expr
	isAgg()
}

// Column is a plain column reference: an identifier, unquoted or
// "quoted", optionally qualified by the table's name or alias.
type Column struct {
	Name string // unquoted names folded to lower case, quoted ones as written
	SQL  SQL
}

// DateTrunc is date_trunc('unit', Arg [, 'zone']), which mr computes.
type DateTrunc struct {
	Unit TruncUnit
	Arg  Arg
	Zone string // the time zone literal's value; "" when not given
	SQL  SQL
}

// TruncUnit is a date_trunc unit, named as PostgreSQL's documentation
// names it.
type TruncUnit string

// The units of date_trunc. Parse accepts every spelling PostgreSQL does
// ('Months', 'mon', 'hrs' …) and stores these.
const (
	Microseconds TruncUnit = "microseconds"
	Milliseconds TruncUnit = "milliseconds"
	Second       TruncUnit = "second"
	Minute       TruncUnit = "minute"
	Hour         TruncUnit = "hour"
	Day          TruncUnit = "day"
	Week         TruncUnit = "week"
	Month        TruncUnit = "month"
	Quarter      TruncUnit = "quarter"
	Year         TruncUnit = "year"
	Decade       TruncUnit = "decade"
	Century      TruncUnit = "century"
	Millennium   TruncUnit = "millennium"
)

// TimeBucket is time_bucket(Interval, Arg), which mr computes: the start
// of the Interval-wide bucket that holds Arg, as TimescaleDB defines it.
type TimeBucket struct {
	Interval Interval
	Arg      Arg
	SQL      SQL
}

// Interval is an interval literal as PostgreSQL stores one: months, days
// and microseconds kept apart, because a month has no fixed number of
// days, nor a day (across a daylight-saving change) of microseconds. The
// one in a TimeBucket is positive and either all months or no months.
type Interval struct {
	Months int32
	Days   int32
	Micros int64
	SQL    SQL // the literal as written: '1 day', interval '1 day' or '1 day'::interval
}

// Arg is an argument of an aggregate or of date_trunc and time_bucket:
// any scalar SQL expression without aggregates, which the source
// computes for each row.
type Arg struct {
	SQL SQL // the expression as written
	// Column is the column's name when the expression is a plain column
	// reference (see Column), else "".
	Column string
}

// Call is one aggregate call: Func(Args) with its literal Params.
type Call struct {
	Func     Func
	Distinct bool     // count(DISTINCT x)
	Star     bool     // count(*), which has no Args
	Args     []Arg    // corr has two (y, x), count(*) none, the others one
	Params   []Number // approx_quantile's q (0 ≤ q ≤ 1); max_n's and min_n's n (an integer ≥ 1)
	SQL      SQL
}

// Func is an aggregate function's name, in lower case.
type Func string

// The aggregates. stddev is stddev_samp and variance var_samp, as in
// PostgreSQL; median(x) is approx_quantile(x, 0.5).
const (
	Count               Func = "count"
	Sum                 Func = "sum"
	Min                 Func = "min"
	Max                 Func = "max"
	Avg                 Func = "avg"
	Stddev              Func = "stddev"
	StddevSamp          Func = "stddev_samp"
	StddevPop           Func = "stddev_pop"
	Variance            Func = "variance"
	VarSamp             Func = "var_samp"
	VarPop              Func = "var_pop"
	Corr                Func = "corr"
	ApproxCountDistinct Func = "approx_count_distinct"
	ApproxQuantile      Func = "approx_quantile"
	Median              Func = "median"
	MaxN                Func = "max_n"
	MinN                Func = "min_n"
)

// Binary is L Op R over aggregates and numbers, Op one of + - * / ^
// (^ is exponentiation, left-associative as in PostgreSQL).
type Binary struct {
	Op   byte
	L, R Agg
	SQL  SQL
}

// Unary is -X over an aggregate (a negative number is a Number).
type Unary struct {
	Op  byte // '-'
	X   Agg
	SQL SQL
}

// Number is a numeric literal, in an aggregate item or as a Param.
type Number struct {
	// Value is the literal in decimal, with its sign, without
	// underscores or a base prefix (0x1F is "31"): what
	// strconv.ParseFloat and apd's Decimal read.
	Value string
	// Int is true for a literal without a decimal point or exponent,
	// which PostgreSQL types as an integer (numeric if it does not fit
	// in 64 bits).
	Int bool
	SQL SQL
}

// Float64 returns the number nearest to n (±Inf beyond float64's range).
func (n *Number) Float64() float64 {
	f, _ := strconv.ParseFloat(n.Value, 64)
	return f
}

// Int64 returns n as an int64, and false when n is not an integer
// literal or does not fit.
func (n *Number) Int64() (int64, bool) {
	if !n.Int {
		return 0, false
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	return v, err == nil
}

// Calls returns the aggregate calls of a, left to right.
func Calls(a Agg) []*Call {
	var calls []*Call
	var walk func(Agg)
	walk = func(a Agg) {
		switch a := a.(type) {
		case *Call:
			calls = append(calls, a)
		case *Binary:
			walk(a.L)
			walk(a.R)
		case *Unary:
			walk(a.X)
		}
	}
	walk(a)
	return calls
}

func (e *SQL) Span() SQL        { return *e }
func (e *Column) Span() SQL     { return e.SQL }
func (e *DateTrunc) Span() SQL  { return e.SQL }
func (e *TimeBucket) Span() SQL { return e.SQL }
func (e *Call) Span() SQL       { return e.SQL }
func (e *Binary) Span() SQL     { return e.SQL }
func (e *Unary) Span() SQL      { return e.SQL }
func (e *Number) Span() SQL     { return e.SQL }

func (*SQL) isExpr()        {}
func (*Column) isExpr()     {}
func (*DateTrunc) isExpr()  {}
func (*TimeBucket) isExpr() {}
func (*Call) isExpr()       {}
func (*Binary) isExpr()     {}
func (*Unary) isExpr()      {}
func (*Number) isExpr()     {}

func (*SQL) isKey()        {}
func (*Column) isKey()     {}
func (*DateTrunc) isKey()  {}
func (*TimeBucket) isKey() {}

func (*Call) isAgg()   {}
func (*Binary) isAgg() {}
func (*Unary) isAgg()  {}
func (*Number) isAgg() {}

// decimalValue spells a lexed numeric literal (underscores removed) in
// decimal: 0x, 0o and 0b integers converted, a leading or trailing point
// completed ("0.5", "1.0e3"), so that every decimal reader takes it.
func decimalValue(lit string) string {
	if len(lit) > 2 && lit[0] == '0' {
		base := 0
		switch lit[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 0 {
			var v big.Int
			if _, ok := v.SetString(lit[2:], base); ok {
				return v.String()
			}
		}
	}
	if lit[0] == '.' {
		lit = "0" + lit
	}
	if i := strings.IndexByte(lit, '.'); i >= 0 && (i+1 == len(lit) || lit[i+1] == 'e' || lit[i+1] == 'E') {
		lit = lit[:i+1] + "0" + lit[i+1:]
	}
	return lit
}
