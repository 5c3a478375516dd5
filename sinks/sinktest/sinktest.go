// Package sinktest is the conformance suite of mapreduce.Sink: Run checks
// one backend against the contract every sink keeps (the output table and
// its primary key, upserts, a bucket applied at most once per commit key,
// rollback of a failed bucket, concurrent buckets, the same bucket applied
// concurrently, table names that are only names, checks of an existing
// table), and of mapreduce.Replacer, which every backend implements (a
// table with stale groups holds exactly the run's groups after the swap,
// and the old ones until then; staging and swapping are idempotent per
// commit; a new plan of the run starts its staging table over), and of
// mapreduce.Merger, which every backend implements too (Merge hands over
// exactly the stored rows of each part's keys, every value exact, writes
// the merged ones, merges a bucket once per commit, and changes nothing
// when it fails; with a lookback window, it hands Owned exactly the
// window's stored keys, From inclusive, and deletes the owned ones before
// the first part, in the bucket's transaction).
//
// A backend's test calls Run with a function that opens a sink on a new,
// empty database and gives the suite a way to look at that database:
//
//	func TestSQLite(t *testing.T) {
//		t.Parallel()
//		sinktest.Run(t, func(t *testing.T) sinktest.Backend { … })
//	}
package sinktest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/apd/v3"

	"github.com/mrengine/mr/mapreduce"
)

// Backend is a sink under test on a new, empty database, with access to
// that database from outside the sink.
type Backend struct {
	Sink mapreduce.Sink // the sink under test, not yet prepared
	// Exec runs one SQL statement on the database.
	Exec func(sql string) error
	// Query runs a query on the database and returns its rows, with values
	// as int64, float64, string or nil; it fails the test on an error.
	Query func(sql string) [][]any
}

// NewFunc returns a Backend on a new, empty database, closed in t.Cleanup.
// Run calls it from parallel subtests, once per case.
type NewFunc func(t *testing.T) Backend

// rollup is the output table of every case, with a field of each type that
// SQLite and PostgreSQL store alike.
var rollup = mapreduce.OutputTable{
	Name: "rollup",
	Keys: []mapreduce.Field{
		{Name: "account_id", Type: mapreduce.TypeInt64},
		{Name: "day", Type: mapreduce.TypeDate},
		{Name: "category", Type: mapreduce.TypeString},
	},
	Values: []mapreduce.Field{
		{Name: "events", Type: mapreduce.TypeInt64},
		{Name: "total", Type: mapreduce.TypeFloat64},
		{Name: "flagged", Type: mapreduce.TypeBool},
	},
}

// selectAll reads rollup with its values as int64, float64 or string in
// both SQLite and PostgreSQL.
const selectAll = `SELECT "account_id", CAST("day" AS text), "category", "events", "total", CAST("flagged" AS integer)
	FROM "rollup" ORDER BY 1, 2, 3`

// day is the Date of the first day of the rows, 2026-11-29.
const day = mapreduce.Date(20786)

// makeRows returns n output rows with keys from first on, each with events
// set to events: rows for one bucket.
func makeRows(first, n, events int) [][]any {
	rows := make([][]any, n)
	for i := range rows {
		k := first + i
		rows[i] = []any{int64(k / 6), day + mapreduce.Date(k%3), []string{"a", "b"}[k/3%2],
			int64(events), float64(events) / 4, k%2 == 0}
	}
	return rows
}

// stored returns rows as selectAll reads them back.
func stored(rows [][]any) [][]any {
	out := make([][]any, len(rows))
	for i, r := range rows {
		flagged := int64(0)
		if r[5].(bool) {
			flagged = 1
		}
		out[i] = []any{r[0], r[1].(mapreduce.Date).String(), r[2], r[3], r[4], flagged}
	}
	slices.SortFunc(out, func(a, b []any) int {
		return cmp.Or(cmp.Compare(a[0].(int64), b[0].(int64)), strings.Compare(a[1].(string), b[1].(string)),
			strings.Compare(a[2].(string), b[2].(string)))
	})
	return out
}

