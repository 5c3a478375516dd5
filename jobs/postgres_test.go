package jobs_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/jobs"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
	"github.com/mrengine/mr/sinks"
	"github.com/mrengine/mr/sources"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// pgBundle is a seeded events table in a schema of its own, with a source
// and a sink on it.
type pgBundle struct {
	db     *pgxpool.Pool // survives a server restart, unlike a lone conn
	src    *sources.Postgres
	sink   *sinks.Postgres
	config mapreduce.Config
}

func setupPostgres(t *testing.T, gen eventgen.Config) *pgBundle {
	t.Helper()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	db := pgtest.PoolFor(t, dsn)
	if err := eventgen.SeedPostgres(ctx, db, gen, true); err != nil {
		t.Fatal(err)
	}
	src, err := sources.OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	sink, err := sinks.OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	return &pgBundle{db: db, src: src, sink: sink, config: runtest.Config(t)}
}

func (b *pgBundle) run(ctx context.Context, src mapreduce.Source) (mapreduce.Summary, error) {
	def, err := jobs.Lookup("daily_rollup")
	if err != nil {
		panic(err)
	}
	return mapreduce.Run(ctx, def, src, b.sink, b.config)
}

func (b *pgBundle) count(t *testing.T, query string) int64 {
	t.Helper()
	var n int64
	if err := b.db.QueryRow(context.Background(), `SELECT count(*) FROM (`+query+`) q`).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

const pgOutput = `SELECT account_id, day, category, events, total_cents FROM daily_rollup`

// check compares daily_rollup with the ground truth (EXCEPT ALL both ways,
// so a duplicate row would show) and the DLQ with the poison rows.
func (b *pgBundle) check(t *testing.T, s mapreduce.Summary) {
	t.Helper()
	if n := b.count(t, pgOutput+` EXCEPT ALL `+eventgen.PostgresTruth); n != 0 {
		t.Errorf("daily_rollup has %d rows the ground truth lacks", n)
	}
	if n := b.count(t, eventgen.PostgresTruth+` EXCEPT ALL `+pgOutput); n != 0 {
		t.Errorf("daily_rollup lacks %d rows of the ground truth", n)
	}
	rows, _ := b.db.Query(context.Background(), eventgen.PostgresPoisonIDs)
	want, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if got := runtest.DeadLetterCursors(t, b.config, s.RunID); len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("the DLQ holds %d rows, want the %d poison rows once each", len(got), len(want))
	}
}

func TestDailyRollup_Postgres(t *testing.T) {
	t.Parallel()
	gen := eventgen.Config{Rows: 40_000, Seed: 11, PoisonRate: 0.002, NullPayloadRate: 0.001, GapEvery: 30, HotAccounts: 3}
	b := setupPostgres(t, gen)
	b.config.Partitions, b.config.Buckets, b.config.Workers, b.config.ChunkSize = 7, 5, 2, 900
	s, err := b.run(context.Background(), b.src)
	if err != nil {
		t.Fatal(err)
	}
	if s.Processed != gen.Rows {
		t.Errorf("processed %d rows, want %d", s.Processed, gen.Rows)
	}
	b.check(t, s)

	// A fresh run over the same table leaves it exactly as it was.
	b.config.Fresh = true
	s, err = b.run(context.Background(), b.src)
	if err != nil {
		t.Fatal(err)
	}
	if s.Groups == 0 || s.PartitionsResumed != 0 {
		t.Errorf("the fresh run wrote %d groups and resumed %d partitions", s.Groups, s.PartitionsResumed)
	}
	b.check(t, s)
}

// restartingSource restarts the server after a number of chunks, once.
type restartingSource struct {
	mapreduce.Source
	t      *testing.T
	after  int64
	chunks atomic.Int64
}

func (s *restartingSource) ReadChunk(ctx context.Context, in mapreduce.Input, r partition.Range, limit int, b *mapreduce.Batch) error {
	if s.chunks.Add(1) == s.after {
		pgtest.Restart(s.t)
	}
	return s.Source.ReadChunk(ctx, in, r, limit, b)
}

// TestDailyRollup_PostgresRestart restarts PostgreSQL in the middle of a
// run. The run rides it out or fails resumably; either way the result is
// exact. It must not run in parallel: a restart cuts every connection.
func TestDailyRollup_PostgresRestart(t *testing.T) {
	gen := eventgen.Config{Rows: 30_000, Seed: 12, PoisonRate: 0.002, GapEvery: 40}
	b := setupPostgres(t, gen)
	b.config.Partitions, b.config.Buckets, b.config.Workers, b.config.ChunkSize = 4, 4, 2, 500
	b.config.CheckpointInterval = time.Nanosecond
	s, err := b.run(context.Background(), &restartingSource{Source: b.src, t: t, after: 15})
	if err != nil {
		t.Logf("the run failed across the restart (%v); resuming", err)
		if s, err = b.run(context.Background(), b.src); err != nil {
			t.Fatal(err)
		}
	}
	b.check(t, s)
}

// TestDailyRollup_PostgresBadInput checks that bad input is one clear
// error that leaves other tables alone.
func TestDailyRollup_PostgresBadInput(t *testing.T) {
	t.Parallel()
	b := setupPostgres(t, eventgen.Config{Rows: 100, Seed: 13})
	ctx := context.Background()
	if _, err := b.db.Exec(ctx, `CREATE TABLE keep (id bigint PRIMARY KEY); INSERT INTO keep VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ table, cursor, want string }{
		{"missing", "", `table "missing" not found`},
		{"events", "nope", `column "nope" not found`},
		{"events", "account_id", `must be unique`},
		{"events\"; DROP TABLE keep; --", "", `not found`},
	} {
		b.config.Table, b.config.Cursor = c.table, c.cursor
		_, err := b.run(ctx, b.src)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("table %q cursor %q: err = %v, want it to say %q", c.table, c.cursor, err, c.want)
		}
	}
	if n := b.count(t, `SELECT * FROM keep`); n != 1 {
		t.Errorf("table keep holds %d rows after the bad runs, want 1", n)
	}
}
