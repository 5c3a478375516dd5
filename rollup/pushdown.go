package rollup

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/rollup/agg"
)

// PushDownMode is whether a rollup's partial aggregation runs at the
// source: each range query then groups its rows and returns partial
// aggregates per group (count, sum, min, max …), which mr merges into
// states (Spark's JDBC aggregate push-down does the same per partition).
// It pays when groups are few next to rows: far fewer rows cross the wire,
// and the source aggregates them where they lie.
type PushDownMode string

const (
	// PushDownAuto pushes down when the source can and estimates at
	// least pushDownGain (16) times fewer groups per range than rows.
	PushDownAuto PushDownMode = "auto"
	PushDownOn   PushDownMode = "on"  // push down, or fail saying why not
	PushDownOff  PushDownMode = "off" // read every row
)

// pushDownGain is how many times fewer rows a pushed-down rollup must
// read for PushDownAuto to choose it. Below it the source's grouping
// costs about what it saves, and PostgreSQL's estimates of many-column
// groups run low by several times (the db-benchmark's q10, ten million
// groups over six columns, came out pushed down at 4).
const pushDownGain = 16

// GroupEstimator is a source that estimates how many groups a GROUP BY
// gives (sources.Postgres, from pg_stats). PushDownAuto needs one.
type GroupEstimator interface {
	EstimateGroups(ctx context.Context, in mapreduce.Input) (int64, error)
}

// pushDown returns p pushed down, if opts and the source allow, else p
// with the reason in PushDown.
func (p *Plan) pushDown(ctx context.Context, src mapreduce.Source, rows int64, opts Options) (*Plan, error) {
	in, why := p.groupedInput()
	_, streams := src.(mapreduce.Streamer)
	est, estimates := src.(GroupEstimator)
	switch {
	case why == "" && !streams:
		why = "the source cannot aggregate ranges"
	case why == "" && opts.PushDown != PushDownOn && !estimates:
		why = "the source cannot estimate groups"
	}
	if why != "" {
		if opts.PushDown == PushDownOn {
			return nil, fmt.Errorf("rollup: cannot push the aggregation down: %s", why)
		}
		p.PushDown = "off: " + why
		return p, nil
	}
	reason := "on, as asked"
	if opts.PushDown != PushDownOn {
		groups, err := est.EstimateGroups(ctx, in)
		if err != nil {
			return nil, err
		}
		ranges := int64(max(1, opts.Partitions))
		perRange := min(groups, max(1, rows/ranges))
		if perRange*ranges*pushDownGain > rows {
			p.PushDown = fmt.Sprintf("off: about %d groups per range of %d rows is too little reduction (estimated: %d groups, %d rows, %d ranges)",
				perRange, rows/ranges, groups, rows, ranges)
			return p, nil
		}
		reason = fmt.Sprintf("on: about %d groups per range of %d rows (estimated: %d groups, %d rows, %d ranges)",
			perRange, rows/ranges, groups, rows, ranges)
	}
	info, err := src.Describe(ctx, in)
	if err != nil {
		return nil, err
	}
	g, err := p.grouped(in, info.Types, opts)
	if err != nil {
		return nil, err
	}
	g.PushDown = reason
	return g, nil
}

// groupedInput returns the Input of p pushed down: the keys, then every
// call's partial aggregates, grouped by the keys; or why p cannot be.
func (p *Plan) groupedInput() (mapreduce.Input, string) {
	in := p.Input
	if in.Compound() { // a range's groups would need one cursor pair each
		return in, "the cursor " + in.Cursor + " is compound, and a range aggregated at the source has no pair to resume from"
	}
	in.Exprs, in.GroupBy = nil, len(p.Query.GroupBy)
	for _, i := range p.Query.GroupBy {
		it := p.Query.Items[i]
		switch e := it.Expr.(type) {
		case *Column, *SQL:
			in.Exprs = append(in.Exprs, e.Span().Text)
		case *DateTrunc:
			if t := p.typeOf(e.Arg.SQL.Text); t != "timestamp with time zone" && !strings.HasPrefix(t, "timestamp(") {
				return in, fmt.Sprintf("key %s truncates a %s, not a timestamptz", it.Name, t)
			}
			zone := "UTC"
			if e.Zone != "" {
				zone = e.Zone
			}
			in.Exprs = append(in.Exprs, fmt.Sprintf("date_trunc('%s', (%s), '%s')", e.Unit, e.Arg.SQL.Text, strings.ReplaceAll(zone, "'", "''")))
		default:
			return in, fmt.Sprintf("key %s is computed by mr", it.Name)
		}
	}
	for _, c := range p.job.calls {
		if _, ok := c.fn.Partials(); !ok {
			return in, fmt.Sprintf("%s has no exact partial aggregate in SQL", c.fn)
		}
		for _, sql := range c.fn.PartialSQL(p.argSQL(c)) {
			if !slices.Contains(in.Exprs[in.GroupBy:], sql) {
				in.Exprs = append(in.Exprs, sql)
			}
		}
	}
	return in, ""
}

// argSQL is the parenthesized SQL of c's argument, "" for count(*).
func (p *Plan) argSQL(c call) string {
	if len(c.cols) == 0 {
		return ""
	}
	return "(" + p.Input.Exprs[c.cols[0]-len(p.Input.Columns)] + ")"
}

// typeOf is the source's type of the row expression sql.
func (p *Plan) typeOf(sql string) string {
	for i, e := range p.Input.Exprs {
		if e == sql {
			return p.types[i]
		}
	}
	return ""
}

// grouped compiles the pushed-down plan: p's job, with keys read as the
// source computed them and states built from the partials.
func (p *Plan) grouped(in mapreduce.Input, types []string, opts Options) (*Plan, error) {
	if len(types) != len(in.Exprs) {
		return nil, fmt.Errorf("rollup: the source reported %d types for %d expressions", len(types), len(in.Exprs))
	}
	kindOf := func(i int) agg.Kind {
		t, err := agg.ParseType(types[i])
		if err != nil {
			return agg.KindText
		}
		return t.Kind
	}
	j := &job{outputs: p.job.outputs, keepStates: p.job.keepStates, nargs: p.job.nargs, valueBytes: p.job.valueBytes}
	j.keys = append([]keyFunc(nil), p.job.keys...)
	for i := range j.keys {
		k := &j.keys[i]
		if got := kindOf(i); got != k.kind && !(k.kind == agg.KindText && got == agg.KindText) {
			return nil, fmt.Errorf("rollup: pushed down, key %s is %s at the source, not %s", k.name, types[i], kindSQLType(k.kind))
		}
		k.col, k.trunc = i, nil
	}
	j.calls = append([]call(nil), p.job.calls...)
	for ci := range j.calls {
		c := &j.calls[ci]
		c.partials, c.partialKinds = nil, nil
		for _, sql := range c.fn.PartialSQL(p.argSQL(*c)) {
			for i := in.GroupBy; i < len(in.Exprs); i++ {
				if in.Exprs[i] == sql {
					c.partials = append(c.partials, i)
					c.partialKinds = append(c.partialKinds, kindOf(i))
				}
			}
		}
	}
	g := *p
	g.Input, g.types, g.job = in, types, j
	var err error
	if g.Job, err = j.definition(p.Job.Spec().Name, p.Job.Spec().Output.Name, in, p.Query); err != nil {
		return nil, err
	}
	g.Keys = slices.Clone(p.Keys)
	for i := range g.Keys {
		g.Keys[i].By = "source: " + in.Exprs[i]
	}
	return &g, nil
}
