package mapreduce_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/mapreduce"
)

// TestRunner_Stop stops a run from its source after a few chunks: every
// chunk read is committed before the run returns ErrStopped, so the run
// that resumes it reads no row twice and ends exact.
func TestRunner_Stop(t *testing.T) {
	t.Parallel()
	rows := randomRows(11, 20_000, 500, 0.001)
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Workers, cfg.ChunkSize = 4, 2, 100
	cfg.CheckpointInterval = 1 << 62 // commits only where the stop makes one
	src := &memSource{rows: rows, read: map[int64]int{}}
	sink := newMemSink()
	r, err := mapreduce.Open(context.Background(), sumJob(t), src, sink, cfg)
	if err != nil {
		t.Fatal(err)
	}
	src.afterChunk = func(n int64) {
		if n == 30 {
			r.Stop()
		}
	}
	s, err := r.Run(context.Background())
	r.Close()
	if !errors.Is(err, mapreduce.ErrStopped) {
		t.Fatalf("err = %v, want ErrStopped", err)
	}
	if s.Read == 0 || s.Processed != s.Read {
		t.Errorf("stopped after reading %d rows with %d committed: every row read must be committed", s.Read, s.Processed)
	}
	if len(sink.table) != 0 {
		t.Errorf("a run stopped in its map phase wrote %d groups", len(sink.table))
	}

	src.afterChunk = nil
	if _, err := mapreduce.Run(context.Background(), sumJob(t), src, sink, cfg); err != nil {
		t.Fatal(err)
	}
	checkTable(t, sink.table, truth(rows))
	for id, n := range src.read {
		if n != 1 {
			t.Fatalf("row %d read %d times", id, n)
		}
	}
}
