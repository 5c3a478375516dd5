package mapreduce_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
)

// This file tests the engine against in-memory sources and sinks, with a Go
// map as the ground truth; the end-to-end tests over SQLite live with the
// CLI and in e2e_test.go.

// memRow is a source row: a cursor, a group name, an amount and a payload
// that decides whether Map fails ("poison", "panic", "flaky").
type memRow struct {
	id     int64
	group  string
	amount int64
	kind   string
}

// memSource serves rows from a slice sorted by id, counting what it reads.
type memSource struct {
	rows   []memRow
	chunks atomic.Int64
	mu     sync.Mutex
	read   map[int64]int // cursor → times read
	// afterChunk, if set, runs after each chunk (to cancel a run).
	afterChunk func(n int64)
}

func (s *memSource) String() string { return "mem:test" }

func (s *memSource) Describe(context.Context, mapreduce.Input) (mapreduce.TableInfo, error) {
	if len(s.rows) == 0 {
		return mapreduce.TableInfo{}, nil
	}
	return mapreduce.TableInfo{Min: s.rows[0].id, Max: s.rows[len(s.rows)-1].id, Rows: int64(len(s.rows))}, nil
}

func (s *memSource) ReadChunk(_ context.Context, _ mapreduce.Input, r partition.Range, limit int, b *mapreduce.Batch) error {
	i := sort.Search(len(s.rows), func(i int) bool { return s.rows[i].id >= r.Lo })
	s.mu.Lock()
	for ; i < len(s.rows) && s.rows[i].id < r.Hi && b.Len() < limit; i++ {
		row := s.rows[i]
		b.Append(row.id)
		b.Set(0, row.group)
		b.Set(1, row.amount)
		b.Set(2, row.kind)
		s.read[row.id]++
	}
	s.mu.Unlock()
	n := s.chunks.Add(1)
	if s.afterChunk != nil {
		s.afterChunk(n)
	}
	if b.Len() == 0 {
		return io.EOF
	}
	return nil
}

// streamingSource reads a range as one stream, the way a source with a
// single query per range does.
type streamingSource struct{ *memSource }

func (s streamingSource) Stream(ctx context.Context, in mapreduce.Input, r partition.Range, limit int, b *mapreduce.Batch, fn func(*mapreduce.Batch) error) error {
	return mapreduce.ReadChunks(ctx, s.memSource, in, r, limit, b, fn)
}

// memSink keeps one table and the commit records.
type memSink struct {
	mu      sync.Mutex
	table   map[string]int64 // group → total
	commits map[string]bool  // commit/bucket
	applied int
	// encodeRows reads rows through RowEncoder, as the PostgreSQL sink
	// does, instead of Values.
	encodeRows bool
}

// values reads the current row of rows as s is set to.
func (s *memSink) values(rows mapreduce.OutputRows) ([]any, error) {
	if !s.encodeRows {
		return rows.Values()
	}
	var f fieldBuf
	err := rows.(mapreduce.RowEncoder).EncodeRow(&f)
	return f.vals, err
}

func newMemSink() *memSink {
	return &memSink{table: map[string]int64{}, commits: map[string]bool{}}
}

func (s *memSink) String() string                                       { return "mem:sink" }
func (s *memSink) Prepare(context.Context, mapreduce.OutputTable) error { return nil }
func (s *memSink) Committed(_ context.Context, c string) ([]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var bs []int
	for k := range s.commits {
		if b, ok := strings.CutPrefix(k, c+"/"); ok {
			var n int
			fmt.Sscan(b, &n)
			bs = append(bs, n)
		}
	}
	return bs, nil
}

