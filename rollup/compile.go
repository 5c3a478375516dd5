package rollup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/rollup/agg"
)

// Input returns what the source reads for q: its table (as Alias when the
// query names one), the range query's WHERE, and one expression per
// distinct piece of SQL the rows are needed for: the keys the source
// computes, the columns of the keys mr computes, and the aggregates'
// arguments, in the order they appear. cursor is the table's cursor
// column ("id" if empty).
func (q *Query) Input(cursor string) mapreduce.Input {
	in := mapreduce.Input{Table: q.From.Name, Cursor: cursor, Alias: q.From.Alias}
	if q.From.Schema != "" {
		in.Table = q.From.Schema + "." + q.From.Name
	}
	if q.Where != nil {
		in.Where = q.Where.Text
	}
	for _, sql := range q.sourceSQL() {
		if !slices.Contains(in.Exprs, sql) {
			in.Exprs = append(in.Exprs, sql)
		}
	}
	return in
}

// sourceSQL lists the SQL of every value the source computes per row,
// with repeats.
func (q *Query) sourceSQL() []string {
	var sqls []string
	for _, it := range q.Items {
		switch e := it.Expr.(type) {
		case *Column:
			sqls = append(sqls, e.SQL.Text)
		case *SQL:
			sqls = append(sqls, e.Text)
		case *DateTrunc:
			sqls = append(sqls, e.Arg.SQL.Text)
		case *TimeBucket:
			sqls = append(sqls, e.Arg.SQL.Text)
		}
	}
	for _, it := range q.Items {
		if a, ok := it.Expr.(Agg); ok {
			for _, c := range Calls(a) {
				for _, arg := range c.Args {
					sqls = append(sqls, arg.SQL.Text)
				}
			}
		}
	}
	return sqls
}

// Plan is a rollup compiled against its source: the job mr runs, and what
// --explain shows of it.
type Plan struct {
	Query *Query
	Input mapreduce.Input
	Job   mapreduce.Definition
	Keys  []PlannedKey
	Aggs  []PlannedAgg
}

// PlannedKey is one output key column and who computes it.
type PlannedKey struct {
	Column string
	Type   string // the output column's PostgreSQL type
	By     string // "source" or what mr computes ("date_trunc('month', …) in UTC")
}

// PlannedAgg is one output value column.
type PlannedAgg struct {
	Column string
	Type   string   // the output column's PostgreSQL type
	Funcs  []string // the aggregates it is computed from, with their states
}

// Compile binds q, read as in (q.Input), to the types the source reported
// for in.Exprs (mapreduce.TableInfo.Types), and returns the job that
// computes it into the table into. name is the job's name, which keys its
// runs. Errors are *SyntaxErrors pointing at the part of the query at
// fault.
func Compile(q *Query, name, into string, in mapreduce.Input, types []string) (*Plan, error) {
	if len(types) != len(in.Exprs) {
		return nil, fmt.Errorf("rollup: the source reported %d types for %d expressions", len(types), len(in.Exprs))
	}
	if len(q.GroupBy) == 0 {
		return nil, newError(q.Text, 0, len(q.Text), "add a key and GROUP BY it; for one total, group by a constant expression such as 'all'::text AS scope",
			"mr rollup needs GROUP BY keys: its output table is keyed on them")
	}
	c := &compiler{q: q, in: in, types: types}
	j := &job{}
	p := &Plan{Query: q, Input: in}
	for _, i := range q.GroupBy {
		k, pk, err := c.key(q.Items[i])
		if err != nil {
			return nil, err
		}
		j.keys = append(j.keys, k)
		p.Keys = append(p.Keys, pk)
	}
	for _, it := range q.Items {
		a, ok := it.Expr.(Agg)
		if !ok {
			continue
		}
		out, err := c.output(a, j)
		if err != nil {
			return nil, err
		}
		j.outputs = append(j.outputs, out)
		pa := PlannedAgg{Column: it.Name, Type: out.sqlType()}
		for _, call := range Calls(a) {
			pa.Funcs = append(pa.Funcs, j.calls[c.callIndex[call]].fn.String())
		}
		p.Aggs = append(p.Aggs, pa)
	}
	p.Job = j.definition(name, into, in, q)
	if err := p.Job.(interface{ Validate() error }).Validate(); err != nil {
		return nil, fmt.Errorf("rollup: %w", err)
	}
	return p, nil
}

// compiler holds what Compile needs while it walks the query.
type compiler struct {
	q         *Query
	in        mapreduce.Input
	types     []string
	callIndex map[*Call]int
}

