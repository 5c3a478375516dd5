package mapreduce_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/mapreduce"
)

func TestAddInt64(t *testing.T) {
	t.Parallel()
	for _, c := range [][2]int64{{1, 2}, {math.MaxInt64, 0}, {math.MaxInt64, math.MinInt64}, {math.MinInt64, 0}, {-1, math.MinInt64 + 1}, {math.MaxInt64 - 1, 1}} {
		if got := mapreduce.AddInt64(c[0], c[1]); got != c[0]+c[1] {
			t.Errorf("AddInt64(%d, %d) = %d", c[0], c[1], got)
		}
	}
	for _, c := range [][2]int64{{math.MaxInt64, 1}, {1, math.MaxInt64}, {math.MinInt64, -1}, {math.MinInt64, math.MinInt64}, {math.MaxInt64, math.MaxInt64}} {
		func() {
			defer func() {
				err, _ := recover().(error)
				if !errors.Is(err, mapreduce.ErrOverflow) {
					t.Errorf("AddInt64(%d, %d) panicked with %v, want ErrOverflow", c[0], c[1], err)
				}
			}()
			t.Errorf("AddInt64(%d, %d) = %d, want a panic", c[0], c[1], mapreduce.AddInt64(c[0], c[1]))
		}()
	}
}

// checkedSumJob is sumJob with a Combine that sums with AddInt64.
func checkedSumJob(t *testing.T) *mapreduce.Job[string, int64] {
	j := sumJob(t)
	j.Combine = mapreduce.AddInt64
	return j
}

// TestRun_OverflowInMap sums past the largest int64 within one
// partition: the run stops with an error that names the key, where a
// plain + would write a wrapped negative total with nothing to show.
func TestRun_OverflowInMap(t *testing.T) {
	t.Parallel()
	rows := []memRow{
		{id: 1, group: "a", amount: math.MaxInt64 - 10, kind: "ok"},
		{id: 2, group: "a", amount: 5, kind: "ok"},
		{id: 3, group: "a", amount: 100, kind: "ok"}, // overflows a
		{id: 4, group: "b", amount: 100, kind: "ok"},
	}
	cfg := runtest.Config(t)
	cfg.Partitions = 1
	sink := newMemSink()
	for range 2 { // and again when resumed: the data decides, not the moment
		_, err := mapreduce.Run(context.Background(), checkedSumJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg)
		const want = "partition 0: the values of key a overflow as they combine (integer overflow: 9223372036854775802 + 100 does not fit an int64): change the rows, or make the job's value wider"
		if !errors.Is(err, mapreduce.ErrOverflow) || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %q", err, want)
		}
	}
	if len(sink.table) != 0 {
		t.Errorf("the sink holds %v after the failed map phase", sink.table)
	}
}

// TestRun_OverflowAcrossPartitions sums past the largest int64 only when
// two partitions' totals of a key meet in the reduce: the run stops there
// too, naming the key, and writes no wrapped total.
func TestRun_OverflowAcrossPartitions(t *testing.T) {
	t.Parallel()
	var rows []memRow
	for id := int64(1); id <= 100; id++ {
		rows = append(rows, memRow{id: id, group: "b", amount: 1, kind: "ok"})
	}
	rows[0].group, rows[0].amount = "a", math.MaxInt64/2+1
	rows[99].group, rows[99].amount = "a", math.MaxInt64/2+1
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Buckets = 2, 1
	sink := newMemSink()
	_, err := mapreduce.Run(context.Background(), checkedSumJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg)
	if !errors.Is(err, mapreduce.ErrOverflow) || !strings.Contains(err.Error(), "bucket 0: the values of key a overflow as they combine (integer overflow: ") {
		t.Fatalf("err = %v, want the overflow of key a", err)
	}
	if len(sink.table) != 0 {
		t.Errorf("the sink holds %v after the failed bucket", sink.table)
	}
}