func (s *memSink) Apply(_ context.Context, _ mapreduce.OutputTable, commit string, bucket int, rows mapreduce.OutputRows) error {
	staged := map[string]int64{}
	for rows.Next() {
		v, err := s.values(rows)
		if err != nil {
			return err
		}
		if _, dup := staged[v[0].(string)]; dup {
			return fmt.Errorf("bucket %d yields key %v twice", bucket, v[0])
		}
		staged[v[0].(string)] = v[1].(int64)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := fmt.Sprintf("%s/%d", commit, bucket)
	if s.commits[key] {
		return nil
	}
	maps.Copy(s.table, staged)
	s.commits[key] = true
	s.applied++
	return nil
}

// sumJob sums amounts per group. Rows of kind "poison" fail permanently,
// "panic" panics, "flaky" fails on its first attempt only.
func sumJob(t *testing.T) *mapreduce.Job[string, int64] {
	t.Helper()
	var mu sync.Mutex
	flaky := map[int64]int{}
	j := &mapreduce.Job[string, int64]{
		Name:   "sum_test",
		Input:  mapreduce.Input{Table: "rows", Columns: []string{"grp", "amount", "kind"}},
		Output: mapreduce.Output{Table: "sums"},
		Key: mapreduce.Codec[string]{
			Fields: []mapreduce.Field{{Name: "grp", Type: mapreduce.TypeString}},
			Encode: func(k string, e mapreduce.Encoder) { e.String(k) },
			Decode: func(d mapreduce.Decoder) string { return d.String() },
		},
		Value: mapreduce.Codec[int64]{
			Fields: []mapreduce.Field{{Name: "total", Type: mapreduce.TypeInt64}},
			Encode: func(v int64, e mapreduce.Encoder) { e.Int64(v) },
			Decode: func(d mapreduce.Decoder) int64 { return d.Int64() },
		},
		Map: func(_ context.Context, row mapreduce.Row, emit func(string, int64)) error {
			// Emit before failing: a failed attempt's pairs must not count.
			emit(row.String(0), row.Int64(1))
			switch row.String(2) {
			case "poison":
				return mapreduce.Permanent(errors.New("poison row"))
			case "panic":
				panic("boom")
			case "flaky":
				mu.Lock()
				flaky[row.Cursor()]++
				n := flaky[row.Cursor()]
				mu.Unlock()
				if n == 1 {
					return errors.New("flaky row")
				}
			}
			return nil
		},
		Combine: func(a, b int64) int64 { return a + b },
	}
	if err := j.Validate(); err != nil {
		t.Fatal(err)
	}
	return j
}

// randomRows makes n rows with gaps in the ids and the given number of
// groups; kinds are mixed in at the given rate.
func randomRows(seed uint64, n, groups int, badRate float64) []memRow {
	rng := rand.New(rand.NewPCG(seed, 1))
	rows := make([]memRow, n)
	id := int64(rng.IntN(100)) - 50
	for i := range rows {
		id += 1 + int64(rng.IntN(3))*int64(rng.IntN(2)) // gaps
		kind := "ok"
		if rng.Float64() < badRate {
			kind = []string{"poison", "panic", "flaky"}[rng.IntN(3)]
		}
		rows[i] = memRow{id: id, group: fmt.Sprintf("g%d", rng.IntN(groups)), amount: int64(rng.IntN(1000)) - 100, kind: kind}
	}
	return rows
}

// truth is the expected sink table: sums over rows that do not fail for good.
func truth(rows []memRow) map[string]int64 {
	m := map[string]int64{}
	for _, r := range rows {
		if r.kind == "ok" || r.kind == "flaky" {
			m[r.group] += r.amount
		}
	}
	return m
}

func badIDs(rows []memRow) []int64 {
	var ids []int64
	for _, r := range rows {
		if r.kind == "poison" || r.kind == "panic" {
			ids = append(ids, r.id)
		}
	}
	return ids
}

func checkTable(t *testing.T, got, want map[string]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("sink has %d groups, want %d", len(got), len(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("group %s = %d, want %d", k, got[k], w)
		}
	}
}

func TestRun_Matrix(t *testing.T) {
	t.Parallel()
	rows := randomRows(1, 20_000, 3_000, 0.002)
	want := truth(rows)
	for _, c := range []struct {
		partitions, buckets, workers, chunk int
		memory                              int64
		stream                              bool
	}{
		{1, 1, 1, 1000, 512 << 20, false},
		{4, 8, 2, 100, 512 << 20, false},
		{7, 3, 3, 999, 512 << 20, false},
		{64, 16, 4, 50, 512 << 20, false}, // more partitions than ids in some ranges
		{300, 2, 4, 7, 256 << 20, false},  // many small and empty partitions
		{5, 4, 2, 333, 512 << 20, true},
		{3, 2, 2, 1000, 1 << 20, true},
	} {
		name := fmt.Sprintf("partitions=%d/buckets=%d/workers=%d/chunk=%d/memory=%d/stream=%t", c.partitions, c.buckets, c.workers, c.chunk, c.memory, c.stream)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := &memSource{rows: rows, read: map[int64]int{}}
			var source mapreduce.Source = src
			if c.stream {
				source = streamingSource{src}
			}
			sink := newMemSink()
			cfg := runtest.Config(t)
			cfg.Partitions, cfg.Buckets, cfg.Workers, cfg.ChunkSize, cfg.Memory = c.partitions, c.buckets, c.workers, c.chunk, c.memory
			s, err := mapreduce.Run(context.Background(), sumJob(t), source, sink, cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkTable(t, sink.table, want)
			if got, want := runtest.DeadLetterCursors(t, cfg, s.RunID), badIDs(rows); !slices.Equal(got, want) {
				t.Errorf("DLQ holds %v, want %v", got, want)
			}
			for id, n := range src.read {
				if n != 1 {
					t.Fatalf("row %d read %d times", id, n)
				}
			}
			if len(src.read) != len(rows) {
				t.Errorf("read %d distinct rows, want %d", len(src.read), len(rows))
			}
			if s.Processed != int64(len(rows)) || s.Failed != int64(len(badIDs(rows))) {
				t.Errorf("summary %+v: want %d processed, %d failed", s, len(rows), len(badIDs(rows)))
			}
		})
	}
}

