package benchmarks

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/jobs"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/sinks"
)

// BenchmarkSinkUpsert applies rows daily_rollup groups to an empty output
// table through sinks.Postgres, split into shuffleBuckets buckets applied
// GOMAXPROCS at a time, as the engine's reduce phase does: per bucket one
// transaction that COPYs into a stage and upserts from it.
func BenchmarkSinkUpsert(b *testing.B) {
	b.Cleanup(dropRollupEntries)
	for _, rows := range []int{smallRows, heavyRows} {
		b.Run(fmt.Sprintf("%s/buckets=%d", rowsName(int64(rows)), shuffleBuckets), func(b *testing.B) {
			skipUnlessAllowed(b, int64(rows))
			ctx := context.Background()
			dsn := pgtest.DSN(b)
			sink, err := sinks.OpenPostgres(ctx, dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Close()
			conn := connect(b, dsn)
			out := jobs.DailyRollup.Spec().Output
			if err := sink.Prepare(ctx, out); err != nil {
				b.Fatal(err)
			}
			entries, size := rollupEntries(rows)
			buckets := make([][]rollupEntry, shuffleBuckets)
			for i, e := range entries {
				buckets[i%shuffleBuckets] = append(buckets[i%shuffleBuckets], e)
			}
			run := 0
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				execAll(b, conn, "TRUNCATE daily_rollup, mr_bucket_commits", "ANALYZE daily_rollup")
				run++
				commit := fmt.Sprintf("bench-%d", run)
				b.StartTimer()
				g, gctx := errgroup.WithContext(ctx)
				g.SetLimit(runtime.GOMAXPROCS(0))
				for bucket, es := range buckets {
					g.Go(func() error { return sink.Apply(gctx, out, commit, bucket, &entryRows{entries: es}) })
				}
				if err := g.Wait(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// entryRows yields rollup entries as daily_rollup output rows.
type entryRows struct {
	entries []rollupEntry
	i       int
	values  [5]any
}

var _ mapreduce.OutputRows = (*entryRows)(nil)

func (r *entryRows) Next() bool {
	if r.i >= len(r.entries) {
		return false
	}
	e := r.entries[r.i]
	r.i++
	r.values = [5]any{e.key.Account, e.key.Day, e.key.Category, e.val.Events, e.val.TotalCents}
	return true
}

func (r *entryRows) Values() ([]any, error) { return r.values[:], nil }
func (r *entryRows) Err() error             { return nil }
