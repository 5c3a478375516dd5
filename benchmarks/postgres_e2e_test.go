package benchmarks

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mrengine/mr/jobs"
	"github.com/mrengine/mr/mapreduce"
)

// BenchmarkDailyRollup_Postgres runs daily_rollup end to end on
// PostgreSQL (source and sink in the same database), a fresh run each
// iteration, and reports its rate and its time relative to the
// in-database statement of BenchmarkCompare/shape=high, run once before.
func BenchmarkDailyRollup_Postgres(b *testing.B) {
	def, err := jobs.Lookup("daily_rollup")
	if err != nil {
		b.Fatal(err)
	}
	high := shapes[0]
	for _, rows := range []int64{smallRows, heavyRows, hugeRows} {
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/workers=%d", rowsName(rows), workers), func(b *testing.B) {
				skipUnlessAllowed(b, rows)
				ctx := context.Background()
				ev := seededPostgres(b, rows)
				conn := connect(b, ev.dsn)
				resetOutput(b, conn, high)
				start := time.Now()
				if _, err := conn.Exec(ctx, high.inDB); err != nil {
					b.Fatal(err)
				}
				baseline := time.Since(start)
				src, sink := openPostgres(b, ev.dsn)
				cfg := benchConfig(b)
				cfg.Workers = workers
				var s mapreduce.Summary
				b.SetBytes(ev.bytes)
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					resetOutput(b, conn, high)
					b.StartTimer()
					if s, err = mapreduce.Run(ctx, def, src, sink, cfg); err != nil {
						b.Fatal(err)
					}
				}
				perRun := b.Elapsed() / time.Duration(b.N)
				b.ReportMetric(float64(rows)/perRun.Seconds(), "rows/s")
				b.ReportMetric(float64(s.BytesSpilled), "spilled-bytes")
				b.ReportMetric(perRun.Seconds()/baseline.Seconds(), "x-in-db-time")
			})
		}
	}
}
