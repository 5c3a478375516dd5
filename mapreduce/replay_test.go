package mapreduce_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/mapreduce"
)

// TestReplay_CrashAfterCommit fixes some bad rows, replays with a store
// that fails the first checkpoint save (a crash after the replay manifest
// is committed, before the DLQ and checkpoints are rewritten), then
// replays again: the output is exact, the DLQ holds the rows still bad,
// and a third replay applies nothing.
func TestReplay_CrashAfterCommit(t *testing.T) {
	t.Parallel()
	rows := randomRows(5, 10_000, 300, 0.01)
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Buckets, cfg.Workers, cfg.ChunkSize = 4, 4, 2, 300
	cfg.MaxFailureRate = 1
	sink := newMemSink()
	s, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(badIDs(rows)) < 4 {
		t.Fatalf("only %d bad rows", len(badIDs(rows)))
	}
	fixed := slices.Clone(rows)
	n := 0
	for i, r := range fixed {
		if r.kind == "poison" || r.kind == "panic" {
			if n%2 == 0 {
				fixed[i].kind = "ok"
			}
			n++
		}
	}

	store := &failingStore{DirStore: mapreduce.DirStore{Dir: cfg.Workdir}}
	cfg.Store = store
	replay := func() (mapreduce.ReplayResult, error) {
		return mapreduce.Replay(context.Background(), sumJob(t), &memSource{rows: fixed, read: map[int64]int{}}, sink, cfg)
	}
	if _, err := replay(); !errors.Is(err, errCrash) {
		t.Fatalf("replay returned %v, want the simulated crash", err)
	}
	store.left.Store(1 << 40)
	res, err := replay()
	if err != nil {
		t.Fatal(err)
	}
	if res.Generation != 1 || res.Succeeded != 0 || res.Failed != len(badIDs(fixed)) {
		t.Errorf("replay after the crash: %+v", res)
	}
	checkTable(t, sink.table, truth(fixed))
	if got, want := runtest.DeadLetterCursors(t, cfg, s.RunID), badIDs(fixed); !slices.Equal(got, want) {
		t.Errorf("DLQ holds %v, want %v", got, want)
	}
	for part := range s.Partitions {
		cp, err := store.LoadCheckpoint(context.Background(), s.RunID, part)
		if err != nil {
			t.Fatal(err)
		}
		letters, err := mapreduce.DeadLetters(context.Background(), cfg, s.RunID, mapreduce.DeadLetterFilter{Partitions: []int{part}})
		if err != nil {
			t.Fatal(err)
		}
		if cp.Failed != int64(len(letters)) {
			t.Errorf("partition %d: checkpoint counts %d failed, DLQ holds %d", part, cp.Failed, len(letters))
		}
	}

	applied := sink.applied
	if res, err := replay(); err != nil || res.Generation != 1 || res.Succeeded != 0 {
		t.Errorf("third replay: %+v, %v", res, err)
	}
	if sink.applied != applied {
		t.Errorf("the third replay applied %d buckets", sink.applied-applied)
	}
	checkTable(t, sink.table, truth(fixed))
}

func TestReplay_NotFinished(t *testing.T) {
	t.Parallel()
	cfg := runtest.Config(t)
	_, err := mapreduce.Replay(context.Background(), sumJob(t), &memSource{rows: randomRows(1, 100, 10, 0), read: map[int64]int{}}, newMemSink(), cfg)
	if !errors.Is(err, mapreduce.ErrNotFinished) {
		t.Errorf("replay of a run never started returned %v", err)
	}
}

// failingApplySink fails the applies of replay generations after the first
// n, as a crash in the middle of a replay's re-apply would.
type failingApplySink struct {
	*memSink
	left atomic.Int64
}

func (s *failingApplySink) Apply(ctx context.Context, t mapreduce.OutputTable, commit string, bucket int, rows mapreduce.OutputRows) error {
	if strings.Contains(commit, ".replay") && s.left.Add(-1) < 0 {
		return errCrash
	}
	return s.memSink.Apply(ctx, t, commit, bucket, rows)
}

// TestReplay_CrashWhileApplying: a replay that dies while re-applying its
// buckets leaves the run unfinished; mr run says so instead of finishing
// with the old values, and the next replay re-applies only what is left.
func TestReplay_CrashWhileApplying(t *testing.T) {
	t.Parallel()
	rows := randomRows(12, 10_000, 2_000, 0.01)
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Buckets, cfg.Workers, cfg.MaxFailureRate = 4, 8, 1, 1
	sink := &failingApplySink{memSink: newMemSink()}
	if _, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg); err != nil {
		t.Fatal(err)
	}
	fixed := slices.Clone(rows)
	for i, r := range fixed {
		if r.kind == "poison" || r.kind == "panic" {
			fixed[i].kind = "ok"
		}
	}
	src := func() *memSource { return &memSource{rows: fixed, read: map[int64]int{}} }
	sink.left.Store(1)
	if _, err := mapreduce.Replay(context.Background(), sumJob(t), src(), sink, cfg); !errors.Is(err, errCrash) {
		t.Fatalf("replay returned %v, want the simulated crash", err)
	}
	_, err := mapreduce.Run(context.Background(), sumJob(t), src(), sink, cfg)
	if err == nil || !strings.Contains(err.Error(), "did not finish") || !strings.Contains(err.Error(), "mr dlq replay") {
		t.Fatalf("mr run after a half-applied replay = %v, want an error saying to finish the replay", err)
	}
	sink.left.Store(1 << 40)
	applied := sink.applied
	res, err := mapreduce.Replay(context.Background(), sumJob(t), src(), sink, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Letters != 0 || res.Buckets == 0 || res.Buckets != sink.applied-applied || res.Buckets >= cfg.Buckets {
		t.Errorf("the finishing replay: %+v, %d applies; want no letters and only the buckets left", res, sink.applied-applied)
	}
	checkTable(t, sink.table, truth(fixed))
	if _, err := mapreduce.Run(context.Background(), sumJob(t), src(), sink, cfg); err != nil {
		t.Errorf("mr run after the replay finished: %v", err)
	}
}

// bucketFailingSink fails every Apply of one bucket under the plan's own
// commit key, as a reduce phase that stopped before it would.
type bucketFailingSink struct {
	*memSink
	bucket int
	fail   atomic.Bool
}

func (s *bucketFailingSink) Apply(ctx context.Context, t mapreduce.OutputTable, commit string, bucket int, rows mapreduce.OutputRows) error {
	if s.fail.Load() && bucket == s.bucket && !strings.Contains(commit, ".replay") {
		return errCrash
	}
	return s.memSink.Apply(ctx, t, commit, bucket, rows)
}

// TestReplay_ReduceNotFinished: a replay of a run whose reduce phase
// stopped applies the buckets the run left, not only those it touched.
func TestReplay_ReduceNotFinished(t *testing.T) {
	t.Parallel()
	rows := randomRows(13, 5_000, 300, 0.01)
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Buckets, cfg.Workers, cfg.MaxFailureRate = 3, 6, 2, 1
	sink := &bucketFailingSink{memSink: newMemSink(), bucket: 2}
	sink.fail.Store(true)
	if _, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg); !errors.Is(err, errCrash) {
		t.Fatalf("run = %v, want the failed bucket", err)
	}
	sink.fail.Store(false)
	if _, err := mapreduce.Replay(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg); err != nil {
		t.Fatal(err)
	}
	checkTable(t, sink.table, truth(rows))
}