// TestRun_MemoryBudget runs with more keys than the budget holds, so that
// map tasks flush early and reducers re-partition their buckets.
func TestRun_MemoryBudget(t *testing.T) {
	t.Parallel()
	rows := randomRows(6, 60_000, 50_000, 0.001)
	for _, buckets := range []int{1, 3} {
		t.Run(fmt.Sprintf("buckets=%d", buckets), func(t *testing.T) {
			t.Parallel()
			cfg := runtest.Config(t)
			cfg.Partitions, cfg.Buckets, cfg.Workers, cfg.Memory = 3, buckets, 2, 1<<20
			sink := newMemSink()
			s, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkTable(t, sink.table, truth(rows))
			if s.Groups != int64(len(sink.table)) {
				t.Errorf("summary counts %d groups, the sink has %d", s.Groups, len(sink.table))
			}
		})
	}
}

func TestRun_PanicStackInDLQ(t *testing.T) {
	t.Parallel()
	rows := []memRow{{id: 1, group: "a", amount: 1, kind: "panic"}, {id: 2, group: "a", amount: 2, kind: "poison"}}
	cfg := runtest.Config(t)
	s, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, newMemSink(), cfg)
	if !errors.Is(err, mapreduce.ErrFailureRate) {
		t.Fatalf("Run = %v, want ErrFailureRate", err)
	}
	letters, err := mapreduce.DeadLetters(context.Background(), cfg, s.RunID, mapreduce.DeadLetterFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var cursors []int64
	for _, l := range letters {
		cursors = append(cursors, l.Cursor)
	}
	slices.Sort(cursors)
	if !slices.Equal(cursors, []int64{1, 2}) {
		t.Fatalf("letters for cursors %v, want [1 2]", cursors)
	}
	for _, l := range letters {
		switch {
		case l.Cursor == 1 && (l.Error != "panic: boom" || !strings.Contains(l.Stack, "engine_test.go") || l.Attempts != 4):
			t.Errorf("the panicking row's letter = %+v, want its error, its stack and 4 attempts", l)
		case l.Cursor == 2 && (l.Stack != "" || l.Attempts != 1):
			t.Errorf("the poison row's letter = %+v, want no stack and 1 attempt", l)
		}
	}
}

func TestRun_Empty(t *testing.T) {
	t.Parallel()
	sink := newMemSink()
	cfg := runtest.Config(t)
	s, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{read: map[int64]int{}}, sink, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Processed != 0 || len(sink.table) != 0 {
		t.Errorf("empty source gave %+v and %d groups", s, len(sink.table))
	}
}

func TestRun_ResumeAfterCancel(t *testing.T) {
	t.Parallel()
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%t", stream), func(t *testing.T) {
			t.Parallel()
			testResumeAfterCancel(t, stream)
		})
	}
}

