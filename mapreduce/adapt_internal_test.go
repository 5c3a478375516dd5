package mapreduce

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mrengine/mr/internal/blobs"
	"github.com/mrengine/mr/shuffle"
)

// TestStreamWorthIt holds the prediction to simulation: for keys drawn
// uniformly from G groups, a task streams when the distinct share of its
// whole range is clearly above streamThreshold, and combines when it is
// clearly below; keys that cluster by cursor keep it combining.
func TestStreamWorthIt(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, rows := range []int64{20_000, 200_000, 1_000_000} {
		for _, groups := range []int64{50, 2_000, 20_000, 200_000, 2_000_000, 1 << 40} {
			sample := streamSample(rows)
			seen := map[int64]bool{}
			keysInSample := 0
			for i := range rows {
				seen[rng.Int64N(groups)] = true
				if i+1 == sample {
					keysInSample = len(seen)
				}
			}
			actual := float64(len(seen)) / float64(rows)
			got := streamWorthIt(keysInSample, int(sample), rows)
			if (actual > streamThreshold+0.05 && !got) || (actual < streamThreshold-0.05 && got) {
				t.Errorf("rows=%d groups=%d: %d distinct keys in a sample of %d, %.3f of the whole range distinct; streamWorthIt = %t",
					rows, groups, keysInSample, sample, actual, got)
			}
		}
	}
	// A key per 100 consecutive rows repeats within the sample.
	if streamWorthIt(65_536/100+1, 65_536, 1_000_000) {
		t.Error("keys clustered by cursor stream")
	}
	if !streamWorthIt(4096, 4096, 1_000_000) || streamWorthIt(0, 0, 0) {
		t.Error("all-distinct sample does not stream, or an empty one does")
	}
}

// TestCombiner_Adapt: a map task's combiner streams once its sample's
// keys rarely repeat, counts the records it holds in the writer against
// the memory budget, and the spill it leaves adds up, once the reduce
// combines it, to exactly what combining would have given. Keys that
// repeat keep it combining.
func TestCombiner_Adapt(t *testing.T) {
	t.Parallel()
	j := &Job[int64, int64]{
		Name:   "adapt",
		Input:  Input{Table: "t", Columns: []string{"k"}},
		Output: Output{Table: "o"},
		Key:    Columns[int64]("k"),
		Value:  Columns[int64]("n"),
		Map: func(_ context.Context, row Row, emit func(int64, int64)) error {
			emit(row.Int64(0), 1)
			return nil
		},
		Combine: func(a, b int64) int64 { return a + b },
	}
	if err := j.Validate(); err != nil {
		t.Fatal(err)
	}
	spec := j.Spec()
	ctx := context.Background()
	run := func(t *testing.T, keys []int64, rows int64) (streamed bool, counts map[int64]int64) {
		t.Helper()
		w := shuffle.NewWriter(shuffle.Schema(spec.Shuffle), 4, 7, memory.NewGoAllocator())
		defer w.Release()
		c := j.newCombiner(0).(*mapCombiner[int64, int64])
		batch := NewBatch([]string{"k"})
		decided := false
		for i, k := range keys {
			batch.Append(int64(i))
			batch.SetInt64(0, k)
			if err := c.mapRow(ctx, batch.Row(batch.Len()-1)); err != nil {
				t.Fatal(err)
			}
			if !decided {
				decided = c.adapt(w, int64(i+1), rows)
			}
		}
		if got := c.len(); got != len(c.m)+c.streamed || c.out != nil && got != len(keys) {
			t.Errorf("len() = %d with %d keys held and %d streamed, of %d pairs", got, len(c.m), c.streamed, len(keys))
		}
		c.spill(w)
		b, err := blobs.OpenDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		files, err := w.Flush(ctx, b, func(bucket int) string { return fmt.Sprintf("b%d", bucket) })
		if err != nil {
			t.Fatal(err)
		}
		reduce := j.newCombiner(0).(*mapCombiner[int64, int64])
		if err := shuffle.Read(ctx, b, files, func(rec arrow.RecordBatch) error { reduce.add(rec); return nil }); err != nil {
			t.Fatal(err)
		}
		return c.out != nil, reduce.m
	}
	check := func(t *testing.T, keys []int64, counts map[int64]int64) {
		t.Helper()
		want := map[int64]int64{}
		for _, k := range keys {
			want[k]++
		}
		if len(counts) != len(want) {
			t.Fatalf("%d keys after the reduce, want %d", len(counts), len(want))
		}
		for k, n := range want {
			if counts[k] != n {
				t.Errorf("key %d: %d, want %d", k, counts[k], n)
			}
		}
	}

	t.Run("DistinctKeysStream", func(t *testing.T) {
		t.Parallel()
		var keys []int64
		for i := range int64(10_000) {
			keys = append(keys, i*7919%100_003) // distinct, in no order
		}
		keys = append(keys, keys[:500]...) // repeats after the sample: the reduce sums them
		streamed, counts := run(t, keys, int64(len(keys)))
		if !streamed {
			t.Error("distinct keys did not stream")
		}
		check(t, keys, counts)
	})
	t.Run("RepeatedKeysCombine", func(t *testing.T) {
		t.Parallel()
		var keys []int64
		for i := range int64(20_000) {
			keys = append(keys, i%1_800)
		}
		streamed, counts := run(t, keys, int64(len(keys)))
		if streamed {
			t.Error("1,800 keys over 20,000 pairs streamed")
		}
		check(t, keys, counts)
	})
}
