package sinktest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/mrengine/mr/mapreduce"
)

// everyType is an output table with a value of every field type that
// Merge reads back.
var everyType = mapreduce.OutputTable{
	Name: "every_type",
	Keys: []mapreduce.Field{
		{Name: "k", Type: mapreduce.TypeInt64},
		{Name: "day", Type: mapreduce.TypeDate},
		{Name: "name", Type: mapreduce.TypeString},
	},
	Values: []mapreduce.Field{
		{Name: "n", Type: mapreduce.TypeInt64},
		{Name: "x", Type: mapreduce.TypeFloat64},
		{Name: "s", Type: mapreduce.TypeString},
		{Name: "b", Type: mapreduce.TypeBool},
		{Name: "d", Type: mapreduce.TypeDate},
		{Name: "ts", Type: mapreduce.TypeTimestamp},
		{Name: "dec", Type: mapreduce.TypeDecimal},
		{Name: "raw", Type: mapreduce.TypeBytes},
	},
}

// addRollup merges two rows of rollup as a job's Combine would: events
// and totals add up, and a group is flagged if either row is.
func addRollup(stored, row []any) []any {
	if stored == nil {
		return row
	}
	return []any{row[0], row[1], row[2],
		stored[3].(int64) + row[3].(int64), stored[4].(float64) + row[4].(float64), stored[5].(bool) || row[5].(bool)}
}

// mergeEvery merges two rows of everyType: n adds up, and every other
// value is the new row's unless that is NULL.
func mergeEvery(stored, row []any) []any {
	if stored == nil {
		return row
	}
	out := slices.Clone(row)
	for i := 3; i < len(row); i++ {
		switch {
		case row[i] == nil:
			out[i] = stored[i]
		case i == 3 && stored[i] != nil:
			out[i] = stored[i].(int64) + row[i].(int64)
		}
	}
	return out
}

// mergedRows is the independent truth of a merge: the rows of base with
// every row of parts merged into them by combine, in key order of Canon.
func mergedRows(keys int, combine func(stored, row []any) []any, base [][]any, parts ...[][]any) [][]any {
	byKey := map[string][]any{}
	for _, row := range base {
		byKey[Canon(row[:keys])] = row
	}
	for _, part := range parts {
		for _, row := range part {
			key := Canon(row[:keys])
			byKey[key] = combine(byKey[key], row)
		}
	}
	out := make([][]any, 0, len(byKey))
	for _, row := range byKey {
		out = append(out, row)
	}
	sortRows(out)
	return out
}

// storedOf returns the rows of base whose keys are among part's.
func storedOf(keys int, base, part [][]any) [][]any {
	in := map[string]bool{}
	for _, row := range part {
		in[Canon(row[:keys])] = true
	}
	var out [][]any
	for _, row := range base {
		if in[Canon(row[:keys])] {
			out = append(out, row)
		}
	}
	return out
}

func sortRows(rows [][]any) {
	slices.SortFunc(rows, func(a, b []any) int {
		ca, cb := Canon(a), Canon(b)
		switch {
		case ca < cb:
			return -1
		case ca > cb:
			return 1
		}
		return 0
	})
}

// checkRows checks that got holds the rows of want, in any order, with
// the same Go types and exact values.
func checkRows(t *testing.T, what string, got, want [][]any) {
	t.Helper()
	g, w := make([]string, len(got)), make([]string, len(want))
	for i, row := range got {
		g[i] = Canon(row)
	}
	for i, row := range want {
		w[i] = Canon(row)
	}
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("%s:\ngot  %q\nwant %q", what, g, w)
	}
}

// checkStored checks that each Merge of p read exactly the stored rows of
// want, the rows of its part's keys.
func checkStored(t *testing.T, p *Parts, want ...[][]any) {
	t.Helper()
	if len(p.Stored) != len(want) {
		t.Errorf("Merge was called %d times, want %d", len(p.Stored), len(want))
		return
	}
	for i := range want {
		checkRows(t, fmt.Sprint("the stored rows of part ", i), p.Stored[i], want[i])
	}
}

