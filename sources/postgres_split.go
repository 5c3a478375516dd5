package sources

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
)

// Sampling thresholds of Split.
const (
	// defaultFullReadMax: a table of up to this many rows has all of its
	// cursor values read, from the index, which takes milliseconds and
	// gives exact quantiles.
	defaultFullReadMax = 50_000
	// defaultBernoulliMax: up to this many rows, Split samples rows
	// (TABLESAMPLE BERNOULLI, which reads every page but keeps few rows);
	// beyond, it samples whole pages (SYSTEM), which reads only the pages
	// it keeps.
	defaultBernoulliMax = 1_000_000
	// sampleTarget is the number of cursor values a sample aims for: the
	// quantiles of 30,000 values are within about 1% of the true ones,
	// far finer than the 2x balance a plan needs, and reading them costs
	// well under a second even from page samples.
	sampleTarget = 30_000
	// sampleMin is the smallest sample worth more than equal widths.
	sampleMin = 100
	// staleGrowth is how much a table may grow after ANALYZE before its
	// histogram is not trusted: autovacuum analyzes again after 10% of
	// changes, so more growth means statistics are not being kept.
	staleGrowth = 1.2
)

// Split methods, as split reports them for tests.
const (
	splitHistogram  = "histogram"
	splitFullRead   = "full read"
	splitBernoulli  = "bernoulli sample"
	splitSystem     = "system sample"
	splitEqualWidth = "equal width"
)

// Split plans n partitions of about equal row counts that cover
// [info.Min, info.Max] exactly, in order, each with its estimated rows. It
// takes the split points from, in order of preference:
//
//  1. the cursor's histogram in pg_stats, when the table has been analyzed
//     and has not grown much since (autovacuum keeps this fresh);
//  2. the quantiles of a sample of the cursor column: every value of a
//     small table, else TABLESAMPLE BERNOULLI or, for large tables, SYSTEM,
//     sized to about 30,000 values;
//  3. equal widths, as the planner would without a Splitter.
//
// Split points are distinct integers whenever the span leaves room for
// them; only a span narrower than n gives empty partitions.
func (s *Postgres) Split(ctx context.Context, in mapreduce.Input, info mapreduce.TableInfo, n int) ([]mapreduce.Partition, error) {
	var parts []mapreduce.Partition
	err := s.retry(ctx, func(ctx context.Context) (err error) {
		parts, _, err = s.split(ctx, in, info, n)
		return err
	})
	var schemaErr *SchemaError
	if err != nil && !errors.As(err, &schemaErr) {
		err = s.db.Scrub(fmt.Errorf("sources: split table %q in %s: %w", in.Table, s, err))
	}
	return parts, err
}

// split is Split without retries; it also names the method it used.
func (s *Postgres) split(ctx context.Context, in mapreduce.Input, info mapreduce.TableInfo, n int) ([]mapreduce.Partition, string, error) {
	if _, err := partition.Split(info.Min, info.Max, n); err != nil { // n >= 1, Min <= Max
		return nil, "", err
	}
	if n == 1 || info.Rows == 0 {
		parts, err := mapreduce.EqualWidth(info, n)
		return parts, splitEqualWidth, err
	}
	rel, ok, err := s.resolve(ctx, in.Table)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, "", errNoTable(s, in.Table)
	}
	dist, method, err := s.histogram(ctx, rel, in, info)
	if err == nil && dist == nil {
		dist, method, err = s.sample(ctx, rel, in, info)
	}
	switch {
	case err != nil && pg.Transient(err):
		return nil, "", err
	case err != nil, dist == nil:
		// Statistics and samples only make a plan better: a view (which
		// has neither), missing privileges or an odd column type fall
		// back to equal widths.
		parts, err := mapreduce.EqualWidth(info, n)
		return parts, splitEqualWidth, err
	}
	return dist.partitions(info, n), method, nil
}