func testResumeAfterCancel(t *testing.T, stream bool) {
	rows := randomRows(2, 30_000, 500, 0.003)
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Buckets, cfg.Workers, cfg.ChunkSize = 6, 4, 3, 200
	cfg.CheckpointInterval = time.Nanosecond // commit after every chunk
	sink := newMemSink()

	ctx, cancel := context.WithCancel(context.Background())
	first := &memSource{rows: rows, read: map[int64]int{}, afterChunk: func(n int64) {
		if n == 40 {
			cancel()
		}
	}}
	var source mapreduce.Source = first
	if stream {
		source = streamingSource{first}
	}
	s1, err := mapreduce.Run(ctx, sumJob(t), source, sink, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run returned %v", err)
	}
	if s1.Processed == 0 || s1.Processed == int64(len(rows)) {
		t.Fatalf("cancelled run committed %d of %d rows; the test needs a partial run", s1.Processed, len(rows))
	}

	// The cursor ranges the first run committed: [Range.Lo, Next) of each
	// partition.
	var committed []partition.Range
	for part := range s1.Partitions {
		cp, err := mapreduce.DirStore{Dir: cfg.Workdir}.LoadCheckpoint(context.Background(), s1.RunID, part)
		if err != nil {
			t.Fatal(err)
		}
		if cp != nil {
			committed = append(committed, partition.Range{Lo: cp.Range.Lo, Hi: cp.Next})
		}
	}

	second := &memSource{rows: rows, read: map[int64]int{}}
	s2, err := mapreduce.Run(context.Background(), sumJob(t), second, sink, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkTable(t, sink.table, truth(rows))
	if s2.Resumed != s1.Processed {
		t.Errorf("resumed %d rows, the first run committed %d", s2.Resumed, s1.Processed)
	}
	if s2.Read != int64(len(rows))-s1.Processed {
		t.Errorf("second run read %d rows, want the %d not committed", s2.Read, int64(len(rows))-s1.Processed)
	}
	for id := range second.read {
		for _, r := range committed {
			if r.Contains(id) {
				t.Fatalf("row %d was committed by the first run (%v) and read again", id, r)
			}
		}
	}
	if s2.PartitionsResumed == 0 {
		t.Error("no partition resumed")
	}
	if got, want := runtest.DeadLetterCursors(t, cfg, s2.RunID), badIDs(rows); !slices.Equal(got, want) {
		t.Errorf("DLQ holds %d letters %v, want %d", len(got), got, len(want))
	}
}

// failingStore fails every checkpoint save after the first n, as a crash
// between a spill and its checkpoint would.
type failingStore struct {
	mapreduce.DirStore
	left atomic.Int64
}

var errCrash = errors.New("simulated crash before checkpoint")

func (s *failingStore) SaveCheckpoint(ctx context.Context, run string, cp *mapreduce.Checkpoint) error {
	if s.left.Add(-1) < 0 {
		return errCrash
	}
	return s.DirStore.SaveCheckpoint(ctx, run, cp)
}

func TestRun_CrashBetweenSpillAndCheckpoint(t *testing.T) {
	t.Parallel()
	rows := randomRows(3, 20_000, 800, 0.003)
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Buckets, cfg.Workers, cfg.ChunkSize = 4, 4, 2, 300
	cfg.CheckpointInterval = time.Nanosecond
	store := &failingStore{DirStore: mapreduce.DirStore{Dir: cfg.Workdir}}
	store.left.Store(9)
	cfg.Store = store
	sink := newMemSink()
	if _, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg); !errors.Is(err, errCrash) {
		t.Fatalf("run returned %v, want the simulated crash", err)
	}
	store.left.Store(1 << 40)
	s, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkTable(t, sink.table, truth(rows))
	if got, want := runtest.DeadLetterCursors(t, cfg, s.RunID), badIDs(rows); !slices.Equal(got, want) {
		t.Errorf("DLQ holds %v, want %v", got, want)
	}
	// Only committed files remain in the shuffle directory.
	var committed int
	for part := range s.Partitions {
		cp, err := store.LoadCheckpoint(context.Background(), s.RunID, part)
		if err != nil {
			t.Fatal(err)
		}
		committed += len(cp.Files)
	}
	found, _ := filepath.Glob(filepath.Join(cfg.Workdir, s.RunID, "shuffle", "b*", "*"))
	if len(found) != committed {
		t.Errorf("shuffle holds %d files, checkpoints name %d", len(found), committed)
	}
	var letters int
	for part := range s.Partitions {
		cp, _ := store.LoadCheckpoint(context.Background(), s.RunID, part)
		letters += len(cp.DeadLetters)
	}
	if found, _ := filepath.Glob(filepath.Join(cfg.Workdir, s.RunID, "dlq", "*")); len(found) != letters {
		t.Errorf("dlq holds %d files, checkpoints name %d", len(found), letters)
	}
}

