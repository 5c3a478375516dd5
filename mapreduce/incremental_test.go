package mapreduce_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/mapreduce"
)

// markSource is a memSource whose rows all have committed: its largest
// cursor is a safe mark.
type markSource struct{ *memSource }

func (s markSource) Mark(context.Context, mapreduce.Input) (int64, error) {
	if len(s.rows) == 0 {
		return -1 << 40, nil
	}
	return s.rows[len(s.rows)-1].id, nil
}

// mergeSink is a memSink that merges: it hands each part the stored
// totals of its keys, as a database sink reads them back.
type mergeSink struct {
	*memSink
	mergedMu sync.Mutex
	merged   int // buckets merged
}

func (s *mergeSink) Merge(_ context.Context, _ mapreduce.OutputTable, cols []mapreduce.Field, commit string, bucket int, m mapreduce.MergeParts) error {
	if len(cols) != 1 || cols[0].Name != "total" {
		return errors.New("merge asks for the wrong columns")
	}
	staged := map[string]int64{}
	for m.Next() {
		keys := m.Keys()
		var stored []any
		s.mu.Lock()
		for keys.Next() {
			k, _ := keys.Values()
			if v, ok := s.table[k[0].(string)]; ok {
				stored = append(stored, []any{k[0], v})
			}
		}
		s.mu.Unlock()
		rows, err := m.Merge(&sliceRows{rows: stored})
		if err != nil {
			return err
		}
		for rows.Next() {
			v, _ := rows.Values()
			staged[v[0].(string)] = v[1].(int64)
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	if err := m.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := commit + "/" + strconv.Itoa(bucket)
	if s.commits[key] {
		return nil
	}
	for k, v := range staged {
		s.table[k] = v
	}
	s.commits[key] = true
	s.mergedMu.Lock()
	s.merged++
	s.mergedMu.Unlock()
	return nil
}

// sliceRows yields rows of values.
type sliceRows struct {
	rows []any
	cur  []any
}

func (r *sliceRows) Next() bool {
	if len(r.rows) == 0 {
		return false
	}
	r.cur, r.rows = r.rows[0].([]any), r.rows[1:]
	return true
}
func (r *sliceRows) Values() ([]any, error) { return r.cur, nil }
func (r *sliceRows) Err() error             { return nil }

func incrementalJob(t *testing.T) *mapreduce.Job[string, int64] {
	j := sumJob(t)
	j.Incremental = true
	return j
}

// TestRun_Incremental runs a table in full, then in batches of the rows
// appended since, with a stop in the middle of one: each batch reads only
// its new rows once, and the table always equals the sums over every row.
func TestRun_Incremental(t *testing.T) {
	t.Parallel()
	all := randomRows(11, 12_000, 500, 0.003)
	src := &memSource{rows: all[:6000], read: map[int64]int{}}
	sink := &mergeSink{memSink: newMemSink()}
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Buckets, cfg.Workers, cfg.ChunkSize, cfg.Incremental = 4, 5, 2, 100, true
	ctx := context.Background()
	job := incrementalJob(t)

	s, err := mapreduce.Run(ctx, job, markSource{src}, sink, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Batch != 0 || s.Mark == nil || *s.Mark != all[5999].id {
		t.Fatalf("first run: batch %d, mark %v; want a full run through %d", s.Batch, s.Mark, all[5999].id)
	}
	checkTable(t, sink.table, truth(src.rows))

	for i, end := range []int{6000, 8000, 8001, 12_000} { // no new rows, some, one, many
		src.rows = all[:end]
		if i == 3 { // stop the batch in its map phase, then resume it
			stopAt := src.chunks.Load() + 5
			stopCtx, cancel := context.WithCancel(ctx)
			src.afterChunk = func(n int64) {
				if n == stopAt {
					cancel()
				}
			}
			if _, err := mapreduce.Run(stopCtx, job, markSource{src}, sink, cfg); !errors.Is(err, context.Canceled) {
				t.Fatalf("stopped batch: %v", err)
			}
			src.afterChunk = nil
			cancel()
		}
		s, err := mapreduce.Run(ctx, job, markSource{src}, sink, cfg)
		if err != nil {
			t.Fatalf("batch %d: %v", i+1, err)
		}
		if s.Batch < 1 || *s.Mark != all[end-1].id {
			t.Errorf("batch %d: summary says batch %d through %d, want through %d", i+1, s.Batch, *s.Mark, all[end-1].id)
		}
		checkTable(t, sink.table, truth(src.rows))
	}
	// The stopped batch reads again what it had not committed; every
	// other row is read once.
	for id, n := range src.read {
		if n != 1 && id <= all[8000].id {
			t.Errorf("row %d read %d times", id, n)
		}
	}
	if len(src.read) != len(all) {
		t.Errorf("read %d distinct rows, want %d", len(src.read), len(all))
	}
	if sink.applied != cfg.Buckets || sink.merged == 0 {
		t.Errorf("%d buckets applied, %d merged: want the full run's %d applied, the batches' merged", sink.applied, sink.merged, cfg.Buckets)
	}
	if got, want := runtest.DeadLetterCursors(t, cfg, s.RunID), badIDs(all); !slices.Equal(got, want) {
		t.Errorf("the dead letters of every batch are %v, want %v", got, want)
	}
	if _, err := mapreduce.Replay(ctx, job, markSource{src}, sink, cfg); err == nil || !strings.Contains(err.Error(), "incremental batches") {
		t.Errorf("replay of a batch = %v, want it refused", err)
	}
}

// TestRun_IncrementalRefused names what keeps a run from being
// incremental.
func TestRun_IncrementalRefused(t *testing.T) {
	t.Parallel()
	rows := randomRows(12, 100, 5, 0)
	cfg := runtest.Config(t)
	cfg.Incremental = true
	src := &memSource{rows: rows, read: map[int64]int{}}
	_, err := mapreduce.Run(context.Background(), sumJob(t), src, newMemSink(), cfg)
	for _, want := range []string{"does not declare that its Combine may merge", "cannot take a safe high-water mark", "cannot read back the groups"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Run = %v, want it to say %q", err, want)
		}
	}
}
