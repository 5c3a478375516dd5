package mapreduce_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/mrengine/mr/internal/crashpoint"
	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
)

// This file tests map-only jobs (a Job without Combine) against in-memory
// sources and sinks: every row's result upserted once, the pair emitted
// last winning, and crashes on either side of each chunk's sink commit.

// lastRow is latestJob's value: the row that emitted it.
type lastRow struct {
	Cursor int64
	Amount int64
}

// latestJob is a map-only job that emits two pairs per row, both holding
// the row's cursor and amount: one under the row's own key "r<id>", and
// one under its group's key "g<group>", which many rows share. Rows fail
// as sumJob's do.
func latestJob(t *testing.T) *mapreduce.Job[string, lastRow] {
	t.Helper()
	base := sumJob(t)
	j := &mapreduce.Job[string, lastRow]{
		Name:   "latest_test",
		Input:  base.Input,
		Output: mapreduce.Output{Table: "latest"},
		Key:    mapreduce.Columns[string]("key"),
		Map: func(ctx context.Context, row mapreduce.Row, emit func(string, lastRow)) error {
			v := lastRow{Cursor: row.Cursor(), Amount: row.Int64(1)}
			return base.Map(ctx, row, func(group string, _ int64) {
				emit("r"+strconv.FormatInt(row.Cursor(), 10), v)
				emit("g"+group, v)
			})
		},
	}
	if err := j.Validate(); err != nil {
		t.Fatal(err)
	}
	return j
}

// latestSink keeps latestJob's table and the commit records, and counts
// what the engine asks of it.
type latestSink struct {
	mu      sync.Mutex
	table   map[string]lastRow
	commits map[string]bool // commit/id
	calls   map[string]int  // Apply calls per commit/id
	upserts map[string]int  // key → chunks applied that held it
	rows    int64           // rows of the chunks applied
	// notApplied, if set, makes the first Apply of each chunk read its
	// rows and fail with ErrNotApplied, as a broken connection does.
	notApplied bool
	// zombie, if above zero, makes that Apply call (counting from 1) fail
	// as if its process died with the chunk's COMMIT on its way to the
	// server, which then lands right after the next call of Committed has
	// answered without it: the slowest a COMMIT can be and not change what
	// a resumed run reads.
	zombie  int
	applies int
	landing func()
}

var errDied = errors.New("the process died while its COMMIT was on its way")

func newLatestSink() *latestSink {
	return &latestSink{table: map[string]lastRow{}, commits: map[string]bool{}, calls: map[string]int{}, upserts: map[string]int{}}
}

func (s *latestSink) String() string                                       { return "mem:latest" }
func (s *latestSink) Prepare(context.Context, mapreduce.OutputTable) error { return nil }

func (s *latestSink) Committed(_ context.Context, commit string) ([]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int
	for k := range s.commits {
		if id, ok := strings.CutPrefix(k, commit+"/"); ok {
			n, err := strconv.Atoi(id)
			if err != nil {
				return nil, err
			}
			ids = append(ids, n)
		}
	}
	slices.Sort(ids)
	if land := s.landing; land != nil {
		s.landing = nil
		land()
	}
	return ids, nil
}

func (s *latestSink) Apply(_ context.Context, t mapreduce.OutputTable, commit string, id int, rows mapreduce.OutputRows) error {
	if t.Name != "latest" || len(t.Keys) != 1 || len(t.Values) != 2 {
		return fmt.Errorf("Apply to table %+v", t)
	}
	staged := map[string]lastRow{}
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			return err
		}
		k := v[0].(string)
		if _, dup := staged[k]; dup {
			return fmt.Errorf("chunk %d yields key %s twice", id, k)
		}
		staged[k] = lastRow{Cursor: v[1].(int64), Amount: v[2].(int64)}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := commit + "/" + strconv.Itoa(id)
	s.calls[key]++
	s.applies++
	if s.notApplied && s.calls[key] == 1 {
		return fmt.Errorf("connection lost after the rows: %w", mapreduce.ErrNotApplied)
	}
	if s.applies == s.zombie {
		s.landing = func() { s.commitLocked(key, staged) }
		return errDied
	}
	s.commitLocked(key, staged)
	return nil
}