// sliceRows is a mapreduce.Rows over a slice. If err is set, Values
// returns it at row failAt, or Err returns it after the last row.
type sliceRows struct {
	rows   [][]any
	i      int
	err    error
	failAt int // 0: Err fails; else Values fails on row failAt
}

func rowsOf(rows [][]any) *sliceRows { return &sliceRows{rows: rows, i: -1} }

func (r *sliceRows) Next() bool {
	r.i++
	return r.i < len(r.rows)
}

func (r *sliceRows) Values() ([]any, error) {
	if r.err != nil && r.failAt > 0 && r.i == r.failAt {
		return nil, r.err
	}
	return r.rows[r.i], nil
}

func (r *sliceRows) Err() error {
	if r.failAt == 0 {
		return r.err
	}
	return nil
}

var errBoom = errors.New("boom")

// testBundle is a Backend of one test case.
type testBundle struct {
	Backend
	t *testing.T
}

// prepared returns a bundle of a new backend whose sink has prepared the
// table rollup.
func prepared(t *testing.T, newBackend NewFunc) *testBundle {
	t.Helper()
	bundle := &testBundle{Backend: newBackend(t), t: t}
	if err := bundle.Sink.Prepare(t.Context(), rollup); err != nil {
		t.Fatal(err)
	}
	return bundle
}

func applyTo(b *testBundle, t mapreduce.OutputTable, commit string, bucket int, rows mapreduce.OutputRows) {
	b.t.Helper()
	if err := b.Sink.Apply(b.t.Context(), t, commit, bucket, rows); err != nil {
		b.t.Fatal(err)
	}
}

func apply(b *testBundle, commit string, bucket int, rows mapreduce.OutputRows) {
	b.t.Helper()
	applyTo(b, rollup, commit, bucket, rows)
}

// checkTable checks that rollup holds want, as selectAll reads it.
func checkTable(b *testBundle, want [][]any) {
	b.t.Helper()
	got := b.Query(selectAll)
	if len(got) != len(want) {
		b.t.Errorf("table rollup has %d rows, want %d", len(got), len(want))
		return
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			b.t.Errorf("table rollup row %d:\ngot  %v\nwant %v", i, got[i], want[i])
			return
		}
	}
}

func checkCommitted(b *testBundle, commit string, want ...int) {
	b.t.Helper()
	got, err := b.Sink.Committed(b.t.Context(), commit)
	if err != nil {
		b.t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		b.t.Errorf("Committed(%q) = %v, want %v", commit, got, want)
	}
}

// mustFail checks that err says each of want.
func mustFail(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error = %v, want one saying %q", what, err, w)
		}
	}
}

