package jobs_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/jobs"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
	"github.com/mrengine/mr/sinks"
	"github.com/mrengine/mr/sources"
)

type testBundle struct {
	db     string // the SQLite file, source and sink at once
	src    *sources.SQLite
	sink   *sinks.SQLite
	sqlDB  *sql.DB
	config mapreduce.Config
}

func setup(t *testing.T, gen eventgen.Config) *testBundle {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.db")
	if err := eventgen.SeedSQLite(context.Background(), path, gen); err != nil {
		t.Fatal(err)
	}
	src, err := sources.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	sink, err := sinks.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &testBundle{db: path, src: src, sink: sink, sqlDB: db, config: runtest.Config(t)}
}

func (b *testBundle) run(ctx context.Context, src mapreduce.Source) (mapreduce.Summary, error) {
	def, err := jobs.Lookup("daily_rollup")
	if err != nil {
		panic(err)
	}
	return mapreduce.Run(ctx, def, src, b.sink, b.config)
}

func (b *testBundle) exec(t *testing.T, query string) {
	t.Helper()
	if _, err := b.sqlDB.Exec(query); err != nil {
		t.Fatal(err)
	}
}

// count runs a query that returns one number.
func (b *testBundle) count(t *testing.T, query string) int64 {
	t.Helper()
	var n int64
	if err := b.sqlDB.QueryRow(query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkOutput compares daily_rollup with the ground truth, both ways.
func (b *testBundle) checkOutput(t *testing.T) {
	t.Helper()
	out := `SELECT account_id, day, category, events, total_cents FROM daily_rollup`
	if n := b.count(t, `SELECT count(*) FROM (`+out+` EXCEPT `+eventgen.SQLiteTruth+`)`); n != 0 {
		t.Errorf("daily_rollup has %d rows the ground truth lacks", n)
	}
	if n := b.count(t, `SELECT count(*) FROM (`+eventgen.SQLiteTruth+` EXCEPT `+out+`)`); n != 0 {
		t.Errorf("daily_rollup lacks %d rows of the ground truth", n)
	}
	if n := b.count(t, `SELECT count(*) FROM daily_rollup`); n == 0 {
		t.Error("daily_rollup is empty")
	}
}

// checkDLQ checks that the DLQ holds each poison row exactly once.
func (b *testBundle) checkDLQ(t *testing.T, run string) {
	t.Helper()
	rows, err := b.sqlDB.Query(eventgen.SQLitePoisonIDs)
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		want = append(want, id)
	}
	if got := runtest.DeadLetterCursors(t, b.config, run); len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("DLQ holds %d rows, want the %d poison rows", len(got), len(want))
	}
}

func TestDailyRollup_SQLite(t *testing.T) {
	t.Parallel()
	gen := eventgen.Config{Rows: 5_000, Seed: 7, PoisonRate: 0.004, NullPayloadRate: 0.002, GapEvery: 20, Accounts: 300}
	for _, c := range []struct {
		partitions, buckets, workers, chunk int
		hole                                bool // delete the middle 40% of the ids
	}{
		{1, 1, 1, 1000, false},
		{4, 8, 2, 999, false},
		{3, 5, 4, 1, false},
		{10, 3, 2, 64, true}, // partitions 4 to 6 are empty
		{16, 16, 8, 5_000, true},
	} {
		t.Run(fmt.Sprintf("partitions=%d/buckets=%d/workers=%d/chunk=%d/hole=%t", c.partitions, c.buckets, c.workers, c.chunk, c.hole), func(t *testing.T) {
			t.Parallel()
			b := setup(t, gen)
			if c.hole {
				b.exec(t, `DELETE FROM events WHERE id BETWEEN
					(SELECT min(id) + (max(id) - min(id)) * 3 / 10 FROM events) AND
					(SELECT min(id) + (max(id) - min(id)) * 7 / 10 FROM events)`)
			}
			b.config.Partitions, b.config.Buckets, b.config.Workers, b.config.ChunkSize = c.partitions, c.buckets, c.workers, c.chunk
			s, err := b.run(context.Background(), b.src)
			if err != nil {
				t.Fatal(err)
			}
			b.checkOutput(t)
			b.checkDLQ(t, s.RunID)
			if rows := b.count(t, `SELECT count(*) FROM events`); s.Processed != rows || s.Total != rows {
				t.Errorf("summary: %d/%d rows processed, want %d", s.Processed, s.Total, rows)
			}
		})
	}
}

// cancellingSource cancels its run after a number of chunks, the way an
// interrupt would.
type cancellingSource struct {
	mapreduce.Source
	after  int64
	chunks atomic.Int64
	cancel context.CancelFunc
}

func (s *cancellingSource) ReadChunk(ctx context.Context, in mapreduce.Input, r partition.Range, limit int, b *mapreduce.Batch) error {
	if s.chunks.Add(1) > s.after {
		s.cancel()
		return context.Canceled
	}
	return s.Source.ReadChunk(ctx, in, r, limit, b)
}

func TestDailyRollup_SQLite_Resume(t *testing.T) {
	t.Parallel()
	gen := eventgen.Config{Rows: 10_000, Seed: 8, PoisonRate: 0.005, GapEvery: 100}
	b := setup(t, gen)
	b.config.Partitions, b.config.Buckets, b.config.Workers, b.config.ChunkSize = 6, 4, 2, 200
	b.config.CheckpointInterval = time.Nanosecond // commit every chunk

	ctx, cancel := context.WithCancel(context.Background())
	first, err := b.run(ctx, &cancellingSource{Source: b.src, after: 20, cancel: cancel})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run returned %v", err)
	}
	second, err := b.run(context.Background(), b.src)
	if err != nil {
		t.Fatal(err)
	}
	if first.Processed == 0 || first.Processed == gen.Rows || second.Resumed != first.Processed || second.Read != gen.Rows-first.Processed {
		t.Errorf("first run committed %d rows; the second resumed %d and read %d, want %d",
			first.Processed, second.Resumed, second.Read, gen.Rows-first.Processed)
	}
	b.checkOutput(t)
	b.checkDLQ(t, second.RunID)
}