// histogram returns the cursor's distribution from pg_stats, or nil if
// there is none or it is stale.
func (s *Postgres) histogram(ctx context.Context, rel relation, in mapreduce.Input, info mapreduce.TableInfo) (*cdf, string, error) {
	if rel.reltuples <= 0 {
		return nil, "", nil // never analyzed
	}
	order, _ := in.CursorColumns()
	if kind, err := s.orderKindIf(ctx, in); err != nil || kind != orderInteger {
		return nil, "", err // a timestamp's bounds are no int8[]: sample it
	}
	if rel.relpages > 0 && float64(rel.pages) > staleGrowth*float64(rel.relpages) {
		return nil, "", nil
	}
	// A table with inheritance children (or partitions) has statistics of
	// the whole tree (inherited), which is what a query of it reads.
	var bounds []int64
	err := s.pool.QueryRow(ctx, `SELECT histogram_bounds::text::int8[] FROM pg_stats
		WHERE schemaname = $1 AND tablename = $2 AND attname = $3
		ORDER BY inherited DESC LIMIT 1`, rel.schema, rel.name, order).Scan(&bounds)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, "", nil
	case err != nil:
		return nil, "", err
	case len(bounds) < 2:
		return nil, "", nil
	}
	// Bounds far inside or outside the cursor's current range mean rows
	// were added or deleted since ANALYZE.
	lo, hi := bounds[0], bounds[len(bounds)-1]
	slack := (float64(hi) - float64(lo)) * (staleGrowth - 1)
	if math.Abs(float64(info.Min)-float64(lo)) > slack || math.Abs(float64(info.Max)-float64(hi)) > slack {
		return nil, "", nil
	}
	// Each of the histogram's buckets holds the same share of the rows.
	// Its first and last bounds are those of ANALYZE's sample: stretch
	// them to the cursor's true bounds.
	span := partition.Through(info.Min, info.Max)
	d := &cdf{xs: make([]int64, len(bounds)), ps: make([]float64, len(bounds))}
	for i, b := range bounds {
		d.xs[i] = min(max(b, span.Lo), span.Hi)
		d.ps[i] = float64(i) / float64(len(bounds)-1)
	}
	d.xs[0], d.xs[len(d.xs)-1] = span.Lo, span.Hi
	return d, splitHistogram, nil
}

// sample returns the cursor's distribution from a sample of its values,
// or nil if the sample is too small to tell more than equal widths.
func (s *Postgres) sample(ctx context.Context, rel relation, in mapreduce.Input, info mapreduce.TableInfo) (*cdf, string, error) {
	t, _ := tableIdent(in.Table)
	order, _ := in.CursorColumns()
	c := quotePG(order)
	kind, err := s.orderKindIf(ctx, in)
	if err != nil {
		return nil, "", err
	}
	v := kind.int64SQL(c) // the engine's cursor of c
	pct := min(100, 100*float64(sampleTarget)/float64(info.Rows))
	// The LIMIT guards against a row count far off the truth.
	var q, method string
	switch {
	case info.Rows <= s.fullReadMax:
		q, method = fmt.Sprintf(`SELECT %s FROM %s WHERE %s IS NOT NULL LIMIT $1`, v, t, c), splitFullRead
	case rel.kind == "v" || rel.kind == "f":
		return nil, "", nil // no TABLESAMPLE
	case info.Rows <= s.bernoulliMax:
		q, method = fmt.Sprintf(`SELECT %s FROM %s TABLESAMPLE BERNOULLI ($2) REPEATABLE (0) WHERE %s IS NOT NULL LIMIT $1`, v, t, c), splitBernoulli
	default:
		q, method = fmt.Sprintf(`SELECT %s FROM %s TABLESAMPLE SYSTEM ($2) REPEATABLE (0) WHERE %s IS NOT NULL LIMIT $1`, v, t, c), splitSystem
	}
	args := []any{4 * max(sampleTarget, s.fullReadMax)}
	if method != splitFullRead {
		args = append(args, float32(pct))
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", err
	}
	values, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, "", err
	}
	if len(values) == 0 || (method != splitFullRead && len(values) < sampleMin) {
		return nil, "", nil
	}
	slices.Sort(values)
	// The i-th smallest of m values estimates the (i+½)/m quantile.
	m := float64(len(values))
	span := partition.Through(info.Min, info.Max)
	d := &cdf{xs: []int64{span.Lo}, ps: []float64{0}}
	for i, v := range values {
		d.xs = append(d.xs, min(max(v, span.Lo), span.Hi))
		d.ps = append(d.ps, (float64(i)+0.5)/m)
	}
	d.xs, d.ps = append(d.xs, span.Hi), append(d.ps, 1)
	return d, method, nil
}