// commitLocked applies the rows of the chunk under key, unless it was.
func (s *latestSink) commitLocked(key string, staged map[string]lastRow) {
	if s.commits[key] {
		return
	}
	for k, v := range staged {
		s.table[k] = v
		s.upserts[k]++
	}
	s.commits[key] = true
	s.rows += int64(len(staged))
}

// checkLatest checks the table of latestJob over rows against a Go ground
// truth, and that each row's own key was upserted by exactly one chunk
// (unless healed, when a partition's were upserted again). Of a group's
// rows in one partition, the last in cursor order that succeeds must win;
// of several partitions, any one's may, so a sequential run (one
// partition) is exact.
func checkLatest(t *testing.T, sink *latestSink, rows []memRow, parts []mapreduce.Partition, healed bool) {
	t.Helper()
	want := map[string]lastRow{}
	candidates := map[string][]lastRow{} // group key → the last row of each partition
	for _, p := range parts {
		last := map[string]lastRow{}
		for _, r := range rows {
			if p.Contains(r.id) && (r.kind == "ok" || r.kind == "flaky") {
				last["g"+r.group] = lastRow{r.id, r.amount}
			}
		}
		for k, v := range last {
			candidates[k] = append(candidates[k], v)
		}
	}
	for _, r := range rows {
		if r.kind == "ok" || r.kind == "flaky" {
			want["r"+strconv.FormatInt(r.id, 10)] = lastRow{r.id, r.amount}
		}
	}
	if len(sink.table) != len(want)+len(candidates) {
		t.Errorf("the sink holds %d keys, want %d rows and %d groups", len(sink.table), len(want), len(candidates))
	}
	for k, w := range want {
		if got := sink.table[k]; got != w {
			t.Errorf("key %s = %+v, want %+v", k, got, w)
		}
		if n := sink.upserts[k]; n != 1 && !healed {
			t.Errorf("key %s was upserted by %d chunks, want 1", k, n)
		}
	}
	for k, c := range candidates {
		if got, ok := sink.table[k]; !ok || !slices.Contains(c, got) {
			t.Errorf("group %s = %+v, want the last row of one partition: %+v", k, got, c)
		}
	}
}

// planOf returns the plan of a run in cfg's work directory.
func planOf(t *testing.T, cfg mapreduce.Config, run string) *mapreduce.Plan {
	t.Helper()
	ri, err := mapreduce.Inspect(context.Background(), cfg, run)
	if err != nil {
		t.Fatal(err)
	}
	return ri.Plan
}

// checkAppliedOnce fails the test unless the engine applied every chunk
// to the sink exactly once.
func checkAppliedOnce(t *testing.T, sink *latestSink) {
	t.Helper()
	for id, n := range sink.calls {
		if n != 1 {
			t.Errorf("chunk %s was applied %d times", id, n)
		}
	}
}

func TestRun_MapOnlyMatrix(t *testing.T) {
	t.Parallel()
	all := randomRows(21, 6_000, 150, 0.003)
	// Every chunk saves a checkpoint, durably: the cases with small chunks
	// read fewer rows, to stay fast.
	for _, c := range []struct {
		rows, partitions, workers, chunk int
		stream, notApplied               bool
	}{
		{6_000, 1, 1, 1000, false, false}, // the sequential pattern
		{1_500, 1, 1, 7, true, false},
		{300, 1, 2, 1, false, false},
		{6_000, 4, 2, 100, false, false},
		{6_000, 7, 3, 333, true, false},
		{6_000, 64, 4, 50, false, false}, // more partitions than ids in some ranges
		{3_000, 300, 4, 7, false, false}, // many small and empty partitions
		{6_000, 3, 2, 250, false, true},  // every chunk's first Apply is not applied
	} {
		name := fmt.Sprintf("rows=%d/partitions=%d/workers=%d/chunk=%d/stream=%t/notApplied=%t", c.rows, c.partitions, c.workers, c.chunk, c.stream, c.notApplied)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rows := all[:c.rows]
			src := &memSource{rows: rows, read: map[int64]int{}}
			var source mapreduce.Source = src
			if c.stream {
				source = streamingSource{src}
			}
			sink := newLatestSink()
			sink.notApplied = c.notApplied
			cfg := runtest.Config(t)
			cfg.Partitions, cfg.Workers, cfg.ChunkSize = c.partitions, c.workers, c.chunk
			s, err := mapreduce.Run(context.Background(), latestJob(t), source, sink, cfg)
			if err != nil {
				t.Fatal(err)
			}
			plan := planOf(t, cfg, s.RunID)
			if !plan.MapOnly || plan.Buckets != 0 || plan.Replace || plan.Format != 6 {
				t.Errorf("plan is map-only %t with %d buckets, replace %t, format %d; want map-only, no buckets, no replace, format 6",
					plan.MapOnly, plan.Buckets, plan.Replace, plan.Format)
			}
			checkLatest(t, sink, rows, plan.Partitions, false)
			if !c.notApplied {
				checkAppliedOnce(t, sink)
			}
			if got, want := runtest.DeadLetterCursors(t, cfg, s.RunID), badIDs(rows); !slices.Equal(got, want) {
				t.Errorf("DLQ holds %v, want %v", got, want)
			}
			for id, n := range src.read {
				if n != 1 {
					t.Fatalf("row %d read %d times", id, n)
				}
			}
			if s.Processed != int64(len(rows)) || s.Failed != int64(len(badIDs(rows))) || s.Groups != sink.rows || s.Buckets != 0 {
				t.Errorf("summary %+v: want %d processed, %d failed, %d groups written, no buckets", s, len(rows), len(badIDs(rows)), sink.rows)
			}
			if strings.Contains(s.String(), "bucket") {
				t.Errorf("the summary line of a map-only run speaks of buckets: %s", s)
			}
			if files, _ := filepath.Glob(filepath.Join(cfg.Workdir, s.RunID, "shuffle", "*", "*")); len(files) > 0 {
				t.Errorf("a map-only run wrote shuffle files: %v", files)
			}
		})
	}
}