// Run runs the conformance suite against the sinks newBackend opens.
func Run(t *testing.T, newBackend NewFunc) {
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		return prepared(t, newBackend)
	}

	t.Run("PrepareCreatesTable", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		if err := bundle.Sink.Prepare(t.Context(), rollup); err != nil {
			t.Fatalf("second Prepare: %v", err)
		}
		checkTable(bundle, nil)
		const insert = `INSERT INTO "rollup" VALUES (1, '2026-11-29', %s, 1, 0.5, TRUE)`
		if err := bundle.Exec(fmt.Sprintf(insert, "'a'")); err != nil {
			t.Fatal(err)
		}
		if err := bundle.Exec(fmt.Sprintf(insert, "'b'")); err != nil {
			t.Fatalf("a row differing in the last key column only: %v", err)
		}
		if err := bundle.Exec(fmt.Sprintf(insert, "'a'")); err == nil {
			t.Error("the primary key let a duplicate key in")
		}
	})

	// Decimals stay exact (digits and scale), bytes whole, and NULL is NULL.
	t.Run("ExactTypes", func(t *testing.T) {
		t.Parallel()
		b := &testBundle{Backend: newBackend(t), t: t}
		table := mapreduce.OutputTable{
			Name: "exact",
			Keys: []mapreduce.Field{{Name: "k", Type: mapreduce.TypeInt64}},
			Values: []mapreduce.Field{
				{Name: "d", Type: mapreduce.TypeDecimal}, {Name: "b", Type: mapreduce.TypeBytes},
				{Name: "n", Type: mapreduce.TypeInt64},
			},
		}
		if err := b.Sink.Prepare(t.Context(), table); err != nil {
			t.Fatal(err)
		}
		decimals := []string{"125157220.56", "-0.50", "123456789012345678901234567890.123456789012", "7", "0.000001"}
		var rows [][]any
		for i, text := range decimals {
			d, _, err := apd.NewFromString(text)
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, []any{int64(i), d, []byte{0, byte(i), 0xff}, int64(i)})
		}
		rows = append(rows, []any{int64(len(rows)), nil, nil, nil})
		if err := b.Sink.Apply(t.Context(), table, "c1", 0, rowsOf(rows)); err != nil {
			t.Fatal(err)
		}
		got := b.Query(`SELECT "k", CAST("d" AS text), length("b"), "n" FROM "exact" ORDER BY 1`)
		for i, row := range got {
			want := []any{int64(i), nil, nil, nil}
			if i < len(decimals) {
				want = []any{int64(i), decimals[i], int64(3), int64(i)}
			}
			if !reflect.DeepEqual(row, want) {
				t.Errorf("row %d = %v, want %v", i, row, want)
			}
		}
		if len(got) != len(rows) {
			t.Errorf("table has %d rows, want %d", len(got), len(rows))
		}
	})

	t.Run("Apply", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		rows := makeRows(0, 250, 1) // two full statements and a part
		apply(bundle, "c1", 0, rowsOf(rows))
		checkTable(bundle, stored(rows))
		checkCommitted(bundle, "c1", 0)
	})

	t.Run("ApplyEmptyBucket", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		apply(bundle, "c1", 4, rowsOf(nil))
		checkTable(bundle, nil)
		checkCommitted(bundle, "c1", 4)
	})

	t.Run("ApplyTwice", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		rows := makeRows(0, 150, 1)
		apply(bundle, "c1", 1, rowsOf(rows))
		apply(bundle, "c1", 1, rowsOf(makeRows(0, 150, 2)))
		checkTable(bundle, stored(rows))
		checkCommitted(bundle, "c1", 1)
	})

	t.Run("ApplyUpsert", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		apply(bundle, "c1", 0, rowsOf(makeRows(0, 150, 1)))
		apply(bundle, "c2", 0, rowsOf(makeRows(100, 150, 2)))
		checkTable(bundle, stored(append(makeRows(0, 100, 1), makeRows(100, 150, 2)...)))
		checkCommitted(bundle, "c1", 0)
		checkCommitted(bundle, "c2", 0)
	})

	t.Run("ApplyFailingRows", func(t *testing.T) {
		t.Parallel()
		for name, rows := range map[string]*sliceRows{
			"Err":    {rows: makeRows(0, 250, 1), i: -1, err: errBoom},
			"Values": {rows: makeRows(0, 250, 1), i: -1, err: errBoom, failAt: 220},
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				bundle := setup(t)
				err := bundle.Sink.Apply(t.Context(), rollup, "c1", 3, rows)
				if !errors.Is(err, errBoom) {
					t.Fatalf("Apply error = %v, want one wrapping %v", err, errBoom)
				}
				checkTable(bundle, nil)
				checkCommitted(bundle, "c1")
				rows := makeRows(0, 10, 1) // the failure released the sink
				apply(bundle, "c1", 3, rowsOf(rows))
				checkTable(bundle, stored(rows))
			})
		}
	})

	t.Run("ApplyWrongWidth", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		rows := append(makeRows(0, 5, 1), []any{int64(1), day, "a", int64(1)})
		if err := bundle.Sink.Apply(t.Context(), rollup, "c1", 0, rowsOf(rows)); err == nil || !strings.Contains(err.Error(), "4 values") {
			t.Fatalf("Apply error = %v, want one about a row of 4 values", err)
		}
		checkTable(bundle, nil)
		checkCommitted(bundle, "c1")
	})

	t.Run("ApplyConcurrent", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		const buckets, n = 8, 120
		var wg sync.WaitGroup
		errs := make([]error, buckets)
		for b := range buckets {
			wg.Go(func() {
				errs[b] = bundle.Sink.Apply(t.Context(), rollup, "c1", b, rowsOf(makeRows(b*n, n, b)))
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		var want [][]any
		for b := range buckets {
			want = append(want, makeRows(b*n, n, b)...)
		}
		checkTable(bundle, stored(want))
		checkCommitted(bundle, "c1", 0, 1, 2, 3, 4, 5, 6, 7)
	})

	t.Run("ApplySameBucketConcurrently", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		const appliers = 4
		var wg sync.WaitGroup
		errs := make([]error, appliers)
		for i := range appliers {
			wg.Go(func() {
				errs[i] = bundle.Sink.Apply(t.Context(), rollup, "c1", 2, rowsOf(makeRows(0, 120, i+1)))
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		got := bundle.Query(selectAll)
		if len(got) != 120 {
			t.Fatalf("table rollup has %d rows, want 120", len(got))
		}
		// Exactly one applier's rows: all rows have the same events.
		for i := 1; i <= appliers; i++ {
			if reflect.DeepEqual(got, stored(makeRows(0, 120, i))) {
				checkCommitted(bundle, "c1", 2)
				return
			}
		}
		t.Errorf("table rollup mixes the rows of concurrent applies: %v", got)
	})

	t.Run("TableNameIsJustAName", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		rows := makeRows(0, 30, 1)
		apply(bundle, "c1", 0, rowsOf(rows))
		evil := rollup
		evil.Name = `rollup"; DROP TABLE "rollup"; --`
		if err := bundle.Sink.Prepare(t.Context(), evil); err != nil {
			t.Fatal(err)
		}
		if err := bundle.Sink.Apply(t.Context(), evil, "c1", 1, rowsOf(makeRows(0, 7, 2))); err != nil {
			t.Fatal(err)
		}
		checkTable(bundle, stored(rows))
		got := bundle.Query(`SELECT count(*), CAST(sum("events") AS bigint) FROM "rollup""; DROP TABLE ""rollup""; --"`)
		if want := [][]any{{int64(7), int64(14)}}; !reflect.DeepEqual(got, want) {
			t.Errorf("table %q: count, sum(events) = %v, want %v", evil.Name, got, want)
		}
		checkCommitted(bundle, "c1", 0, 1)
	})

	t.Run("Committed", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		for i, b := range []int{5, 2, 9} {
			apply(bundle, "c1", b, rowsOf(makeRows(i*10, 10, 1)))
		}
		checkCommitted(bundle, "c1", 2, 5, 9)
		checkCommitted(bundle, "c2")
	})

	t.Run("CommittedBeforePrepare", func(t *testing.T) {
		t.Parallel()
		bundle := &testBundle{Backend: newBackend(t), t: t}
		checkCommitted(bundle, "c1")
	})

	// replacer is the sink of b as a mapreduce.Replacer, which every
	// backend must be.
	replacer := func(b *testBundle) mapreduce.Replacer {
		b.t.Helper()
		rep, ok := b.Sink.(mapreduce.Replacer)
		if !ok {
			b.t.Fatalf("%T is not a mapreduce.Replacer", b.Sink)
		}
		return rep
	}
	stage := func(b *testBundle, t mapreduce.OutputTable, run, commit string) mapreduce.OutputTable {
		b.t.Helper()
		staged, err := replacer(b).Stage(b.t.Context(), t, run, commit)
		if err != nil {
			b.t.Fatal(err)
		}
		return staged
	}
	swap := func(b *testBundle, t mapreduce.OutputTable, run, commit string) {
		b.t.Helper()
		if err := replacer(b).Swap(b.t.Context(), t, run, commit); err != nil {
			b.t.Fatal(err)
		}
	}

	// A run into a table that holds stale groups (of source rows deleted
	// since) leaves exactly its own groups, and readers see the old table
	// until the swap.
	t.Run("Replace", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		stale := makeRows(0, 150, 1)
		apply(bundle, "c0", 0, rowsOf(stale))

		staged := stage(bundle, rollup, "run1", "c1")
		if staged.Name == rollup.Name {
			t.Fatalf("Stage returned the output table %q itself", staged.Name)
		}
		if again := stage(bundle, rollup, "run1", "c1"); again.Name != staged.Name {
			t.Fatalf("a resumed Stage returned %q, the first %q", again.Name, staged.Name)
		}
		b0, b1 := makeRows(100, 100, 2), makeRows(300, 20, 3)
		applyTo(bundle, staged, "c1", 0, rowsOf(b0))
		stage(bundle, rollup, "run1", "c1") // resumed after bucket 0: keeps it
		applyTo(bundle, staged, "c1", 1, rowsOf(b1))
		applyTo(bundle, staged, "c1", 1, rowsOf(makeRows(0, 5, 9))) // applied already
		checkTable(bundle, stored(stale))
		checkCommitted(bundle, "c1", 0, 1)

		swap(bundle, rollup, "run1", "c1")
		want := stored(append(slices.Clone(b0), b1...))
		checkTable(bundle, want)
		checkCommitted(bundle, "c1", 0, 1)

		// Resumed after the swap: nothing is redone or lost.
		if got := stage(bundle, rollup, "run1", "c1"); got.Name != rollup.Name {
			t.Errorf("Stage after the swap returned %q, want the output table", got.Name)
		}
		swap(bundle, rollup, "run1", "c1")
		checkTable(bundle, want)
		checkCommitted(bundle, "c1", 0, 1)

		// The table still upserts on its keys, as a replay does.
		apply(bundle, "c1.replay1", 0, rowsOf(makeRows(100, 1, 7)))
		want = stored(append(append(makeRows(100, 1, 7), b0[1:]...), b1...))
		checkTable(bundle, want)
		const insert = `INSERT INTO "rollup" VALUES (%d, '2026-11-29', 'a', 1, 0.5, TRUE)`
		if err := bundle.Exec(fmt.Sprintf(insert, 1000)); err != nil {
			t.Fatal(err)
		}
		if err := bundle.Exec(fmt.Sprintf(insert, 1000)); err == nil {
			t.Error("after the swap the primary key let a duplicate key in")
		}
	})

	// A new plan of the same run (mr run --fresh) builds its staging table
	// anew: what an abandoned plan applied does not count.
	t.Run("ReplaceNewPlan", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		apply(bundle, "c0", 0, rowsOf(makeRows(0, 50, 1)))
		staged := stage(bundle, rollup, "run1", "c1")
		applyTo(bundle, staged, "c1", 0, rowsOf(makeRows(0, 80, 2)))
		if again := stage(bundle, rollup, "run1", "c2"); again.Name != staged.Name {
			t.Errorf("a new plan of the run staged into %q, the first into %q", again.Name, staged.Name)
		}
		rows := makeRows(60, 30, 3)
		applyTo(bundle, staged, "c2", 0, rowsOf(rows))
		checkTable(bundle, stored(makeRows(0, 50, 1)))
		swap(bundle, rollup, "run1", "c2")
		checkTable(bundle, stored(rows))
	})

	// Replacing an empty result leaves an empty table.
	t.Run("ReplaceWithNothing", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		apply(bundle, "c0", 0, rowsOf(makeRows(0, 50, 1)))
		staged := stage(bundle, rollup, "run1", "c1")
		applyTo(bundle, staged, "c1", 0, rowsOf(nil))
		swap(bundle, rollup, "run1", "c1")
		checkTable(bundle, nil)
		// The staging table became the output table: it is gone.
		if err := bundle.Exec(`SELECT 1 FROM "` + strings.ReplaceAll(staged.Name, ".", `"."`) + `"`); err == nil {
			t.Errorf("the staging table %q outlived the swap", staged.Name)
		}
	})

	// A table whose name takes the whole 63 bytes PostgreSQL allows still
	// gets a staging table, and two such names sharing a long prefix get
	// different ones.
	t.Run("ReplaceLongName", func(t *testing.T) {
		t.Parallel()
		b := &testBundle{Backend: newBackend(t), t: t}
		long1, long2 := rollup, rollup
		long1.Name = strings.Repeat("r", 62) + "1"
		long2.Name = strings.Repeat("r", 62) + "2"
		var names []string
		for i, table := range []mapreduce.OutputTable{long1, long2} {
			if err := b.Sink.Prepare(t.Context(), table); err != nil {
				t.Fatal(err)
			}
			if err := b.Sink.Apply(t.Context(), table, "c0", 0, rowsOf(makeRows(0, 10, 1))); err != nil {
				t.Fatal(err)
			}
			commit := fmt.Sprint("c", i+1) // a commit key names one table's plan
			staged := stage(b, table, "run1", commit)
			name := staged.Name[strings.LastIndex(staged.Name, ".")+1:]
			if len(name) > 63 {
				t.Errorf("staging table %q is longer than 63 bytes", name)
			}
			names = append(names, name)
			if err := b.Sink.Apply(t.Context(), staged, commit, 0, rowsOf(makeRows(20, 3+i, 2))); err != nil {
				t.Fatal(err)
			}
			swap(b, table, "run1", commit)
			got := b.Query(`SELECT count(*), CAST(sum("events") AS bigint) FROM "` + table.Name + `"`)
			if want := [][]any{{int64(3 + i), int64(2 * (3 + i))}}; !reflect.DeepEqual(got, want) {
				t.Errorf("table %q: count, sum(events) = %v, want %v", table.Name, got, want)
			}
		}
		if names[0] == names[1] {
			t.Errorf("two long tables share the staging table %q", names[0])
		}
	})

	t.Run("PrepareExistingTable", func(t *testing.T) {
		t.Parallel()
		const cols = `"account_id" bigint, "day" date, "category" text, "events" bigint, "total" double precision, "flagged" boolean`
		for _, tt := range []struct {
			name   string
			create []string
			want   []string // what the error names; none if Prepare must succeed
		}{
			{"UniqueIndex", []string{
				`CREATE TABLE "rollup" ("note" text, ` + cols + `)`,
				`CREATE UNIQUE INDEX "rollup_key" ON "rollup" ("category", "day", "account_id")`}, nil},
			{"MissingColumns", []string{
				`CREATE TABLE "rollup" ("account_id" bigint, "day" date, "category" text, "events" bigint,
				PRIMARY KEY ("account_id", "day", "category"))`}, []string{`"rollup"`, `"total"`, `"flagged"`}},
			{"PartialIndex", []string{
				`CREATE TABLE "rollup" (` + cols + `)`,
				`CREATE UNIQUE INDEX "rollup_key" ON "rollup" ("account_id", "day", "category") WHERE "events" > 0`},
				[]string{`"rollup"`, "primary key", "unique index"}},
			{"NoKey", []string{`CREATE TABLE "rollup" (` + cols + `)`}, []string{`"rollup"`, "primary key", "unique index"}},
			{"OtherKey", []string{`CREATE TABLE "rollup" (` + cols + `, PRIMARY KEY ("account_id", "day"))`},
				[]string{`"rollup"`, "primary key", `"category"`}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				bundle := &testBundle{Backend: newBackend(t), t: t}
				for _, stmt := range tt.create {
					if err := bundle.Exec(stmt); err != nil {
						t.Fatal(err)
					}
				}
				err := bundle.Sink.Prepare(t.Context(), rollup)
				if tt.want == nil {
					if err != nil {
						t.Fatal(err)
					}
					rows := makeRows(0, 20, 1)
					apply(bundle, "c1", 0, rowsOf(rows))
					apply(bundle, "c2", 0, rowsOf(rows))
					checkTable(bundle, stored(rows))
					// The staging table has the user's columns, and the
					// table after the swap the key index too.
					rows = makeRows(10, 20, 2)
					staged := stage(bundle, rollup, "run1", "c4")
					applyTo(bundle, staged, "c4", 0, rowsOf(rows))
					swap(bundle, rollup, "run1", "c4")
					checkTable(bundle, stored(rows))
					apply(bundle, "c5", 0, rowsOf(rows))
					checkTable(bundle, stored(rows))
					if got := bundle.Query(`SELECT count(*) FROM "rollup" WHERE "note" IS NULL`); !reflect.DeepEqual(got, [][]any{{int64(20)}}) {
						t.Errorf("after the swap: rows with a NULL note = %v, want 20: the column is lost", got)
					}
					return
				}
				for _, w := range tt.want {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("Prepare error = %v, want one naming %s", err, w)
					}
				}
			})
		}
	})

	// run runs a replacing run of two buckets into rollup as the engine
	// does (Prepare, Stage, the buckets not Committed, Swap) and returns
	// how many buckets it applied.
	run := func(b *testBundle, name, commit string, buckets ...[][]any) int {
		b.t.Helper()
		if err := b.Sink.Prepare(b.t.Context(), rollup); err != nil {
			b.t.Fatal(err)
		}
		staged := stage(b, rollup, name, commit)
		committed, err := b.Sink.Committed(b.t.Context(), commit)
		if err != nil {
			b.t.Fatal(err)
		}
		applied := 0
		for i, rows := range buckets {
			if !slices.Contains(committed, i) {
				applyTo(b, staged, commit, i, rowsOf(rows))
				applied++
			}
		}
		if staged.Name != rollup.Name {
			swap(b, rollup, name, commit)
		}
		return applied
	}

	// The commit records are tied to the table each bucket went to: a
	// finished run run again applies nothing, and one whose output table
	// was dropped since (and created anew by Prepare) applies every
	// bucket again, instead of leaving the new table empty.
	t.Run("OutputDroppedAfterRun", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		b0, b1 := makeRows(0, 30, 1), makeRows(30, 20, 2)
		want := stored(append(slices.Clone(b0), b1...))
		if n := run(bundle, "run1", "c1", b0, b1); n != 2 {
			t.Errorf("the first run applied %d buckets, want 2", n)
		}
		checkTable(bundle, want)
		if n := run(bundle, "run1", "c1", b0, b1); n != 0 {
			t.Errorf("the finished run run again applied %d buckets, want none", n)
		}
		if err := bundle.Exec(`DROP TABLE "rollup"`); err != nil {
			t.Fatal(err)
		}
		if n := run(bundle, "run1", "c1", b0, b1); n != 2 {
			t.Errorf("after the output table was dropped the run applied %d buckets, want 2", n)
		}
		checkTable(bundle, want)
		if n := run(bundle, "run1", "c1", b0, b1); n != 0 {
			t.Errorf("the rebuilt run run again applied %d buckets, want none", n)
		}
		checkCommitted(bundle, "c1", 0, 1)
	})

	// A table dropped between the buckets of a run: the next Apply says
	// so, and once Prepare has created the table again, Committed offers
	// again the buckets lost with it, which then apply once each.
	t.Run("OutputDroppedDuringRun", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		b0, b1 := makeRows(0, 30, 1), makeRows(30, 20, 2)
		apply(bundle, "c1", 0, rowsOf(b0))
		checkCommitted(bundle, "c1", 0)
		if err := bundle.Exec(`DROP TABLE "rollup"`); err != nil {
			t.Fatal(err)
		}
		checkCommitted(bundle, "c1")
		err := bundle.Sink.Apply(t.Context(), rollup, "c1", 1, rowsOf(b1))
		mustFail(t, "Apply to a dropped table", err, "was dropped during the run", "run the same command again")
		if err := bundle.Sink.Prepare(t.Context(), rollup); err != nil {
			t.Fatal(err)
		}
		checkCommitted(bundle, "c1")
		apply(bundle, "c1", 0, rowsOf(b0))
		apply(bundle, "c1", 1, rowsOf(b1))
		apply(bundle, "c1", 0, rowsOf(makeRows(0, 5, 9))) // applied already, to this table
		checkTable(bundle, stored(append(slices.Clone(b0), b1...)))
		checkCommitted(bundle, "c1", 0, 1)
	})

	// A staging table dropped between the buckets of a run is built
	// again by the next Stage, and the buckets lost with it apply again:
	// no --fresh needed.
	t.Run("StagingDroppedDuringRun", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		b0, b1 := makeRows(0, 30, 1), makeRows(30, 20, 2)
		staged := stage(bundle, rollup, "run1", "c1")
		applyTo(bundle, staged, "c1", 0, rowsOf(b0))
		if err := bundle.Exec(`DROP TABLE "` + staged.Name + `"`); err != nil {
			t.Fatal(err)
		}
		err := bundle.Sink.Apply(t.Context(), staged, "c1", 1, rowsOf(b1))
		mustFail(t, "Apply to a dropped staging table", err, "was dropped during the run", "run the same command again")
		mustFail(t, "Swap of a dropped staging table", replacer(bundle).Swap(t.Context(), rollup, "run1", "c1"),
			"was dropped during the run", "run the same command again")
		if n := run(bundle, "run1", "c1", b0, b1); n != 2 {
			t.Errorf("the resumed run applied %d buckets, want 2", n)
		}
		checkTable(bundle, stored(append(slices.Clone(b0), b1...)))
	})

	// A run that has staged a table owns it until its swap: another run
	// is refused, naming the owner and what to do, while the owner
	// resumes, and a new plan of it (--fresh) takes over. Once it has
	// swapped, the other run may go.
	t.Run("SecondRunRefused", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		mine, theirs := makeRows(0, 30, 1), makeRows(100, 10, 2)
		staged := stage(bundle, rollup, "run1", "c1")
		applyTo(bundle, staged, "c1", 0, rowsOf(mine))
		refused := []string{"being built by run run1 (commit c1", "has not finished", "mix", "mr_table_owners", "run this command again"}
		_, err := replacer(bundle).Stage(t.Context(), rollup, "run2", "c2")
		mustFail(t, "Stage of another run", err, refused...)
		mustFail(t, "Swap of another run", replacer(bundle).Swap(t.Context(), rollup, "run2", "c2"), refused...)
		claimer, ok := bundle.Sink.(interface {
			Claim(ctx context.Context, t mapreduce.OutputTable, run, commit string) error
		})
		if !ok {
			t.Fatalf("%T has no Claim method", bundle.Sink)
		}
		mustFail(t, "Claim of another run", claimer.Claim(t.Context(), rollup, "run2", "c2"), refused...)
		if err := claimer.Claim(t.Context(), rollup, "run1", "c1"); err != nil {
			t.Errorf("Claim by the owner: %v", err)
		}
		if n := run(bundle, "run1", "c3", mine); n != 1 { // --fresh of the owner
			t.Errorf("the new plan of the owner applied %d buckets, want 1", n)
		}
		checkTable(bundle, stored(mine))
		// A finished run run again claims nothing that would block others.
		if err := claimer.Claim(t.Context(), rollup, "run1", "c3"); err != nil {
			t.Errorf("Claim by the finished owner: %v", err)
		}
		if n := run(bundle, "run2", "c2", theirs); n != 1 {
			t.Errorf("the other run, after the owner finished, applied %d buckets, want 1", n)
		}
		checkTable(bundle, stored(theirs))
	})

	runMerge(t, newBackend)
	runMergeWindow(t, newBackend)
}