// cdf is a piecewise linear estimate of the cursor's distribution: the
// share ps[i] of the rows have a cursor below xs[i]. Both are
// non-decreasing, from (Min, 0) to (Hi, 1) of the span Min through Max:
// Max+1, or math.MaxInt64 when that is Max, whose own row the estimate
// then leaves out as it does any one row.
type cdf struct {
	xs []int64
	ps []float64
}

// quantile returns the cursor value below which a share q of the rows lie.
func (d *cdf) quantile(q float64) int64 {
	i := sort.SearchFloat64s(d.ps, q) // first ps[i] >= q
	switch {
	case i == 0:
		return d.xs[0]
	case i == len(d.ps):
		return d.xs[len(d.xs)-1]
	}
	p0, p1 := d.ps[i-1], d.ps[i]
	x0, x1 := d.xs[i-1], d.xs[i]
	if p1 == p0 || x1 == x0 {
		return x1
	}
	// x0 + f*(x1-x0), with the width as uint64 so that spans beyond
	// MaxInt64 (very negative to very positive cursors) do not overflow.
	w := uint64(x1 - x0)
	off := uint64(math.Round((q - p0) / (p1 - p0) * float64(w)))
	return x0 + int64(min(off, w))
}

// at returns the share of the rows with a cursor below x.
func (d *cdf) at(x int64) float64 {
	i := sort.Search(len(d.xs), func(i int) bool { return d.xs[i] > x }) // first xs[i] > x
	switch {
	case i == 0:
		return 0
	case i == len(d.xs):
		return 1
	}
	x0, x1 := d.xs[i-1], d.xs[i]
	p0, p1 := d.ps[i-1], d.ps[i]
	return p0 + (p1-p0)*float64(uint64(x-x0))/float64(uint64(x1-x0))
}

// partitions cuts the span info.Min through info.Max at the n-quantiles
// of d; the last partition ends where the span does (with ToMax when it
// runs to math.MaxInt64).
func (d *cdf) partitions(info mapreduce.TableInfo, n int) []mapreduce.Partition {
	span := partition.Through(info.Min, info.Max)
	cuts := make([]int64, n+1)
	cuts[0], cuts[n] = span.Lo, span.Hi
	for i := 1; i < n; i++ {
		cuts[i] = d.quantile(float64(i) / float64(n))
	}
	distinctCuts(cuts, span.ToMax)
	parts := make([]mapreduce.Partition, n)
	for i := range parts {
		r := partition.Range{Lo: cuts[i], Hi: cuts[i+1]}
		share := d.at(r.Hi) - d.at(r.Lo)
		if i == n-1 {
			r, share = span, 1-d.at(r.Lo)
			r.Lo = cuts[i]
		}
		parts[i] = mapreduce.Partition{Range: r, Rows: int64(math.Round(share * float64(info.Rows)))}
	}
	return parts
}

// distinctCuts makes the inner cuts strictly increasing where the span
// (cuts[0] to cuts[n]) leaves room, moving each as little as it can:
// quantiles that round to the same integer become consecutive integers, so
// that no partition is empty. Only a span narrower than n leaves equal
// cuts (empty partitions). The outer cuts do not move. With toMax the last
// partition holds cuts[n] (math.MaxInt64) too, so the last inner cut may
// equal it.
func distinctCuts(cuts []int64, toMax bool) {
	n := len(cuts) - 1
	lo, hi := cuts[0], cuts[n]
	for i := 1; i < n; i++ { // push up past the previous cut
		c := min(max(cuts[i], lo), hi)
		if c <= cuts[i-1] {
			c = cuts[i-1]
			if c < hi {
				c++
			}
		}
		cuts[i] = c
	}
	for i := n - 1; i >= 1; i-- { // push down below the next cut
		if cuts[i] >= cuts[i+1] && cuts[i+1] > lo && !(toMax && i == n-1) {
			cuts[i] = cuts[i+1] - 1
		}
	}
	for i := 1; i < n; i++ { // a span narrower than n: keep the order
		cuts[i] = max(cuts[i], cuts[i-1])
	}
}