// TestRun_MapOnlyLastWins: in one chunk and across the chunks of one
// partition, the pair emitted last of a key wins, so the sequential
// pattern keeps each key's last row, in cursor order.
func TestRun_MapOnlyLastWins(t *testing.T) {
	t.Parallel()
	rows := []memRow{
		{id: 1, group: "a", amount: 1, kind: "ok"},
		{id: 2, group: "a", amount: 2, kind: "ok"},
		{id: 3, group: "b", amount: 3, kind: "ok"},
		{id: 4, group: "a", amount: 4, kind: "poison"}, // fails: a keeps 2
		{id: 5, group: "b", amount: 5, kind: "ok"},
		{id: 7, group: "c", amount: 7, kind: "ok"},
	}
	for _, chunk := range []int{1, 2, 100} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) {
			t.Parallel()
			sink := newLatestSink()
			cfg := runtest.Config(t)
			cfg.Partitions, cfg.Workers, cfg.ChunkSize, cfg.MaxFailureRate = 1, 1, chunk, 1
			if _, err := mapreduce.Run(context.Background(), latestJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg); err != nil {
				t.Fatal(err)
			}
			for k, want := range map[string]lastRow{"ga": {2, 2}, "gb": {5, 5}, "gc": {7, 7}} {
				if got := sink.table[k]; got != want {
					t.Errorf("%s = %+v, want %+v", k, got, want)
				}
			}
		})
	}
}

// stopAtPoint returns a context whose crash point hook panics, as a crash
// would stop the run, at the n-th hit of point and at every point after
// it, so that no task gets past a point once one stopped; *stopped tells
// whether it did.
func stopAtPoint(point string, n int, stopped *bool) context.Context {
	var mu sync.Mutex
	hits := 0
	return crashpoint.WithHook(context.Background(), func(name string) {
		mu.Lock()
		if name == point {
			hits++
		}
		dead := hits >= n
		*stopped = *stopped || dead
		mu.Unlock()
		if dead {
			panic("crash at " + name)
		}
	})
}

