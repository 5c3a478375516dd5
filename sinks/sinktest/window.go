package sinktest

import (
	"errors"
	"testing"
	"time"

	"github.com/mrengine/mr/mapreduce"
)

// keysOf returns the key values of rows.
func keysOf(keys int, rows [][]any) [][]any {
	out := make([][]any, len(rows))
	for i, row := range rows {
		out[i] = row[:keys]
	}
	return out
}

// splitRows returns the rows for which in reports true, then the others.
func splitRows(rows [][]any, in func(row []any) bool) (yes, no [][]any) {
	for _, row := range rows {
		if in(row) {
			yes = append(yes, row)
		} else {
			no = append(no, row)
		}
	}
	return yes, no
}

// runMergeWindow runs the cases of a Merger's lookback window (see
// mapreduce.Window): before the first part, Merge deletes the stored
// groups of the window that the bucket owns, in the bucket's transaction.
func runMergeWindow(t *testing.T, newBackend NewFunc) {
	// The window of the rollup cases is the groups of the last two of the
	// three days of makeRows; the bucket owns those of even accounts.
	from := day + 1
	inWindow := func(row []any) bool { return row[1].(mapreduce.Date) >= from }
	owned := func(key []any) bool { return key[0].(int64)%2 == 0 }
	windowParts := func(parts ...[][]any) *Parts {
		return &Parts{KeyCols: len(rollup.Keys), Parts: parts, CombineFunc: addRollup,
			Lookback: &mapreduce.Window{Column: "day", From: from}, OwnedFunc: owned}
	}
	// A bucket's groups: stored ones, and new rows of a recomputed window
	// and of groups before it.
	base := makeRows(0, 120, 1)
	window, before := splitRows(base, inWindow)
	recomputed, _ := splitRows(makeRows(0, 60, 5), func(row []any) bool { return inWindow(row) && owned(row) })
	_, fresh := splitRows(makeRows(600, 30, 2), inWindow)
	parts := [][][]any{
		recomputed, // half the owned groups of the window
		append(before[:10:10], fresh...),
	}
	// What the table holds after a window merge of parts into base, the
	// independent truth: the owned groups of the window are gone before
	// the first part, so that the parts' rows replace them.
	_, remaining := splitRows(base, func(row []any) bool { return inWindow(row) && owned(row) })
	want := stored(mergedRows(len(rollup.Keys), addRollup, remaining, parts...))

	// Owned is handed exactly the keys of the window's stored groups; the
	// ones it owns are replaced by the parts' rows or, absent from them,
	// deleted; the window's other groups are kept, and the groups before
	// the window merge as without one.
	t.Run("MergeWindow", func(t *testing.T) {
		t.Parallel()
		bundle := prepared(t, newBackend)
		apply(bundle, "c1", 0, rowsOf(base))
		p := windowParts(parts...)
		mergeInto(bundle, rollup, rollup.Values, "c2", 0, p)
		if p.Owneds != 1 {
			t.Errorf("Owned called %d times, want once", p.Owneds)
		}
		checkRows(t, "the stored keys handed to Owned", p.Windowed, keysOf(len(rollup.Keys), window))
		checkStored(t, p, storedOf(3, remaining, parts[0]), storedOf(3, remaining, parts[1]))
		checkTable(bundle, want)
		checkCommitted(bundle, "c2", 0)
	})

	// Owned is called, on no keys, when the window holds no stored group.
	t.Run("MergeWindowEmpty", func(t *testing.T) {
		t.Parallel()
		bundle := prepared(t, newBackend)
		p := windowParts(parts...)
		mergeInto(bundle, rollup, rollup.Values, "c2", 0, p)
		if p.Owneds != 1 || len(p.Windowed) != 0 {
			t.Errorf("Owned called %d times on %d keys, want once on none", p.Owneds, len(p.Windowed))
		}
		checkTable(bundle, stored(mergedRows(len(rollup.Keys), addRollup, nil, parts...)))
	})

	// The window starts at From, inclusive, exactly: a date key column by
	// the day, a timestamp one by the microsecond.
	t.Run("MergeWindowBoundary", func(t *testing.T) {
		t.Parallel()
		table := mapreduce.OutputTable{
			Name: "windowed",
			Keys: []mapreduce.Field{
				{Name: "id", Type: mapreduce.TypeInt64},
				{Name: "day", Type: mapreduce.TypeDate},
				{Name: "at", Type: mapreduce.TypeTimestamp},
			},
			Values: []mapreduce.Field{{Name: "n", Type: mapreduce.TypeInt64}},
		}
		at := time.Date(2026, 11, 29, 13, 4, 5, 500000, time.UTC) // …:05.000500
		whole := at.Truncate(time.Second)
		for name, c := range map[string]struct {
			from   any
			values []any // of the column, the first half before from
		}{
			"Date": {day, []any{day - 400, day - 1, day, day + 1, day + 400}},
			// The whole second before from would sort after it as text
			// with a variable number of fractional digits ("05Z" > "05.0005Z").
			"Timestamp": {at, []any{
				whole, at.Add(-time.Microsecond), at.Add(-100 * time.Hour),
				at, at.Add(time.Microsecond), whole.Add(time.Second),
			}},
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				b := &testBundle{Backend: newBackend(t), t: t}
				if err := b.Sink.Prepare(t.Context(), table); err != nil {
					t.Fatal(err)
				}
				column := 1
				if name == "Timestamp" {
					column = 2
				}
				var rows, inside, kept [][]any
				for i, v := range c.values {
					row := []any{int64(i), day, at, int64(1)}
					row[column] = v
					rows = append(rows, row)
					if i < len(c.values)/2 {
						kept = append(kept, []any{int64(i)})
					} else {
						inside = append(inside, row[:3])
					}
				}
				applyTo(b, table, "c1", 0, rowsOf(rows))
				p := &Parts{KeyCols: 3, Lookback: &mapreduce.Window{Column: table.Keys[column].Name, From: c.from}}
				mergeInto(b, table, table.Values, "c2", 0, p)
				checkRows(t, "the stored keys handed to Owned", p.Windowed, inside)
				checkRows(t, "the table's keys", b.Query(`SELECT "id" FROM "windowed"`), kept)
			})
		}
	})

	// A Merge that fails in Owned, or after it, rolls the deletion back:
	// the table is as it was, the bucket not recorded, and it merges
	// afterwards.
	t.Run("MergeWindowFailing", func(t *testing.T) {
		t.Parallel()
		for name, fail := range map[string]struct {
			at   FailPoint
			part int
		}{
			"Owned": {FailOwned, 0}, "Merge": {FailMerge, 1}, "Next": {FailNext, 2},
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				bundle := prepared(t, newBackend)
				apply(bundle, "c1", 0, rowsOf(base))
				p := windowParts(parts...)
				p.Fail, p.FailPart, p.FailErr = fail.at, fail.part, errBoom
				err := merger(bundle).Merge(t.Context(), rollup, rollup.Values, "c2", 0, p)
				if !errors.Is(err, errBoom) {
					t.Fatalf("Merge error = %v, want one wrapping %v", err, errBoom)
				}
				checkTable(bundle, stored(base))
				checkCommitted(bundle, "c2")
				mergeInto(bundle, rollup, rollup.Values, "c2", 0, windowParts(parts...))
				checkTable(bundle, want)
				checkCommitted(bundle, "c2", 0)
			})
		}
	})

	// A bucket merged already under the commit, or applied under it, is
	// left alone: no window is read, nothing deleted.
	t.Run("MergeWindowTwice", func(t *testing.T) {
		t.Parallel()
		bundle := prepared(t, newBackend)
		apply(bundle, "c1", 0, rowsOf(base))
		mergeInto(bundle, rollup, rollup.Values, "c2", 0, windowParts(parts...))
		for _, commit := range []string{"c2", "c1"} {
			again := windowParts()
			again.OwnedFunc = nil // owns every group of the window
			mergeInto(bundle, rollup, rollup.Values, commit, 0, again)
			if again.Owneds != 0 || again.Nexts != 0 || again.Merges != 0 {
				t.Errorf("Merge of a bucket committed under %s: Owned called %d times, Next %d, Merge %d, want none",
					commit, again.Owneds, again.Nexts, again.Merges)
			}
		}
		checkTable(bundle, want)
		checkCommitted(bundle, "c2", 0)
	})

	// A window that is not over a key column, or starts at no value of
	// its column's type, is refused before anything is read or changed.
	t.Run("MergeWindowInvalid", func(t *testing.T) {
		t.Parallel()
		for name, c := range map[string]struct {
			window mapreduce.Window
			says   []string
		}{
			"ValueColumn":   {mapreduce.Window{Column: "events", From: int64(1)}, []string{`column "events"`, "not a key column"}},
			"MissingColumn": {mapreduce.Window{Column: "hour", From: int64(1)}, []string{`column "hour"`, "not a key column"}},
			"FromType":      {mapreduce.Window{Column: "day", From: int64(from)}, []string{`column "day"`, "no value of the column's type"}},
			"FromNull":      {mapreduce.Window{Column: "day"}, []string{`column "day"`, "no value of the column's type"}},
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				bundle := prepared(t, newBackend)
				apply(bundle, "c1", 0, rowsOf(base))
				p := windowParts(parts...)
				p.Lookback, p.OwnedFunc = &c.window, nil
				err := merger(bundle).Merge(t.Context(), rollup, rollup.Values, "c2", 0, p)
				mustFail(t, "Merge with the window "+name, err, c.says...)
				if p.Owneds != 0 || p.Nexts != 0 {
					t.Errorf("Owned called %d times, Next %d, want none", p.Owneds, p.Nexts)
				}
				checkTable(bundle, stored(base))
				checkCommitted(bundle, "c2")
			})
		}
	})
}
