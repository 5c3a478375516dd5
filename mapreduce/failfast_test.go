package mapreduce_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/mapreduce"
)

// failingRows makes n rows (ids 1 to n) of the given kind.
func failingRows(n int, kind string) []memRow {
	rows := make([]memRow, n)
	for i := range rows {
		rows[i] = memRow{id: int64(i + 1), group: fmt.Sprintf("g%d", i%97), amount: int64(i % 1000), kind: kind}
	}
	return rows
}

// fixedJob is sumJob with its bug fixed: no row fails. Its name, and so
// its run, is sumJob's.
func fixedJob(t *testing.T) *mapreduce.Job[string, int64] {
	j := sumJob(t)
	j.Map = func(_ context.Context, row mapreduce.Row, emit func(string, int64)) error {
		emit(row.String(0), row.Int64(1))
		return nil
	}
	return j
}

// sumAll is the sink table of rows when none fails, without the rows at
// the cursors skip.
func sumAll(rows []memRow, skip []int64) map[string]int64 {
	m := map[string]int64{}
	for _, r := range rows {
		if !slices.Contains(skip, r.id) {
			m[r.group] += r.amount
		}
	}
	return m
}

// readOnce returns the cursors the sources read, failing the test for a
// row read more than once (by one source or by two).
func readOnce(t *testing.T, srcs ...*memSource) map[int64]bool {
	t.Helper()
	seen := map[int64]bool{}
	for _, src := range srcs {
		for id, n := range src.read {
			if n != 1 || seen[id] {
				t.Fatalf("row %d was read again", id)
			}
			seen[id] = true
		}
	}
	return seen
}

// TestRun_FailFast: a Map that fails every row stops the map phase after
// the sample (1,000 rows of 50,000: 1% would be 500), commits what it
// mapped with its dead letters and reports ErrFailureRate; running again
// resumes from the checkpoints, stops again while the job still fails,
// and runs to the end once it is fixed, after which mr dlq replay counts
// the rows the bug failed. No row is read twice over all of it.
func TestRun_FailFast(t *testing.T) {
	t.Parallel()
	rows := failingRows(50_000, "poison")
	cfg := runtest.Config(t)
	// One worker makes the stop exact; the chunk size divides the sample,
	// so the stop falls on a chunk boundary and no row is read twice.
	cfg.Partitions, cfg.Buckets, cfg.Workers, cfg.ChunkSize = 4, 2, 1, 250
	sink := newMemSink()

	var srcs []*memSource
	run := func(j mapreduce.Definition) (mapreduce.Summary, error) {
		src := &memSource{rows: rows, read: map[int64]int{}}
		srcs = append(srcs, src)
		return mapreduce.Run(context.Background(), j, src, sink, cfg)
	}
	for i, want := range []int64{1000, 2000} {
		s, err := run(sumJob(t))
		if !errors.Is(err, mapreduce.ErrFailureRate) || !s.MapStopped {
			t.Fatalf("run %d of a job that fails every row = %v, %+v; want ErrFailureRate and MapStopped", i+1, err, s)
		}
		wantMsg := fmt.Sprintf("failure rate above the threshold: 1000 of the first 1000 rows this run mapped failed (100.00%%), more than --max-failure-rate 0.05, "+
			"so the map phase stopped early and committed what it had mapped; see the errors with mr dlq list %s. "+
			"Fix the job and run the same command again to resume (the rows that failed wait in the dead-letter queue for mr dlq replay once the run is done), "+
			"or raise --max-failure-rate", s.RunID)
		if err.Error() != wantMsg {
			t.Errorf("error =\n%s\nwant\n%s", err, wantMsg)
		}
		if s.Processed != want || s.Failed != want || s.Read != 1000 || s.Resumed != want-1000 {
			t.Errorf("run %d: summary %+v, want %d processed and failed, 1000 read", i+1, s, want)
		}
		if !strings.HasSuffix(s.String(), ", map phase stopped early (failure rate above --max-failure-rate)") {
			t.Errorf("summary line %q does not say the map phase stopped", s)
		}
		read := readOnce(t, srcs...)
		if got := runtest.DeadLetterCursors(t, cfg, s.RunID); !slices.Equal(got, slices.Sorted(maps.Keys(read))) {
			t.Errorf("run %d: the DLQ holds %d letters, want one for each of the %d rows read", i+1, len(got), len(read))
		}
		if sink.applied != 0 {
			t.Errorf("run %d applied %d buckets: a stopped run must not reduce", i+1, sink.applied)
		}
	}

	// The bug is fixed: the rerun maps the rest, and its 2,000 dead
	// letters (4%) are within the threshold.
	s, err := run(fixedJob(t))
	if err != nil {
		t.Fatalf("the fixed job's run: %v", err)
	}
	if s.Processed != int64(len(rows)) || s.Failed != 2000 || s.Resumed != 2000 || s.MapStopped {
		t.Errorf("the fixed job's run: summary %+v", s)
	}
	if read := readOnce(t, srcs...); len(read) != len(rows) {
		t.Errorf("the three runs read %d rows, want %d", len(read), len(rows))
	}
	failed := runtest.DeadLetterCursors(t, cfg, s.RunID)
	if len(failed) != 2000 {
		t.Fatalf("DLQ holds %d letters after the fixed run, want the 2000 the bug failed", len(failed))
	}
	checkTable(t, sink.table, sumAll(rows, failed))

	res, err := mapreduce.Replay(context.Background(), fixedJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg)
	if err != nil || res.Succeeded != 2000 {
		t.Fatalf("replay = %v, %v; want the 2000 letters to succeed", res, err)
	}
	checkTable(t, sink.table, sumAll(rows, nil))
}

