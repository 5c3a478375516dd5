package rollup

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
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

	// PushDown says whether the source aggregates each range, and why.
	PushDown string

	keepStates bool
	job        *job
	types      []string // of Input.Exprs
	// timeKey is the first key that buckets rows by time, as mr computes
	// it from a row (a pushed-down plan keeps it): what --lookback
	// windows. nil for none.
	timeKey *timeKey
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

// Options say how a rollup reads its source and where it goes.
type Options struct {
	Into   string // the output table
	Cursor string // the table's cursor column; "id" if empty
	// Name is the job's name, which keys its runs; JobName(q, opts) if
	// empty.
	Name string

	// KeepStates adds the column mr_states (bytea) to the output: each
	// group's aggregate states, so that a later run can merge new rows
	// into them. Its bytes are a format byte (1), then per aggregate call,
	// in the query's order, a uvarint length and the state's encoding
	// (see rollup/agg).
	KeepStates bool

	// PushDown chooses whether the source aggregates each range itself
	// (PushDownAuto if empty); Partitions is the run's number of ranges,
	// which PushDownAuto weighs.
	PushDown   PushDownMode
	Partitions int
}

// StatesColumn is the output column of Options.KeepStates.
const StatesColumn = "mr_states"

// Prepare compiles q against src: it asks the source for the types of
// what q reads (checking the query's SQL there), then compiles it.
func Prepare(ctx context.Context, src mapreduce.Source, q *Query, opts Options) (*Plan, error) {
	in := q.Input(cmp.Or(opts.Cursor, "id"))
	info, err := src.Describe(ctx, in)
	if err != nil {
		return nil, err
	}
	p, err := Compile(q, in, info.Types, opts)
	if err != nil || opts.PushDown == PushDownOff {
		return p, err
	}
	return p.pushDown(ctx, src, info.Rows, opts)
}

// JobName is the name of the job of q as opts say: "rollup_", the output
// table's name and a hash of the query and of what else shapes the
// output (KeepStates), so that another query into the same table is
// another run.
func JobName(q *Query, opts Options) string {
	h := sha256.New()
	h.Write([]byte(q.String()))
	if opts.KeepStates {
		h.Write([]byte("\x00" + StatesColumn))
	}
	return "rollup_" + strings.Trim(nonName.ReplaceAllString(strings.ToLower(opts.Into), "_"), "_") + "_" + hex.EncodeToString(h.Sum(nil)[:4])
}

var nonName = regexp.MustCompile(`[^a-z0-9_]+`)