// TestRun_MapOnlyCrash crashes a map-only run again and again at a point
// on either side of a chunk's sink commit, each attempt resuming from what
// the ones before committed, until one finishes: the table is exact,
// every chunk was applied once, and every failed row is in the DLQ once.
func TestRun_MapOnlyCrash(t *testing.T) {
	t.Parallel()
	rows := randomRows(22, 4_000, 100, 0.01)
	for _, point := range []string{crashpoint.ChunkIntent, crashpoint.ChunkApplied} {
		for _, workers := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/workers=%d", point, workers), func(t *testing.T) {
				t.Parallel()
				cfg := runtest.Config(t)
				cfg.Partitions, cfg.Workers, cfg.ChunkSize, cfg.MaxFailureRate = 3, workers, 40, 1
				sink := newLatestSink()
				var s mapreduce.Summary
				stops := 0
				for attempt := 0; ; attempt++ {
					if attempt > 200 {
						t.Fatalf("the run did not finish after %d stops", stops)
					}
					stopped := false
					var err error
					s, err = mapreduce.Run(stopAtPoint(point, 4, &stopped), latestJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg)
					if !stopped {
						if err != nil {
							t.Fatal(err)
						}
						break
					}
					var p *mapreduce.PanicError
					if !errors.As(err, &p) {
						t.Fatalf("a run stopped at %s returned %v", point, err)
					}
					stops++
				}
				if stops < 5 {
					t.Fatalf("the run stopped %d times; the test needs more", stops)
				}
				checkLatest(t, sink, rows, planOf(t, cfg, s.RunID).Partitions, false)
				checkAppliedOnce(t, sink)
				if got, want := runtest.DeadLetterCursors(t, cfg, s.RunID), badIDs(rows); !slices.Equal(got, want) {
					t.Errorf("DLQ holds %d letters %v, want %d", len(got), got, len(want))
				}
				if s.Processed != int64(len(rows)) || s.Failed != int64(len(badIDs(rows))) {
					t.Errorf("the last attempt counts %d rows, %d failed; want %d, %d", s.Processed, s.Failed, len(rows), len(badIDs(rows)))
				}
				if found, _ := filepath.Glob(filepath.Join(cfg.Workdir, s.RunID, "dlq", "*")); len(found) != countLetterFiles(t, cfg, s.RunID) {
					t.Errorf("dlq holds %d files, the checkpoints name %d", len(found), countLetterFiles(t, cfg, s.RunID))
				}
			})
		}
	}
}

// countLetterFiles counts the dead-letter files the run's checkpoints name.
func countLetterFiles(t *testing.T, cfg mapreduce.Config, run string) int {
	t.Helper()
	ri, err := mapreduce.Inspect(context.Background(), cfg, run)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, cp := range ri.Checkpoints {
		n += len(cp.DeadLetters)
	}
	return n
}

// crashOnce runs latestJob until the n-th hit of point, which must come,
// and returns the run's id and the checkpoints the crash left.
func crashOnce(t *testing.T, cfg mapreduce.Config, rows []memRow, sink *latestSink, point string, n int) (string, []*mapreduce.Checkpoint) {
	t.Helper()
	stopped := false
	_, err := mapreduce.Run(stopAtPoint(point, n, &stopped), latestJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg)
	if !stopped || err == nil {
		t.Fatalf("the run did not stop at %s: %v", point, err)
	}
	runs, err := mapreduce.Runs(context.Background(), cfg)
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs %v, %v; want one", runs, err)
	}
	return runs[0].Plan.RunID, runs[0].Checkpoints
}

// TestRun_MapOnlyResolvesPending: a crash between a chunk's intent and
// its sink commit leaves it pending and not applied, and one after the
// commit pending and applied; the resumed run reads the first again under
// a new id and counts the second.
func TestRun_MapOnlyResolvesPending(t *testing.T) {
	t.Parallel()
	rows := randomRows(23, 2_000, 50, 0.02)
	for _, point := range []string{crashpoint.ChunkIntent, crashpoint.ChunkApplied} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			cfg := runtest.Config(t)
			cfg.Partitions, cfg.Workers, cfg.ChunkSize, cfg.MaxFailureRate = 1, 1, 100, 1
			sink := newLatestSink()
			run, cps := crashOnce(t, cfg, rows, sink, point, 5)
			pending := cps[0].Pending
			if pending == nil || cps[0].Chunks != 4 {
				t.Fatalf("the crash left checkpoint %+v; want chunk 5 pending after 4 committed", cps[0])
			}
			committed, _ := sink.Committed(context.Background(), planOf(t, cfg, run).Commit)
			if applied := slices.Contains(committed, pending.ID); applied != (point == crashpoint.ChunkApplied) {
				t.Fatalf("after a crash at %s the sink holds pending chunk %d: %t", point, pending.ID, applied)
			}
			s, err := mapreduce.Run(context.Background(), latestJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkLatest(t, sink, rows, planOf(t, cfg, run).Partitions, false)
			checkAppliedOnce(t, sink)
			if got, want := runtest.DeadLetterCursors(t, cfg, s.RunID), badIDs(rows); !slices.Equal(got, want) {
				t.Errorf("DLQ holds %v, want %v", got, want)
			}
			resumed := cps[0].Rows
			if point == crashpoint.ChunkApplied {
				resumed += pending.Rows
			}
			if s.Resumed != resumed || s.Read != int64(len(rows))-resumed {
				t.Errorf("resumed %d rows and read %d; want %d resumed, the rest read", s.Resumed, s.Read, resumed)
			}
		})
	}
}

