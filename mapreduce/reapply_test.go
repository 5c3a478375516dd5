package mapreduce_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/mapreduce"
)

// flakySink reads some of a bucket's rows and then reports the bucket not
// applied, as a connection that breaks mid-COPY makes a database sink do,
// for the first failures Applies.
type flakySink struct {
	*memSink
	failures atomic.Int64
}

func (s *flakySink) Apply(ctx context.Context, t mapreduce.OutputTable, commit string, bucket int, rows mapreduce.OutputRows) error {
	if s.failures.Add(-1) >= 0 {
		rows.Next() // a row read, which cannot be read again
		return fmt.Errorf("connection reset: %w", mapreduce.ErrNotApplied)
	}
	return s.memSink.Apply(ctx, t, commit, bucket, rows)
}

// TestRun_BucketAppliedAgain: a bucket the sink could not apply is reduced
// again from its files, so the run ends exact without a restart; one that
// keeps failing stops the run after a few attempts, resumable.
func TestRun_BucketAppliedAgain(t *testing.T) {
	t.Parallel()
	rows := randomRows(9, 3_000, 300, 0)
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Buckets, cfg.Workers = 3, 1, 1

	sink := &flakySink{memSink: newMemSink()}
	sink.failures.Store(3)
	if _, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg); err != nil {
		t.Fatal(err)
	}
	checkTable(t, sink.table, truth(rows))

	sink = &flakySink{memSink: newMemSink()}
	sink.failures.Store(1000)
	cfg.Workdir = t.TempDir()
	_, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg)
	if !errors.Is(err, mapreduce.ErrNotApplied) {
		t.Fatalf("err = %v, want ErrNotApplied", err)
	}
	if tries := 1000 - sink.failures.Load(); tries != 4 {
		t.Errorf("the bucket was tried %d times, want 4", tries)
	}
	sink.failures.Store(0)
	if _, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg); err != nil {
		t.Fatal(err)
	}
	checkTable(t, sink.table, truth(rows))
}
