package mapreduce_test

import (
	"context"
	"errors"
	"slices"
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
