package mapreduce_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/sinks"
	"github.com/mrengine/mr/sources"
)

// These tests run the engine over a real PostgreSQL, as source and sink,
// and check the output table against the same aggregate computed by SQL.

// pageTruth is what page_clicks must hold while clicksJob is not broken:
// the clicks per page.
const pageTruth = `SELECT page, count(*) AS clicks FROM clicks GROUP BY page`

// clicksJob is Clicks, with rows whose page starts with "bad" failing
// while broken is set.
func clicksJob(broken *atomic.Bool) *mapreduce.Job[string, int64] {
	j := Clicks
	j.Name = "clicks_replace_test"
	j.Map = func(ctx context.Context, row mapreduce.Row, emit func(string, int64)) error {
		if broken.Load() && strings.HasPrefix(row.String(0), "bad") {
			return mapreduce.Permanent(errors.New("bad page"))
		}
		emit(row.String(0), 1)
		return nil
	}
	return &j
}

type replaceBundle struct {
	pool *pgxpool.Pool
	src  mapreduce.Source
	sink mapreduce.Sink
	cfg  mapreduce.Config
}

func setupReplace(t *testing.T, rows int) *replaceBundle {
	t.Helper()
	dsn := pgtest.DSN(t)
	b := &replaceBundle{pool: pgtest.PoolFor(t, dsn), cfg: runtest.Config(t)}
	b.cfg.Partitions, b.cfg.Buckets, b.cfg.Workers, b.cfg.ChunkSize = 3, 4, 2, 200
	b.cfg.MaxFailureRate = 1
	b.exec(t, `CREATE TABLE clicks (id bigint PRIMARY KEY, page text)`,
		`INSERT INTO clicks SELECT i, CASE WHEN i % 97 = 0 THEN 'bad' || (i % 5) ELSE '/p' || (i * 7919 % 61) END
			FROM generate_series(1, $1) i`, rows)
	src, err := sources.OpenPostgres(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	sink, err := sinks.OpenPostgres(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	b.src, b.sink = src, sink
	return b
}

// exec runs each statement, or with args the one statement before them.
func (b *replaceBundle) exec(t *testing.T, stmts ...any) {
	t.Helper()
	for i := 0; i < len(stmts); i++ {
		sql := stmts[i].(string)
		var args []any
		for i+1 < len(stmts) {
			if _, ok := stmts[i+1].(string); ok {
				break
			}
			args = append(args, stmts[i+1])
			i++
		}
		if _, err := b.pool.Exec(t.Context(), sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

// differ returns how many rows of page_clicks differ from truth, both
// ways.
func (b *replaceBundle) differ(t *testing.T, truth string) int {
	t.Helper()
	const out = `SELECT page, clicks FROM page_clicks`
	truth = `SELECT * FROM (` + truth + `) t`
	var n int
	err := b.pool.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM (`+out+` EXCEPT ALL `+truth+`) a)
		+ (SELECT count(*) FROM (`+truth+` EXCEPT ALL `+out+`) b)`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (b *replaceBundle) run(t *testing.T, job *mapreduce.Job[string, int64], fresh bool) (mapreduce.Summary, error) {
	t.Helper()
	cfg := b.cfg
	cfg.Fresh = fresh
	return mapreduce.Run(t.Context(), job, b.src, b.sink, cfg)
}

// TestRun_Replaces seeds the output table with stale groups, runs, then
// deletes source rows and runs again with Fresh: each time the table holds
// exactly the GROUP BY of the source, and nothing of the staging table is
// left.
func TestRun_Replaces(t *testing.T) {
	t.Parallel()
	b := setupReplace(t, 5_000)
	var broken atomic.Bool
	b.exec(t, `CREATE TABLE page_clicks (page text PRIMARY KEY, clicks bigint)`,
		`INSERT INTO page_clicks VALUES ('/stale', 99), ('/p1', 12345)`)
	job := clicksJob(&broken)
	if _, err := b.run(t, job, false); err != nil {
		t.Fatal(err)
	}
	if n := b.differ(t, pageTruth); n != 0 {
		t.Errorf("after the first run %d rows differ from the GROUP BY of the source", n)
	}

	b.exec(t, `DELETE FROM clicks WHERE page IN ('/p3', '/p7')`)
	s, err := b.run(t, job, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := b.differ(t, pageTruth); n != 0 {
		t.Errorf("after deleting two pages' rows and a fresh run, %d rows differ from the GROUP BY of the source", n)
	}
	var groups int64
	if err := b.pool.QueryRow(t.Context(), `SELECT count(*) FROM page_clicks`).Scan(&groups); err != nil || groups != s.Groups {
		t.Errorf("page_clicks has %d rows (%v), the run wrote %d groups", groups, err, s.Groups)
	}
	var staging int
	err = b.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_class WHERE relnamespace = current_schema()::regnamespace
		AND relname LIKE 'page\_clicks\_mr\_next\_%'`).Scan(&staging)
	if err != nil || staging != 0 {
		t.Errorf("%d staging tables are left (%v)", staging, err)
	}

	// Running the finished run again changes nothing.
	if s, err := b.run(t, job, false); err != nil || s.BucketsResumed != s.Buckets {
		t.Errorf("the finished run again: %v, %d/%d buckets resumed", err, s.BucketsResumed, s.Buckets)
	}
	if n := b.differ(t, pageTruth); n != 0 {
		t.Errorf("after running the finished run again %d rows differ", n)
	}
}

// TestRun_SwapBlockedByView: a view on the output table stops the swap
// with an error naming it; the old table stays readable meanwhile, and
// once the view is dropped the same run resumes and swaps.
func TestRun_SwapBlockedByView(t *testing.T) {
	t.Parallel()
	b := setupReplace(t, 2_000)
	var broken atomic.Bool
	b.exec(t, `CREATE TABLE page_clicks (page text PRIMARY KEY, clicks bigint)`,
		`INSERT INTO page_clicks VALUES ('/stale', 99)`,
		`CREATE VIEW top_pages AS SELECT page FROM page_clicks WHERE clicks > 10`)
	job := clicksJob(&broken)
	_, err := b.run(t, job, false)
	if err == nil || !strings.Contains(err.Error(), "top_pages") {
		t.Fatalf("run error = %v, want one naming the view top_pages", err)
	}
	if n := b.differ(t, `SELECT '/stale'::text, 99::bigint`); n != 0 {
		t.Errorf("the failed swap changed page_clicks")
	}
	b.exec(t, `DROP VIEW top_pages`)
	s, err := b.run(t, job, false)
	if err != nil {
		t.Fatal(err)
	}
	if s.BucketsResumed != s.Buckets {
		t.Errorf("the resumed run re-applied buckets: %d/%d resumed", s.BucketsResumed, s.Buckets)
	}
	if n := b.differ(t, pageTruth); n != 0 {
		t.Errorf("after the resumed run %d rows differ from the GROUP BY of the source", n)
	}
}

// TestReplay_Upserts: replaying dead letters into a finished run's table
// corrects the groups they touch and replaces nothing: a row put into the
// table after the run stays.
func TestReplay_Upserts(t *testing.T) {
	t.Parallel()
	b := setupReplace(t, 3_000)
	var broken atomic.Bool
	broken.Store(true)
	job := clicksJob(&broken)
	s, err := b.run(t, job, false)
	if err != nil && !errors.Is(err, mapreduce.ErrFailureRate) {
		t.Fatal(err)
	}
	if s.Failed == 0 {
		t.Fatal("no row failed")
	}
	b.exec(t, `INSERT INTO page_clicks VALUES ('/kept', 1)`)
	broken.Store(false)
	res, err := mapreduce.Replay(t.Context(), job, b.src, b.sink, b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Succeeded != int(s.Failed) {
		t.Errorf("replay: %+v, want all %d letters to succeed", res, s.Failed)
	}
	const truth = pageTruth + ` UNION ALL SELECT '/kept', 1`
	if n := b.differ(t, truth); n != 0 {
		t.Errorf("after the replay %d rows differ from the GROUP BY of the source plus the row put in by hand", n)
	}
}