func TestRun_RerunIsIdempotent(t *testing.T) {
	t.Parallel()
	rows := randomRows(4, 5_000, 300, 0)
	cfg := runtest.Config(t)
	sink := newMemSink()
	for i := range 2 {
		if _, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			continue
		}
		if sink.applied != cfg.Buckets {
			t.Errorf("the second run applied buckets again: %d applies", sink.applied)
		}
	}
	cfg.Fresh = true
	if _, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg); err != nil {
		t.Fatal(err)
	}
	checkTable(t, sink.table, truth(rows))
}

// TestRun_FailureRate: a run too small to be stopped early (see
// TestRun_FailFast) finishes, and then alerts on its failure rate.
func TestRun_FailureRate(t *testing.T) {
	t.Parallel()
	rows := randomRows(5, 900, 10, 0.2)
	cfg := runtest.Config(t)
	sink := newMemSink()
	s, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg)
	if !errors.Is(err, mapreduce.ErrFailureRate) {
		t.Fatalf("err = %v, want ErrFailureRate", err)
	}
	checkTable(t, sink.table, truth(rows))
	if s.Failed != int64(len(badIDs(rows))) {
		t.Errorf("summary counts %d failed, want %d", s.Failed, len(badIDs(rows)))
	}
}

func TestOpen_RunInUse(t *testing.T) {
	t.Parallel()
	cfg := runtest.Config(t)
	src := &memSource{rows: randomRows(7, 100, 5, 0), read: map[int64]int{}}
	first, err := mapreduce.Open(context.Background(), sumJob(t), src, newMemSink(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = mapreduce.Open(context.Background(), sumJob(t), src, newMemSink(), cfg)
	if !errors.Is(err, mapreduce.ErrRunInUse) || !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) {
		t.Errorf("opening a run in use = %v, want ErrRunInUse naming this process", err)
	}
	first.Close()
	second, err := mapreduce.Open(context.Background(), sumJob(t), src, newMemSink(), cfg)
	if err != nil {
		t.Fatalf("opening a run released by Close: %v", err)
	}
	second.Close()
}

// TestRun_CombinePanics: a panic in Combine is the job's bug, not the
// row's: the run fails (resumably) instead of counting the row in part.
func TestRun_CombinePanics(t *testing.T) {
	t.Parallel()
	j := sumJob(t)
	j.Combine = func(a, b int64) int64 { panic("combine bug") }
	_, err := mapreduce.Run(context.Background(), j, &memSource{rows: randomRows(8, 500, 3, 0), read: map[int64]int{}}, newMemSink(), runtest.Config(t))
	var p *mapreduce.PanicError
	if !errors.As(err, &p) || p.Value != "combine bug" {
		t.Errorf("Run = %v, want the Combine panic as an error", err)
	}
}

// TestRun_DLQChangedOutside: a dead-letter file cut shorter than its
// checkpoint committed is a clear error, never fewer letters.
func TestRun_DLQChangedOutside(t *testing.T) {
	t.Parallel()
	rows := randomRows(9, 4_000, 50, 0.05)
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Buckets, cfg.Workers, cfg.ChunkSize, cfg.MaxFailureRate = 1, 2, 1, 100, 1
	cfg.CheckpointInterval = time.Nanosecond
	s, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, newMemSink(), cfg)
	if err != nil || s.Failed == 0 {
		t.Fatalf("run: %v with %d failed rows; the test needs dead letters", err, s.Failed)
	}
	paths, _ := filepath.Glob(filepath.Join(cfg.Workdir, s.RunID, "dlq", "p0000-*.jsonl"))
	if len(paths) < 2 {
		t.Fatalf("dead-letter files %v; the test needs several", paths)
	}
	if err := os.Truncate(paths[1], 10); err != nil {
		t.Fatal(err)
	}
	_, err = mapreduce.DeadLetters(context.Background(), cfg, s.RunID, mapreduce.DeadLetterFilter{})
	if !errors.Is(err, mapreduce.ErrDamaged) || !strings.Contains(err.Error(), "it was changed outside mr") {
		t.Errorf("reading a cut dead-letter file = %v, want ErrDamaged saying so", err)
	}
}

