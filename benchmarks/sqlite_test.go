package benchmarks

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/jobs"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/sinks"
	"github.com/mrengine/mr/sources"
)

// seededSQLite returns a SQLite file holding rows generated events, seeding
// it only when an earlier run has not.
func seededSQLite(b *testing.B, rows int64) string {
	b.Helper()
	cfg := eventgen.Config{Rows: rows, Seed: 1, PoisonRate: 0.0001}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("mr-bench-events-%d.db", rows))
	ok, err := eventgen.Seeded(context.Background(), path, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if !ok {
		if err := eventgen.SeedSQLite(context.Background(), path, cfg); err != nil {
			b.Fatal(err)
		}
	}
	return path
}

// sqliteInDatabase is the baseline: the whole rollup as one statement that
// SQLite runs on its own.
const sqliteInDatabase = `
	INSERT INTO daily_rollup_sql (account_id, day, category, events, total_cents)
	SELECT account_id, date(ts), category, count(*), sum(amount_cents) FROM events
	WHERE CASE WHEN json_valid(payload) THEN json_type(payload) = 'object' ELSE 0 END
	GROUP BY 1, 2, 3
	ON CONFLICT (account_id, day, category) DO UPDATE
	SET events = excluded.events, total_cents = excluded.total_cents`

// timeSQLiteInDatabase runs the baseline statement into an empty table and
// returns how long it took.
func timeSQLiteInDatabase(b *testing.B, path string) time.Duration {
	b.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		`DROP TABLE IF EXISTS daily_rollup_sql`,
		`CREATE TABLE daily_rollup_sql (account_id INTEGER NOT NULL, day TEXT NOT NULL, category TEXT NOT NULL,
			events INTEGER, total_cents INTEGER, PRIMARY KEY (account_id, day, category))`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	if _, err := db.Exec(sqliteInDatabase); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkDailyRollup_SQLite runs daily_rollup end to end over a SQLite
// file (source and sink), a fresh run each iteration, and reports its rate
// and its time relative to SQLite's own INSERT … SELECT … GROUP BY.
func BenchmarkDailyRollup_SQLite(b *testing.B) {
	def, err := jobs.Lookup("daily_rollup")
	if err != nil {
		b.Fatal(err)
	}
	for _, rows := range []int64{smallRows, heavyRows, hugeRows} {
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("rows=%d/workers=%d", rows, workers), func(b *testing.B) {
				skipUnlessAllowed(b, rows)
				path := seededSQLite(b, rows)
				baseline := timeSQLiteInDatabase(b, path)
				src, err := sources.OpenSQLite(path)
				if err != nil {
					b.Fatal(err)
				}
				defer src.Close()
				sink, err := sinks.OpenSQLite(path)
				if err != nil {
					b.Fatal(err)
				}
				defer sink.Close()
				cfg := benchConfig(b)
				cfg.Workers = workers
				b.ReportAllocs()
				b.ResetTimer()
				var s mapreduce.Summary
				for b.Loop() {
					if s, err = mapreduce.Run(context.Background(), def, src, sink, cfg); err != nil {
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