// Compile binds q, read as in (q.Input), to the types the source reported
// for in.Exprs (mapreduce.TableInfo.Types), and returns the job that
// computes it as opts say. Errors about the query are *SyntaxErrors
// pointing at the part at fault.
func Compile(q *Query, in mapreduce.Input, types []string, opts Options) (*Plan, error) {
	if len(types) != len(in.Exprs) {
		return nil, fmt.Errorf("rollup: the source reported %d types for %d expressions", len(types), len(in.Exprs))
	}
	if len(q.GroupBy) == 0 {
		return nil, newError(q.Text, 0, len(q.Text), "add a key and GROUP BY it; for one total, group by a constant expression such as 'all'::text AS scope",
			"mr rollup needs GROUP BY keys: its output table is keyed on them")
	}
	c := &compiler{q: q, in: in, types: types}
	j := &job{}
	p := &Plan{Query: q, Input: in, keepStates: opts.KeepStates, job: j, types: types, PushDown: "off: mr reads every row"}
	for _, i := range q.GroupBy {
		k, pk, err := c.key(q.Items[i])
		if err != nil {
			return nil, err
		}
		j.keys = append(j.keys, k)
		p.Keys = append(p.Keys, pk)
	}
	p.timeKey = firstTimeKey(j.keys, in, types)
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
	if len(j.calls) == 0 {
		return nil, newError(q.Text, 0, len(q.Text), "add one, such as count(*) AS n",
			"mr rollup needs an aggregate: its output rows are the keys' aggregates")
	}
	j.keepStates = opts.KeepStates
	for _, c := range j.calls {
		j.nargs += len(c.cols)
	}
	j.valueBytes = j.groupBytes()
	var err error
	if p.Job, err = j.definition(cmp.Or(opts.Name, JobName(q, opts)), opts.Into, in, q); err != nil {
		return nil, err
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
		if t.Kind == agg.KindText {
			// Timestamps as text, as SQLite keeps them: read as RFC 3339,
			// and a row whose text is no timestamp fails.
			t.Kind = agg.KindTimestamp
		}
		if t.Kind != agg.KindTimestamp && t.Kind != agg.KindDate {
			return keyFunc{}, pk, c.errorf(arg.SQL, "cast it to timestamptz or date at the source, e.g. "+arg.SQL.Text+"::timestamptz",
				"%s needs a timestamp or a date; %s is %s", funcName(e), arg.SQL.Text, typeName(typ))
		}
		trunc, by, err := c.truncation(e, t.Kind)
		if err != nil {
			return keyFunc{}, pk, err
		}
		// The result keeps the argument's type, as time_bucket's does and
		// date_trunc's of timestamps; date_trunc of a date (or of text, a
		// timestamp to SQLite) is a timestamptz.
		k := keyFunc{name: it.Name, col: col, kind: t.Kind, trunc: trunc, sqlType: t.Type}
		if _, ok := e.(*DateTrunc); ok && t.Type != "timestamp without time zone" || t.Type == "" || t.Type == "text" {
			k.kind, k.sqlType = agg.KindTimestamp, "timestamp with time zone"
		}
		if _, ok := e.(*TimeBucket); ok && t.Kind == agg.KindDate {
			k.kind, k.sqlType = agg.KindDate, "date"
		}
		pk.Type, pk.By = k.sqlType, by
		return k, pk, nil
	default:
		col, t, typ := c.expr(e.Span().Text)
		k := keyFunc{name: it.Name, col: col, kind: t.Kind, sqlType: t.Type} // PostgreSQL's GROUP BY keeps the type
		pk.Type = k.sqlType
		if t.Kind == agg.KindInvalid {
			// Read in its text form: uuid, interval, enums …
			k.kind, k.sqlType, pk.Type = agg.KindText, "text", "text"
			if typ != "" {
				pk.Type = "text (" + typ + " as text)"
			}
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
func (j *job) definition(name, into string, in mapreduce.Input, q *Query) (mapreduce.Definition, error) {
	var values []mapreduce.Field
	for _, it := range q.Items {
		if !it.IsKey() {
			values = append(values, field(j.outputs[len(values)], it.Name))
		}
	}
	if j.keepStates {
		values = append(values, mapreduce.Field{Name: StatesColumn, Type: mapreduce.TypeBytes})
	}
	def := &mapreduce.Job[string, *group]{
		Name:        name,
		Description: "mr rollup: " + strings.Join(strings.Fields(q.Text), " "),
		Input:       in,
		Output:      mapreduce.Output{Table: into, Values: values},
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
		Combine:    j.combine,
		Release:    j.release,
		ValueBytes: j.valueBytes,
		Finalize: func(g *group, out mapreduce.Encoder) error {
			if g == nil { // Validate's probe: the fields alone
				for range values {
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
			if j.keepStates {
				b, err := appendStates([]byte{1}, g.states)
				if err != nil {
					return err
				}
				out.Bytes(b)
			}
			return nil
		},
	}
	if j.keepStates { // the states merge with those of new rows
		def.Incremental = true
		def.Restore = j.restore
		def.RestoreColumns = []string{StatesColumn}
	}
	if err := def.Validate(); err != nil {
		return nil, fmt.Errorf("rollup: %w", err)
	}
	return def, nil
}

// SourceSQL is the statement the source runs per cursor range, as a
// PostgreSQL source spells it ($1 and $2 are the range's first and last
// cursor values, both included).
func (p *Plan) SourceSQL() string {
	in := p.Input
	var b strings.Builder
	if in.GroupBy > 0 {
		b.WriteString("SELECT " + strings.Join(in.Exprs, ", "))
	} else {
		b.WriteString("SELECT " + QuoteIdent(in.Cursor))
		for _, e := range in.Exprs {
			b.WriteString(", " + e)
		}
	}
	b.WriteString(" FROM " + p.Query.From.SQL.Text)
	if in.Alias != "" {
		b.WriteString(" AS " + QuoteIdent(in.Alias))
	}
	b.WriteString(" WHERE " + QuoteIdent(in.Cursor) + " >= $1 AND " + QuoteIdent(in.Cursor) + " <= $2")
	if in.Where != "" {
		b.WriteString(" AND (" + in.Where + ")")
	}
	for i := range in.GroupBy {
		if i == 0 {
			b.WriteString(" GROUP BY ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(i + 1))
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
	if p.keepStates {
		cols = append(cols, StatesColumn+" bytea")
	}
	cols = append(cols, "PRIMARY KEY ("+strings.Join(keys, ", ")+")")
	return "CREATE TABLE " + p.Job.Spec().Output.Name + " (" + strings.Join(cols, ", ") + ")"
}
