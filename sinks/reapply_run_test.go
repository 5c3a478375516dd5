package sinks_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/mapreduce/mapreducetest"
	mrrollup "github.com/mrengine/mr/rollup"
	"github.com/mrengine/mr/sinks"
)

// breakingSink is a Postgres sink whose connections all break once, in
// the middle of the first bucket's COPY.
type breakingSink struct {
	*sinks.Postgres
	once     sync.Once
	breakAll func()
}

func (s *breakingSink) Apply(ctx context.Context, t mapreduce.OutputTable, commit string, bucket int, rows mapreduce.OutputRows) error {
	return s.Postgres.Apply(ctx, t, commit, bucket, &breakingRows{OutputRows: rows, s: s})
}

type breakingRows struct {
	mapreduce.OutputRows
	s *breakingSink
	n int
}

func (r *breakingRows) Next() bool {
	if r.n++; r.n == 5 {
		r.s.once.Do(r.s.breakAll)
	}
	return r.OutputRows.Next()
}

// TestRun_ReduceRidesOutBrokenConnections breaks every connection to
// PostgreSQL while a bucket streams into it: the engine applies the bucket
// again from its files, and the run ends exact with no second command.
func TestRun_ReduceRidesOutBrokenConnections(t *testing.T) {
	t.Parallel()
	// Only the sink goes through the proxy: the harness's own idle
	// connections would break with it and fail the check at the end.
	direct := pgtest.DSN(t)
	dsn, p := proxied(t, direct)
	h := mapreducetest.New(t, mapreducetest.Options{DSN: direct})
	tab := mapreducetest.Table{Name: "sales", Columns: []mapreducetest.Column{
		{Name: "id", Type: "bigint primary key"}, {Name: "shop", Type: "bigint not null"}, {Name: "amount", Type: "numeric(10,2) not null"},
	}}
	for id := int64(1); id <= 300; id++ {
		tab.Rows = append(tab.Rows, []any{id, id % 40, "1.25"})
	}
	h.Load(t, tab)
	const query = "SELECT shop, count(*) AS n, sum(amount) AS total FROM sales GROUP BY shop"
	want := h.Query(t, query+" ORDER BY shop")
	def := h.Rollup(t, query, mrrollup.Options{Into: "per_shop"})
	sink := &breakingSink{Postgres: openPostgres(t, dsn), breakAll: p.breakAll}
	cfg := mapreducetest.Config(t)
	cfg.Buckets = 1
	if _, err := mapreduce.Run(context.Background(), def, h.Source(), sink, cfg); err != nil {
		t.Fatal(err)
	}
	if got := h.Query(t, "SELECT shop, n, total FROM per_shop ORDER BY shop"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("per_shop = %v, want %v", got, want)
	}
}
