package mapreduce_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/mapreduce"
)

// TestDeadLetters_ErrorsStoredOnce: a Map that panics on every row writes
// its stack once per dead-letter file, not once per row, so the DLQ grows
// with the rows, not with the stacks; every letter still reads back with
// its row, error and stack, and DeadLetterErrors counts them by error. The
// log lines give the bytes per letter of both formats (go test -v).
func TestDeadLetters_ErrorsStoredOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		interval time.Duration
		maxRatio float64 // bytes per letter now, over bytes per letter in format 3
	}{
		{"commits=2", time.Hour, 0.10},                 // one commit, one file per partition
		{"commits=every-chunk", time.Nanosecond, 0.15}, // a file per 250 letters
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rows := failingRows(2_000, "panic")
			rows[100].kind, rows[1500].kind = "poison", "poison"
			cfg := runtest.Config(t)
			cfg.Partitions, cfg.Buckets, cfg.Workers, cfg.ChunkSize, cfg.MaxRetries, cfg.MaxFailureRate = 2, 2, 2, 250, 0, 1
			cfg.CheckpointInterval = tc.interval
			s, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, newMemSink(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			ri, err := mapreduce.Inspect(context.Background(), cfg, s.RunID)
			if err != nil {
				t.Fatal(err)
			}
			var size int64
			var files int
			for _, cp := range ri.Checkpoints {
				for _, f := range cp.DeadLetters {
					size += f.Size
					files++
				}
			}
			letters, err := ri.DeadLetters(context.Background(), mapreduce.DeadLetterFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(letters) != len(rows) {
				t.Fatalf("%d letters for %d failed rows", len(letters), len(rows))
			}
			var full int64 // the letters as format 3 wrote them: each one whole
			for i, l := range letters {
				if l.Cursor != int64(i+1) || l.Row["grp"] != rows[i].group {
					t.Fatalf("letter %d is %+v, want row %d", i, l, i+1)
				}
				switch {
				case l.Cursor == 101 || l.Cursor == 1501:
					if l.Error != "poison row" || l.Stack != "" {
						t.Errorf("poison letter %+v", l)
					}
				case l.Error != "panic: boom" || !strings.Contains(l.Stack, "engine_test.go"):
					t.Fatalf("letter %+v has lost its error or stack", l)
				}
				data, _ := json.Marshal(l)
				full += int64(len(data)) + 1
			}
			perLetter, before := float64(size)/float64(len(letters)), float64(full)/float64(len(letters))
			t.Logf("%d letters in %d files: %d bytes, %.0f bytes per letter; format 3 wrote %d bytes, %.0f per letter (%.1fx)",
				len(letters), files, size, perLetter, full, before, before/perLetter)
			if perLetter > tc.maxRatio*before {
				t.Errorf("%.0f bytes per letter, format 3 wrote %.0f: want at most %.0f%% of it", perLetter, before, 100*tc.maxRatio)
			}

			counts, err := ri.DeadLetterErrors(context.Background(), mapreduce.DeadLetterFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(counts) != 2 {
				t.Fatalf("DeadLetterErrors = %+v, want 2 errors", counts)
			}
			panics, poison := counts[0], counts[1]
			if panics.Error != "panic: boom" || panics.Letters != len(rows)-2 || !slices.Equal(panics.Partitions, []int{0, 1}) ||
				panics.FirstCursor != 1 || !strings.Contains(panics.Stack, "engine_test.go") {
				t.Errorf("the panics count as %+v", panics)
			}
			if poison.Error != "poison row" || poison.Letters != 2 || poison.FirstCursor != 101 || poison.Stack != "" || !slices.Equal(poison.Partitions, []int{0, 1}) {
				t.Errorf("the poison rows count as %+v", poison)
			}
		})
	}
}

// TestDeadLetterErrors_Resolved: the letters a replay resolved are not
// counted, and a partition filter counts only its partitions.
func TestDeadLetterErrors_Resolved(t *testing.T) {
	t.Parallel()
	rows := failingRows(400, "ok")
	for i := range rows {
		if i%10 == 0 {
			rows[i].kind = []string{"poison", "panic"}[i/10%2]
		}
	}
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Buckets, cfg.ChunkSize, cfg.MaxFailureRate = 4, 2, 50, 1
	sink := newMemSink()
	s, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg)
	if err != nil {
		t.Fatal(err)
	}
	count := func(filter mapreduce.DeadLetterFilter) string {
		ri, err := mapreduce.Inspect(context.Background(), cfg, s.RunID)
		if err != nil {
			t.Fatal(err)
		}
		counts, err := ri.DeadLetterErrors(context.Background(), filter)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range counts {
			out = append(out, fmt.Sprintf("%s: %d in %v from %d", c.Error, c.Letters, c.Partitions, c.FirstCursor))
		}
		return strings.Join(out, "; ")
	}
	if got, want := count(mapreduce.DeadLetterFilter{}), "poison row: 20 in [0 1 2 3] from 1; panic: boom: 20 in [0 1 2 3] from 11"; got != want {
		t.Errorf("DeadLetterErrors = %s, want %s", got, want)
	}
	if got, want := count(mapreduce.DeadLetterFilter{Partitions: []int{2}}), "poison row: 5 in [2] from 201; panic: boom: 5 in [2] from 211"; got != want {
		t.Errorf("DeadLetterErrors of partition 2 = %s, want %s", got, want)
	}
	// Only the poison rows are fixed.
	j := sumJob(t)
	base := j.Map
	j.Map = func(ctx context.Context, row mapreduce.Row, emit func(string, int64)) error {
		if row.String(2) == "poison" {
			emit(row.String(0), row.Int64(1))
			return nil
		}
		return base(ctx, row, emit)
	}
	if _, err := mapreduce.Replay(context.Background(), j, &memSource{rows: rows, read: map[int64]int{}}, sink, cfg); err != nil {
		t.Fatal(err)
	}
	if got, want := count(mapreduce.DeadLetterFilter{}), "panic: boom: 20 in [0 1 2 3] from 11"; got != want {
		t.Errorf("after the replay, DeadLetterErrors = %s, want %s", got, want)
	}
}