// expr returns the index among the row's values of the source's value for
// sql, and its type.
func (c *compiler) expr(sql string) (int, agg.ArgType, string) {
	for i, e := range c.in.Exprs {
		if e == sql {
			t, err := agg.ParseType(c.types[i])
			if err != nil {
				t = agg.ArgType{} // a type mr reads as text only
			}
			return len(c.in.Columns) + i, t, c.types[i]
		}
	}
	panic("rollup: Compile got an Input that is not q.Input: no expression " + sql)
}

func (c *compiler) errorf(at SQL, hint, format string, args ...any) error {
	return newError(c.q.Text, at.Pos, at.End, hint, format, args...)
}

// key compiles one key item.
func (c *compiler) key(it Item) (keyFunc, PlannedKey, error) {
	pk := PlannedKey{Column: it.Name, By: "source"}
	switch e := it.Expr.(type) {
	case *DateTrunc, *TimeBucket:
		arg := e.(interface{ argument() Arg }).argument()
		col, t, typ := c.expr(arg.SQL.Text)
		if t.Kind != agg.KindTimestamp && t.Kind != agg.KindDate {
			return keyFunc{}, pk, c.errorf(arg.SQL, "cast it to timestamptz or date at the source, e.g. "+arg.SQL.Text+"::timestamptz",
				"%s needs a timestamp or a date; %s is %s", funcName(e), arg.SQL.Text, typeName(typ))
		}
		trunc, by, err := c.truncation(e, t.Kind)
		if err != nil {
			return keyFunc{}, pk, err
		}
		k := keyFunc{name: it.Name, col: col, kind: t.Kind, trunc: trunc}
		if t.Kind == agg.KindDate {
			if _, ok := e.(*DateTrunc); ok {
				k.kind = agg.KindTimestamp // date_trunc of a date is a timestamptz in PostgreSQL
			}
		}
		pk.Type, pk.By = kindSQLType(k.kind), by
		return k, pk, nil
	default:
		col, t, typ := c.expr(e.Span().Text)
		k := keyFunc{name: it.Name, col: col, kind: t.Kind}
		if t.Kind == agg.KindInvalid {
			k.kind = agg.KindText // read in its text form: uuid, interval, enums …
		}
		pk.Type = kindSQLType(k.kind)
		if t.Kind == agg.KindInvalid && typ != "" {
			pk.Type = "text (" + typ + " as text)"
		}
		return k, pk, nil
	}
}

func funcName(e Expr) string {
	if _, ok := e.(*DateTrunc); ok {
		return "date_trunc"
	}
	return "time_bucket"
}

func typeName(typ string) string {
	if typ == "" {
		return "of a type the source does not tell"
	}
	return typ
}

// output compiles one aggregate item, resolving its calls.
func (c *compiler) output(a Agg, j *job) (outputExpr, error) {
	switch a := a.(type) {
	case *Call:
		args := make([]agg.ArgType, len(a.Args))
		cols := make([]int, len(a.Args))
		for i, arg := range a.Args {
			col, t, typ := c.expr(arg.SQL.Text)
			if t.Kind == agg.KindInvalid {
				return nil, c.errorf(arg.SQL, "cast it at the source to a type mr aggregates, e.g. "+arg.SQL.Text+"::text",
					"%s cannot aggregate %s: it is %s", a.Func, arg.SQL.Text, typeName(typ))
			}
			args[i], cols[i] = t, col
		}
		params := make([]agg.Value, len(a.Params))
		for i, p := range a.Params {
			if n, ok := p.Int64(); ok {
				params[i] = agg.IntValue(n)
			} else {
				params[i] = agg.FloatValue(p.Float64())
			}
		}
		fn, err := agg.Resolve(string(a.Func), a.Distinct, args, params)
		if err != nil {
			return nil, c.errorf(a.SQL, "", "%s", strings.TrimPrefix(err.Error(), "agg: "))
		}
		if c.callIndex == nil {
			c.callIndex = map[*Call]int{}
		}
		c.callIndex[a] = len(j.calls)
		j.calls = append(j.calls, call{fn: fn, cols: cols})
		return &callOut{index: c.callIndex[a], fn: fn}, nil
	case *Number:
		if n, ok := a.Int64(); ok {
			return &constOut{agg.IntValue(n)}, nil
		}
		v, err := agg.ParseDecimal(a.Value)
		if err != nil {
			return nil, c.errorf(a.SQL, "", "%v", err)
		}
		return &constOut{v}, nil
	case *Unary:
		x, err := c.output(a.X, j)
		if err != nil {
			return nil, err
		}
		if _, ok := agg.ArithKind('-', agg.KindInt, x.kind()); !ok {
			return nil, c.errorf(a.SQL, "", "- needs a number; %s is %s", a.X.Span().Text, x.sqlType())
		}
		return &negOut{x}, nil
	case *Binary:
		l, err := c.output(a.L, j)
		if err != nil {
			return nil, err
		}
		r, err := c.output(a.R, j)
		if err != nil {
			return nil, err
		}
		k, ok := agg.ArithKind(a.Op, l.kind(), r.kind())
		if !ok {
			hint := ""
			if a.Op == '^' {
				hint = "mr computes ^ of integers and double precision; cast the aggregate's argument to double precision at the source"
			}
			return nil, c.errorf(a.SQL, hint, "mr does not compute %s %c %s", l.sqlType(), a.Op, r.sqlType())
		}
		return &binaryOut{op: a.Op, l: l, r: r, k: k}, nil
	}
	return nil, c.errorf(a.Span(), "", "unsupported expression")
}