// TestRun_MapOnlyZombieApply: the chunk whose Apply was under way when
// its process died is committed by the sink only after the resumed run
// has read that it was not, and the resumed run reads with larger chunks.
// Its chunk read again must not take the dead chunk's id, or the sink
// would skip it as applied and lose the rows past the dead chunk's end.
func TestRun_MapOnlyZombieApply(t *testing.T) {
	t.Parallel()
	rows := randomRows(28, 1_000, 50, 0)
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Workers, cfg.ChunkSize = 1, 1, 100
	sink := newLatestSink()
	sink.zombie = 3
	if _, err := mapreduce.Run(context.Background(), latestJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg); !errors.Is(err, errDied) {
		t.Fatalf("Run = %v, want the Apply that died", err)
	}
	cfg.ChunkSize = 300
	s, err := mapreduce.Run(context.Background(), latestJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sink.landing != nil {
		t.Fatal("the dead chunk's COMMIT never landed")
	}
	checkLatest(t, sink, rows, planOf(t, cfg, s.RunID).Partitions, true) // the dead chunk's rows land twice
	checkAppliedOnce(t, sink)
}

// TestRun_MapOnlyHealsPending: a checkpoint whose pending chunk does not
// fit the plan (an id of another chunk, resealed as a bug could) is
// damaged state: the partition is mapped again from the start of its
// range, under chunk ids past those the sink holds, so that none of its
// chunks is skipped as applied already.
func TestRun_MapOnlyHealsPending(t *testing.T) {
	t.Parallel()
	rows := randomRows(24, 2_000, 50, 0.02)
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Workers, cfg.ChunkSize, cfg.MaxFailureRate = 2, 1, 100, 1
	sink := newLatestSink()
	run, cps := crashOnce(t, cfg, rows, sink, crashpoint.ChunkIntent, 14)
	if cps[1] == nil || cps[1].Pending == nil {
		t.Fatalf("the crash left checkpoints %+v; want partition 1 with a chunk pending", cps)
	}
	path := filepath.Join(cfg.Workdir, run, "checkpoints", "p0001.json")
	resealed(t, path, func(cp map[string]any) { cp["pending"].(map[string]any)["id"] = 3.0 })
	ri, err := mapreduce.Inspect(context.Background(), cfg, run)
	if err != nil || len(ri.Damaged) != 1 || !strings.Contains(ri.Damaged[0].Err.Error(), "names pending chunk 3") {
		t.Fatalf("Inspect = %+v, %v; want partition 1 damaged by its pending chunk", ri, err)
	}
	s, err := mapreduce.Run(context.Background(), latestJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.PartitionsHealed != 1 {
		t.Errorf("%d partitions healed, want 1", s.PartitionsHealed)
	}
	checkLatest(t, sink, rows, planOf(t, cfg, run).Partitions, true)
	checkAppliedOnce(t, sink)
	if got, want := runtest.DeadLetterCursors(t, cfg, s.RunID), badIDs(rows); !slices.Equal(got, want) {
		t.Errorf("DLQ holds %v, want %v", got, want)
	}
}

// resealed rewrites the sealed state file at path with change applied to
// its JSON document, sealing it again, as a bug in mr could.
func resealed(t *testing.T, path string, change func(map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	body := data[:bytes.LastIndexByte(bytes.TrimSuffix(data, []byte("\n")), '\n')+1]
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	change(doc)
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, '\n')
	out = fmt.Appendf(out, "{\"xxh64\":\"%016x\"}\n", xxhash.Sum64(out))
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRunner_StopMapOnly: a stopped map-only run has every chunk it read
// applied and folded in, nothing pending, and the run that resumes it
// reads no row twice.
func TestRunner_StopMapOnly(t *testing.T) {
	t.Parallel()
	rows := randomRows(25, 10_000, 300, 0.002)
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Workers, cfg.ChunkSize = 4, 2, 100
	src := &memSource{rows: rows, read: map[int64]int{}}
	sink := newLatestSink()
	r, err := mapreduce.Open(context.Background(), latestJob(t), src, sink, cfg)
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
	ri, err := mapreduce.Inspect(context.Background(), cfg, s.RunID)
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range ri.Checkpoints {
		if cp != nil && cp.Pending != nil {
			t.Errorf("partition %d stopped with chunk %d pending", cp.Partition, cp.Pending.ID)
		}
	}
	src.afterChunk = nil
	if _, err := mapreduce.Run(context.Background(), latestJob(t), src, sink, cfg); err != nil {
		t.Fatal(err)
	}
	checkLatest(t, sink, rows, ri.Plan.Partitions, false)
	for id, n := range src.read {
		if n != 1 {
			t.Fatalf("row %d read %d times", id, n)
		}
	}
}

// TestRun_MapOnlyIncremental: a map-only job runs incrementally over a
// source that takes a mark and a sink that cannot merge, and a batch
// reads only the rows added since.
func TestRun_MapOnlyIncremental(t *testing.T) {
	t.Parallel()
	rows := randomRows(26, 6_000, 100, 0.002)
	first, added := rows[:4_000], rows[4_000:]
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Workers, cfg.ChunkSize, cfg.Incremental = 1, 1, 300, true
	sink := newLatestSink()
	if _, err := mapreduce.Run(context.Background(), latestJob(t), markSource{&memSource{rows: first, read: map[int64]int{}}}, sink, cfg); err != nil {
		t.Fatal(err)
	}
	src := &memSource{rows: rows, read: map[int64]int{}}
	s, err := mapreduce.Run(context.Background(), latestJob(t), markSource{src}, sink, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Batch != 1 || s.Read != int64(len(added)) || len(src.read) != len(added) {
		t.Errorf("batch %d read %d rows (%d distinct), want batch 1 of the %d added", s.Batch, s.Read, len(src.read), len(added))
	}
	// One partition, and the batch's rows come after the first run's:
	// the last row of each group wins, over both runs.
	checkLatest(t, sink, rows, []mapreduce.Partition{{Range: partition.Through(rows[0].id, rows[len(rows)-1].id)}}, false)
	if got, want := runtest.DeadLetterCursors(t, cfg, s.RunID), badIDs(rows); !slices.Equal(got, want) {
		t.Errorf("DLQ holds %v, want %v", got, want)
	}
}

// TestRun_MapOnlyReplayRefused: mr dlq replay cannot replay a map-only
// run's dead letters yet, and says what to do instead.
func TestRun_MapOnlyReplayRefused(t *testing.T) {
	t.Parallel()
	rows := randomRows(27, 500, 10, 0.05)
	cfg := runtest.Config(t)
	cfg.MaxFailureRate = 1
	src := &memSource{rows: rows, read: map[int64]int{}}
	if _, err := mapreduce.Run(context.Background(), latestJob(t), src, newLatestSink(), cfg); err != nil {
		t.Fatal(err)
	}
	_, err := mapreduce.Replay(context.Background(), latestJob(t), src, newLatestSink(), cfg)
	if err == nil || !strings.Contains(err.Error(), "map-only") || !strings.Contains(err.Error(), "--fresh") {
		t.Errorf("Replay = %v, want an error saying a map-only run is not replayed, and what to do", err)
	}
}

func TestJob_ValidateMapOnly(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		change func(j *mapreduce.Job[string, lastRow])
		want   string
	}{
		{"Release", func(j *mapreduce.Job[string, lastRow]) { j.Release = func(lastRow) {} }, "Release is set but Combine is nil"},
		{"Incremental", func(j *mapreduce.Job[string, lastRow]) { j.Incremental = true }, "Incremental, Restore or RestoreColumns is set but Combine is nil"},
		{"GroupBy", func(j *mapreduce.Job[string, lastRow]) { j.Input.GroupBy = 1 }, "Input.GroupBy is set but Combine is nil"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			j := latestJob(t)
			c.change(j)
			if err := j.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Validate = %v, want %q", err, c.want)
			}
		})
	}
}

// TestRun_MapOnlyFinalize: Finalize shapes a map-only job's output
// columns, and its error stops the run before its chunk is pending (what
// is pending is the chunk before, which the sink holds), so the run
// resumes where it stopped once Finalize is fixed.
func TestRun_MapOnlyFinalize(t *testing.T) {
	t.Parallel()
	rows := randomRows(29, 2_000, 40, 0)
	var broken atomic.Bool
	var calls atomic.Int64
	broken.Store(true)
	j := finalizeJob(t, "finalize_test", nil, 500, &calls, &broken)
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Workers, cfg.ChunkSize = 1, 1, 100
	sink := newMemSink()
	_, err := mapreduce.Run(context.Background(), j, &memSource{rows: rows, read: map[int64]int{}}, sink, cfg)
	if err == nil || !strings.Contains(err.Error(), "finalize bug") {
		t.Fatalf("Run = %v, want Finalize's error", err)
	}
	runs, err := mapreduce.Runs(context.Background(), cfg)
	if err != nil || len(runs) != 1 || runs[0].Checkpoints[0] == nil {
		t.Fatalf("runs %+v, %v: want one that committed chunks", runs, err)
	}
	committed, _ := sink.Committed(context.Background(), runs[0].Plan.Commit)
	if c := runs[0].Checkpoints[0].Pending; c == nil || !slices.Contains(committed, c.ID) {
		t.Errorf("the run stopped with chunk %+v pending; want the one before Finalize failed, which the sink holds (%v)", c, committed)
	}
	broken.Store(false)
	if _, err := mapreduce.Run(context.Background(), j, &memSource{rows: rows, read: map[int64]int{}}, sink, cfg); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for _, r := range rows {
		want[r.group] = 2 * r.amount
	}
	checkTable(t, sink.table, want)
}

// TestRun_ReduceFinalize: a Finalize that fails in the reduce stops the
// run with its error, whether the sink reads the bucket's rows with
// Values or with EncodeRow, and leaves no bucket half applied; fixed, the
// run resumes and writes every group.
func TestRun_ReduceFinalize(t *testing.T) {
	t.Parallel()
	for _, encode := range []bool{false, true} {
		t.Run(fmt.Sprintf("EncodeRow=%t", encode), func(t *testing.T) {
			t.Parallel()
			rows := randomRows(31, 2_000, 300, 0)
			var broken atomic.Bool
			var calls atomic.Int64
			broken.Store(true)
			j := finalizeJob(t, "reduce_finalize_test", func(a, b int64) int64 { return a + b }, 100, &calls, &broken)
			cfg := runtest.Config(t)
			cfg.Partitions, cfg.Buckets, cfg.Workers = 2, 2, 1
			sink := newMemSink()
			sink.encodeRows = encode
			if _, err := mapreduce.Run(context.Background(), j, &memSource{rows: rows, read: map[int64]int{}}, sink, cfg); err == nil || !strings.Contains(err.Error(), "finalize bug") {
				t.Fatalf("Run = %v, want Finalize's error", err)
			}
			broken.Store(false)
			if _, err := mapreduce.Run(context.Background(), j, &memSource{rows: rows, read: map[int64]int{}}, sink, cfg); err != nil {
				t.Fatal(err)
			}
			want := map[string]int64{}
			for _, r := range rows {
				want[r.group] += 2 * r.amount
			}
			checkTable(t, sink.table, want)
		})
	}
}

// finalizeJob is sumJob's key and value with combine (nil: map-only) and
// a Finalize that doubles each total, and that fails once it has been
// called more than after times while broken is set.
func finalizeJob(t *testing.T, name string, combine func(a, b int64) int64, after int64, calls *atomic.Int64, broken *atomic.Bool) *mapreduce.Job[string, int64] {
	base := sumJob(t)
	return &mapreduce.Job[string, int64]{
		Name:    name,
		Input:   base.Input,
		Output:  mapreduce.Output{Table: "sums", Values: []mapreduce.Field{{Name: "doubled", Type: mapreduce.TypeInt64}}},
		Key:     base.Key,
		Value:   base.Value,
		Combine: combine,
		Map: func(_ context.Context, row mapreduce.Row, emit func(string, int64)) error {
			emit(row.String(0), row.Int64(1))
			return nil
		},
		Finalize: func(v int64, out mapreduce.Encoder) error {
			if calls.Add(1) > after && broken.Load() {
				return errors.New("finalize bug")
			}
			out.Int64(2 * v)
			return nil
		},
	}
}