// TestOpen_OtherFormat: run state written by an mr that kept it another
// way is refused before anything of it is touched, not misread.
func TestOpen_OtherFormat(t *testing.T) {
	t.Parallel()
	rows := randomRows(14, 2_000, 50, 0.02)
	cfg := runtest.Config(t)
	cfg.MaxFailureRate = 1
	s, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, newMemSink(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.Workdir, s.RunID, "plan.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// As an mr of format 2 wrote it: no seal line.
	unsealed := data[:bytes.LastIndexByte(bytes.TrimSuffix(data, []byte("\n")), '\n')+1]
	old := regexp.MustCompile(`"format": \d+`).ReplaceAllString(string(unsealed), `"format": 2`)
	if old == string(unsealed) {
		t.Fatal("plan.json has no format field to change")
	}
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := filepath.Glob(filepath.Join(cfg.Workdir, s.RunID, "*", "*"))
	_, err = mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, newMemSink(), cfg)
	if err == nil || !strings.Contains(err.Error(), "planned by another version of mr") || !strings.Contains(err.Error(), "--fresh") {
		t.Errorf("resuming state of another format = %v, want an error saying so", err)
	}
	if after, _ := filepath.Glob(filepath.Join(cfg.Workdir, s.RunID, "*", "*")); !slices.Equal(before, after) {
		t.Errorf("the refused run removed files: %d before, %d after", len(before), len(after))
	}
	if _, err := mapreduce.Inspect(context.Background(), cfg, s.RunID); err == nil {
		t.Error("Inspect read state of another format")
	}
	cfg.Fresh = true
	if _, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, newMemSink(), cfg); err != nil {
		t.Errorf("--fresh over state of another format: %v", err)
	}
}

// TestRun_Release runs a job whose Map emits released values again: no
// value is released while the engine holds it, every failed attempt's
// values come back, and the sums are exact.
func TestRun_Release(t *testing.T) {
	t.Parallel()
	type total struct {
		n        int64
		released bool
	}
	rows := randomRows(5, 20_000, 300, 0.01)
	var mu sync.Mutex
	var pool []*total
	var reused int
	base := sumJob(t)
	j := &mapreduce.Job[string, *total]{
		Name:   "release_test",
		Input:  base.Input,
		Output: base.Output,
		Key:    base.Key,
		Value: mapreduce.Codec[*total]{
			Fields: base.Value.Fields,
			Encode: func(v *total, e mapreduce.Encoder) {
				if v != nil && v.released {
					t.Error("a released value was spilled")
				}
				var n int64
				if v != nil {
					n = v.n
				}
				e.Int64(n)
			},
			Decode: func(d mapreduce.Decoder) *total { return &total{n: d.Int64()} },
		},
		Map: func(ctx context.Context, row mapreduce.Row, emit func(string, *total)) error {
			mu.Lock()
			v := &total{}
			if len(pool) > 0 {
				v, pool = pool[len(pool)-1], pool[:len(pool)-1]
				reused++
			}
			mu.Unlock()
			*v = total{n: row.Int64(1)}
			return base.Map(ctx, row, func(k string, _ int64) { emit(k, v) })
		},
		Combine: func(a, b *total) *total {
			if a.released || b.released {
				t.Error("Combine got a released value")
			}
			a.n += b.n
			return a
		},
		Release: func(v *total) {
			mu.Lock()
			defer mu.Unlock()
			v.released = true
			pool = append(pool, v)
		},
	}
	sink := newMemSink()
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Workers, cfg.ChunkSize = 4, 2, 100
	if _, err := mapreduce.Run(context.Background(), j, &memSource{rows: rows, read: map[int64]int{}}, sink, cfg); err != nil {
		t.Fatal(err)
	}
	checkTable(t, sink.table, truth(rows))
	if reused < len(rows)/2 {
		t.Errorf("Map reused %d values of %d rows: the engine released too few", reused, len(rows))
	}
}

// TestRun_ValueBytes checks that the memory a job says its values point
// to counts against the budget: the same job spills more with it, and
// its sums stay exact.
func TestRun_ValueBytes(t *testing.T) {
	t.Parallel()
	rows := randomRows(9, 10_000, 2_000, 0)
	spilled := make([]int64, 2)
	for i, valueBytes := range []int{0, 4 << 10} {
		j := sumJob(t)
		j.ValueBytes = valueBytes
		sink := newMemSink()
		cfg := runtest.Config(t)
		cfg.Partitions, cfg.Workers, cfg.Memory = 2, 1, 2<<20
		s, err := mapreduce.Run(context.Background(), j, &memSource{rows: rows, read: map[int64]int{}}, sink, cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkTable(t, sink.table, truth(rows))
		spilled[i] = s.BytesSpilled
	}
	if spilled[1] <= spilled[0] {
		t.Errorf("spilled %d bytes with 4 KiB values, %d without: ValueBytes does not count", spilled[1], spilled[0])
	}
}