// TestRun_FailFastMidChunk: the stop falls inside a chunk. The rows of
// the chunk after the stop are not committed, so the next run reads them
// again; no committed row is.
func TestRun_FailFastMidChunk(t *testing.T) {
	t.Parallel()
	rows := failingRows(20_000, "poison")
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Buckets, cfg.Workers, cfg.ChunkSize = 2, 2, 1, 300
	first := &memSource{rows: rows, read: map[int64]int{}}
	s, err := mapreduce.Run(context.Background(), sumJob(t), first, newMemSink(), cfg)
	if !errors.Is(err, mapreduce.ErrFailureRate) || s.Processed != 1000 || s.Read != 1000 {
		t.Fatalf("Run = %v, %+v; want a stop after 1000 rows", err, s)
	}
	if len(first.read) != 1200 {
		t.Errorf("the source served %d rows, want the 4 chunks of 300 to the stop", len(first.read))
	}
	if got := runtest.DeadLetterCursors(t, cfg, s.RunID); len(got) != 1000 || got[len(got)-1] != 1000 {
		t.Errorf("the DLQ holds %d letters up to %d, want the 1000 rows mapped", len(got), got[len(got)-1])
	}
	second := &memSource{rows: rows, read: map[int64]int{}}
	sink := newMemSink()
	s, err = mapreduce.Run(context.Background(), fixedJob(t), second, sink, cfg)
	if err != nil || s.Read != int64(len(rows))-1000 {
		t.Fatalf("the fixed job's run = %v, %+v", err, s)
	}
	for id := range second.read {
		if id <= 1000 {
			t.Fatalf("row %d, committed by the first run, was read again", id)
		}
	}
	checkTable(t, sink.table, sumAll(rows, runtest.DeadLetterCursors(t, cfg, s.RunID)))
}

// TestRun_FailFastWorkers: with several workers the other tasks finish
// the row they are mapping and commit too, so the DLQ holds the rows the
// run mapped and the stop comes right after the sample. The rows panic,
// so that every letter has a stack.
func TestRun_FailFastWorkers(t *testing.T) {
	t.Parallel()
	rows := failingRows(50_000, "panic")
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Buckets, cfg.Workers, cfg.ChunkSize, cfg.MaxRetries = 8, 2, 3, 100, 1
	s, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, newMemSink(), cfg)
	if !errors.Is(err, mapreduce.ErrFailureRate) || !s.MapStopped {
		t.Fatalf("Run = %v; want ErrFailureRate", err)
	}
	if s.Processed < 1000 || s.Processed > 1000+int64(cfg.Workers-1) {
		t.Errorf("committed %d rows; want the sample of 1000 plus at most one row of each other worker", s.Processed)
	}
	letters, err := mapreduce.DeadLetters(context.Background(), cfg, s.RunID, mapreduce.DeadLetterFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(letters)) != s.Processed {
		t.Errorf("the DLQ holds %d letters, the run committed %d rows", len(letters), s.Processed)
	}
	for _, l := range letters {
		if l.Error != "panic: boom" || !strings.Contains(l.Stack, "engine_test.go") {
			t.Fatalf("letter %+v: want the panic and its stack", l)
		}
	}
}

// TestRun_FailFastBelowThreshold: a failure rate below the threshold, a
// table smaller than the sample and a threshold of 1 never stop a run
// early.
func TestRun_FailFastBelowThreshold(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		rows    []memRow
		rate    float64
		wantErr error
	}{
		{"rate=3%", randomRows(21, 50_000, 100, 0.045), 0.05, nil}, // poison and panic are 2/3 of the bad rows
		{"below-sample", randomRows(22, 900, 10, 0.5), 0.05, mapreduce.ErrFailureRate},
		{"max-failure-rate=1", failingRows(5_000, "poison"), 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := runtest.Config(t)
			cfg.Partitions, cfg.Workers, cfg.ChunkSize, cfg.MaxFailureRate = 4, 2, 100, tc.rate
			sink := newMemSink()
			s, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: tc.rows, read: map[int64]int{}}, sink, cfg)
			if !errors.Is(err, tc.wantErr) || tc.wantErr == nil && err != nil {
				t.Fatalf("Run = %v, want %v", err, tc.wantErr)
			}
			if s.MapStopped || s.Processed != int64(len(tc.rows)) {
				t.Errorf("summary %+v: want every row processed", s)
			}
			checkTable(t, sink.table, truth(tc.rows))
		})
	}
}