func decimal(t *testing.T, text string) *apd.Decimal {
	t.Helper()
	d, _, err := apd.NewFromString(text)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// merger is the bundle's sink as a mapreduce.Merger.
func merger(b *testBundle) mapreduce.Merger {
	b.t.Helper()
	m, ok := b.Sink.(mapreduce.Merger)
	if !ok {
		b.t.Fatalf("%T is not a mapreduce.Merger", b.Sink)
	}
	return m
}

func mergeInto(b *testBundle, table mapreduce.OutputTable, cols []mapreduce.Field, commit string, bucket int, p *Parts) {
	b.t.Helper()
	if err := merger(b).Merge(b.t.Context(), table, cols, commit, bucket, p); err != nil {
		b.t.Fatal(err)
	}
}

// runMerge runs the cases of mapreduce.Merger, which every backend
// implements.
func runMerge(t *testing.T, newBackend NewFunc) {
	merge := func(b *testBundle, commit string, bucket int, p *Parts) {
		b.t.Helper()
		mergeInto(b, rollup, rollup.Values, commit, bucket, p)
	}
	rollupParts := func(parts ...[][]any) *Parts {
		return &Parts{KeyCols: len(rollup.Keys), Parts: parts, CombineFunc: addRollup}
	}
	merged := func(base [][]any, parts ...[][]any) [][]any {
		return stored(mergedRows(len(rollup.Keys), addRollup, base, parts...))
	}

	t.Run("MergeIntoEmpty", func(t *testing.T) {
		t.Parallel()
		bundle := prepared(t, newBackend)
		rows := makeRows(0, 250, 1) // two full statements and a part
		p := rollupParts(rows)
		merge(bundle, "c1", 0, p)
		checkStored(t, p, nil)
		checkTable(bundle, stored(rows))
		checkCommitted(bundle, "c1", 0)
	})

	// A bucket without new groups is recorded, and changes nothing.
	t.Run("MergeNoParts", func(t *testing.T) {
		t.Parallel()
		bundle := prepared(t, newBackend)
		base := makeRows(0, 20, 1)
		apply(bundle, "c1", 0, rowsOf(base))
		p := rollupParts()
		merge(bundle, "c2", 3, p)
		if p.Nexts != 1 || p.Merges != 0 {
			t.Errorf("Next called %d times, Merge %d, want 1 and none", p.Nexts, p.Merges)
		}
		checkTable(bundle, stored(base))
		checkCommitted(bundle, "c2", 3)
	})

	// Merge hands over the stored rows of the part's keys, and only those,
	// with every value exact, as the Go type of its field, and writes the
	// merged rows.
	t.Run("MergeStored", func(t *testing.T) {
		t.Parallel()
		b := &testBundle{Backend: newBackend(t), t: t}
		if err := b.Sink.Prepare(t.Context(), everyType); err != nil {
			t.Fatal(err)
		}
		x := 0.1
		ts := time.Date(2026, 11, 29, 13, 4, 5, 123456000, time.UTC)
		base := [][]any{
			{int64(0), day, "a", int64(1), x + 0.2, "plain", true, day, ts, decimal(t, "1.50"), []byte{0, 1, 0xff}},
			{int64(1), day + 1, `ü "quoted" 'x'`, int64(-9007199254740993), 1e300, "", false, mapreduce.Date(-1),
				time.Date(1969, 7, 20, 20, 17, 40, 1000, time.UTC), decimal(t, "-0.000100"), []byte{}},
			{int64(2), mapreduce.Date(-4000), "", int64(math.MaxInt64), -2.5e-300, "日本", true, mapreduce.Date(0),
				ts.Add(999999 * time.Microsecond), decimal(t, "0.00"), []byte("bytes")},
			{int64(3), day, "a", nil, nil, nil, nil, nil, nil, nil, nil},
			{int64(4), day, "b", int64(7), 3.0, "x", false, day + 365, ts.Add(time.Microsecond), decimal(t, "100"), []byte{0}},
			{int64(5), day, "b", int64(-1), -0.5, "y", true, day - 1, ts.Add(-time.Hour),
				decimal(t, "123456789012345678901234567890.123456789012"), []byte{'\\', '\''}},
		}
		applyTo(b, everyType, "c1", 0, rowsOf(base))
		part0 := [][]any{
			{int64(0), day, "a", int64(2), nil, nil, nil, nil, nil, nil, nil},
			{int64(1), day + 1, `ü "quoted" 'x'`, int64(3), 2.25, "new", true, day, ts, decimal(t, "9.990"), []byte{7}},
			{int64(3), day, "a", int64(5), nil, nil, nil, nil, nil, decimal(t, "2.50"), nil},
			{int64(100), day, "a", int64(1), 1.0, "n", false, day, ts, decimal(t, "0.10"), []byte{1}},
		}
		part1 := [][]any{
			{int64(2), mapreduce.Date(-4000), "", nil, nil, nil, false, nil, nil, nil, []byte{}},
			{int64(101), day, "a", nil, nil, nil, nil, nil, nil, nil, nil},
		}
		p := &Parts{KeyCols: 3, Parts: [][][]any{part0, part1}, CombineFunc: mergeEvery}
		mergeInto(b, everyType, everyType.Values, "c2", 0, p)
		checkStored(t, p, storedOf(3, base, part0), storedOf(3, base, part1))
		checkCommitted(b, "c2", 0)

		// Read the table back through Merge itself: its reading is exact,
		// as the stored rows above show.
		want := mergedRows(3, mergeEvery, base, part0, part1)
		var keys [][]any
		for _, row := range want {
			keys = append(keys, append(slices.Clone(row[:3]), make([]any, len(everyType.Values))...))
		}
		readBack := &Parts{KeyCols: 3, Parts: [][][]any{keys}, CombineFunc: func(stored, row []any) []any {
			if stored == nil {
				t.Errorf("the key %s is missing from the table", Canon(row[:3]))
				return row
			}
			return stored
		}}
		mergeInto(b, everyType, everyType.Values, "c3", 0, readBack)
		checkStored(t, readBack, want)
	})

	// The stored rows hold the key columns, then cols in their order,
	// whichever columns of the table they are.
	t.Run("MergeColumns", func(t *testing.T) {
		t.Parallel()
		bundle := prepared(t, newBackend)
		base := makeRows(0, 30, 1)
		apply(bundle, "c1", 0, rowsOf(base))
		part := append(makeRows(10, 30, 2), makeRows(100, 5, 3)...)
		cols := []mapreduce.Field{rollup.Values[1], rollup.Values[0]} // total, events
		p := &Parts{KeyCols: 3, Parts: [][][]any{part}, CombineFunc: func(stored, row []any) []any {
			if stored == nil {
				return row
			}
			return []any{row[0], row[1], row[2], stored[4].(int64) + row[3].(int64), stored[3].(float64) + row[4].(float64), row[5]}
		}}
		mergeInto(bundle, rollup, cols, "c2", 0, p)
		var want [][]any
		for _, row := range storedOf(3, base, part) {
			want = append(want, []any{row[0], row[1], row[2], row[4], row[3]})
		}
		checkStored(t, p, want)
		after := mergedRows(3, addRollup, base, part) // what the combine above does in the table's order
		checkTable(bundle, stored(after))

		// No columns: the stored rows say which keys the table holds.
		probe := makeRows(25, 100, 1)
		keysOnly := &Parts{KeyCols: 3, Parts: [][][]any{probe}, CombineFunc: func(_, row []any) []any { return row }}
		mergeInto(bundle, rollup, nil, "c3", 0, keysOnly)
		want = nil
		for _, row := range storedOf(3, after, probe) {
			want = append(want, row[:3])
		}
		checkStored(t, keysOnly, want)
	})

	// A bucket merged already under the commit, or applied under it, is
	// left alone: the parts are not even read.
	t.Run("MergeTwice", func(t *testing.T) {
		t.Parallel()
		bundle := prepared(t, newBackend)
		base := makeRows(0, 120, 1)
		apply(bundle, "c1", 0, rowsOf(base))
		part := makeRows(60, 120, 2)
		merge(bundle, "c2", 0, rollupParts(part))
		want := merged(base, part)
		checkTable(bundle, want)
		for _, commit := range []string{"c2", "c1"} {
			again := rollupParts(part)
			merge(bundle, commit, 0, again)
			if again.Nexts != 0 || again.Merges != 0 {
				t.Errorf("Merge of a bucket committed under %s: Next called %d times, Merge %d, want none", commit, again.Nexts, again.Merges)
			}
		}
		checkTable(bundle, want)
		checkCommitted(bundle, "c2", 0)
	})

	// Parts of one bucket each see the stored rows of their own keys only,
	// and all of them are written: big, empty, stored keys only, new only.
	t.Run("MergeParts", func(t *testing.T) {
		t.Parallel()
		bundle := prepared(t, newBackend)
		base := makeRows(0, 300, 1)
		apply(bundle, "c1", 0, rowsOf(base))
		parts := [][][]any{
			append(makeRows(0, 50, 2), makeRows(300, 50, 2)...),
			nil,
			makeRows(100, 150, 3),
			makeRows(400, 10, 4),
		}
		p := rollupParts(parts...)
		merge(bundle, "c2", 0, p)
		var want [][][]any
		for _, part := range parts {
			want = append(want, storedOf(3, base, part))
		}
		checkStored(t, p, want...)
		checkTable(bundle, merged(base, parts...))
		checkCommitted(bundle, "c2", 0)
	})

	// A Merge that fails anywhere, in the parts, their keys, Merge or the
	// rows it returns, changes nothing and records nothing, and the same
	// bucket merges afterwards.
	t.Run("MergeFailing", func(t *testing.T) {
		t.Parallel()
		for name, fail := range map[string]FailPoint{
			"Next": FailNext, "Keys": FailKeys, "Merge": FailMerge, "Merged": FailMerged,
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				bundle := prepared(t, newBackend)
				base := makeRows(0, 150, 1)
				apply(bundle, "c1", 0, rowsOf(base))
				parts := [][][]any{append(makeRows(0, 50, 2), makeRows(150, 20, 2)...), makeRows(50, 60, 3), makeRows(200, 10, 1)}
				p := rollupParts(parts...)
				p.Fail, p.FailPart, p.FailErr = fail, 1, errBoom
				err := merger(bundle).Merge(t.Context(), rollup, rollup.Values, "c2", 0, p)
				if !errors.Is(err, errBoom) {
					t.Fatalf("Merge error = %v, want one wrapping %v", err, errBoom)
				}
				checkTable(bundle, stored(base))
				checkCommitted(bundle, "c2")
				merge(bundle, "c2", 0, rollupParts(parts...)) // the failure released the sink
				checkTable(bundle, merged(base, parts...))
				checkCommitted(bundle, "c2", 0)
			})
		}
	})

	t.Run("MergeWrongWidth", func(t *testing.T) {
		t.Parallel()
		bundle := prepared(t, newBackend)
		base := makeRows(0, 20, 1)
		apply(bundle, "c1", 0, rowsOf(base))
		p := &Parts{KeyCols: 3, Parts: [][][]any{makeRows(10, 20, 2)}, CombineFunc: func(_, row []any) []any { return row[:4] }}
		err := merger(bundle).Merge(t.Context(), rollup, rollup.Values, "c2", 0, p)
		mustFail(t, "Merge of rows of 4 values", err, "4 values")
		checkTable(bundle, stored(base))
		checkCommitted(bundle, "c2")
	})

	t.Run("MergeDroppedTable", func(t *testing.T) {
		t.Parallel()
		bundle := prepared(t, newBackend)
		apply(bundle, "c1", 0, rowsOf(makeRows(0, 20, 1)))
		if err := bundle.Exec(`DROP TABLE "rollup"`); err != nil {
			t.Fatal(err)
		}
		p := rollupParts(makeRows(0, 10, 2))
		err := merger(bundle).Merge(t.Context(), rollup, rollup.Values, "c2", 0, p)
		mustFail(t, "Merge into a dropped table", err, "was dropped during the run", "run the same command again")
		if p.Nexts != 0 {
			t.Errorf("Merge into a dropped table read the parts")
		}
	})

	t.Run("MergeConcurrent", func(t *testing.T) {
		t.Parallel()
		bundle := prepared(t, newBackend)
		const buckets, n = 6, 60
		var base, parts [][]any
		for b := range buckets {
			applied := makeRows(b*2*n, n, 1)
			apply(bundle, "c1", b, rowsOf(applied))
			base = append(base, applied...)
		}
		var wg sync.WaitGroup
		errs := make([]error, buckets)
		for b := range buckets {
			part := makeRows(b*2*n+n/2, n, b+2) // half stored, half new
			parts = append(parts, part...)
			wg.Go(func() {
				errs[b] = merger(bundle).Merge(t.Context(), rollup, rollup.Values, "c2", b, rollupParts(part))
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		checkTable(bundle, merged(base, parts))
		checkCommitted(bundle, "c2", 0, 1, 2, 3, 4, 5)
	})

	// Concurrent Merges of one bucket under one commit merge it once:
	// twice would add the new values twice.
	t.Run("MergeSameBucketConcurrently", func(t *testing.T) {
		t.Parallel()
		bundle := prepared(t, newBackend)
		base := makeRows(0, 120, 1)
		apply(bundle, "c1", 2, rowsOf(base))
		part := makeRows(60, 120, 1)
		const mergers = 4
		var wg sync.WaitGroup
		errs := make([]error, mergers)
		for i := range mergers {
			wg.Go(func() {
				errs[i] = merger(bundle).Merge(t.Context(), rollup, rollup.Values, "c2", 2, rollupParts(part))
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		checkTable(bundle, merged(base, part))
		checkCommitted(bundle, "c2", 2)
	})
}