// ErrGroup is the error of a group whose result mr cannot compute (a
// division by zero, an overflow), which fails the run as it fails
// PostgreSQL's statement.
var ErrGroup = errors.New("rollup: a group's result failed")

// definition builds the mapreduce job of j.
func (j *job) definition(name, into string, in mapreduce.Input, q *Query) mapreduce.Definition {
	def := &mapreduce.Job[string, *group]{
		Name:        name,
		Description: "mr rollup: " + strings.Join(strings.Fields(q.Text), " "),
		Input:       in,
		Output:      mapreduce.Output{Table: into},
		Key:         j.keyCodec(),
		Value:       j.valueCodec(),
		Map: func(_ context.Context, row mapreduce.Row, emit func(string, *group)) error {
			key, err := j.rowKey(row)
			if err != nil {
				return mapreduce.Permanent(err)
			}
			g, err := j.rowGroup(row)
			if err != nil {
				return mapreduce.Permanent(err)
			}
			emit(key, g)
			return nil
		},
		Combine: j.combine,
		Finalize: func(g *group, out mapreduce.Encoder) error {
			if g == nil { // Validate's probe: the fields alone
				for range j.outputs {
					out.Null()
				}
				return nil
			}
			if err := j.materialize(g); err != nil {
				return err
			}
			for _, o := range j.outputs {
				v, err := o.eval(g)
				if err != nil {
					return fmt.Errorf("%w: %w", ErrGroup, err)
				}
				writeValue(out, &v)
			}
			return nil
		},
	}
	for i, it := range q.Items {
		if !it.IsKey() {
			def.Output.Values = append(def.Output.Values, field(j.outputs[len(def.Output.Values)], q.Items[i].Name))
		}
	}
	return def
}

// SourceSQL is the statement the source runs per cursor range, as a
// PostgreSQL source spells it ($1 and $2 are the range's bounds).
func (p *Plan) SourceSQL() string {
	in := p.Input
	var b strings.Builder
	b.WriteString("SELECT " + QuoteIdent(in.Cursor))
	for _, e := range in.Exprs {
		b.WriteString(", " + e)
	}
	b.WriteString(" FROM " + p.Query.From.SQL.Text)
	if in.Alias != "" {
		b.WriteString(" AS " + QuoteIdent(in.Alias))
	}
	b.WriteString(" WHERE " + QuoteIdent(in.Cursor) + " >= $1 AND " + QuoteIdent(in.Cursor) + " < $2")
	if in.Where != "" {
		b.WriteString(" AND (" + in.Where + ")")
	}
	return b.String()
}

// DDL is the CREATE TABLE of the output table, as mr creates it when it is
// missing.
func (p *Plan) DDL() string {
	var cols, keys []string
	for _, k := range p.Keys {
		cols = append(cols, QuoteIdent(k.Column)+" "+k.Type)
		keys = append(keys, QuoteIdent(k.Column))
	}
	for _, a := range p.Aggs {
		cols = append(cols, QuoteIdent(a.Column)+" "+a.Type)
	}
	if len(keys) > 0 {
		cols = append(cols, "PRIMARY KEY ("+strings.Join(keys, ", ")+")")
	}
	return "CREATE TABLE " + p.Job.Spec().Output.Name + " (" + strings.Join(cols, ", ") + ")"
}
