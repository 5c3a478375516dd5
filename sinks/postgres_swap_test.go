package sinks_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
)

// counts is the output table of the swap tests.
var counts = mapreduce.OutputTable{
	Name:   "counts",
	Keys:   []mapreduce.Field{{Name: "k", Type: mapreduce.TypeInt64}},
	Values: []mapreduce.Field{{Name: "n", Type: mapreduce.TypeInt64}},
}

// countRows are the rows k = first…first+n-1, each with n = v.
func countRows(first, n, v int64) *tableRows {
	var rows [][]any
	for k := first; k < first+n; k++ {
		rows = append(rows, []any{k, v})
	}
	return &tableRows{rows: rows}
}

func TestPostgres_Swap(t *testing.T) {
	t.Parallel()

	// stageAndApply prepares table, fills it with stale rows, then stages
	// the rows k = 10…14 under commit c1 of run r.
	stageAndApply := func(t *testing.T, b *pgBundle, table mapreduce.OutputTable) {
		t.Helper()
		ctx := t.Context()
		if err := b.sink.Prepare(ctx, table); err != nil {
			t.Fatal(err)
		}
		if err := b.sink.Apply(ctx, table, "c0", 0, countRows(0, 8, 1)); err != nil {
			t.Fatal(err)
		}
		staged, err := b.sink.Stage(ctx, table, "r", "c1")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.sink.Apply(ctx, staged, "c1", 0, countRows(10, 5, 2)); err != nil {
			t.Fatal(err)
		}
	}

	// Into its staging table a commit copies each bucket straight in (see
	// Apply), and the key's index is built only at the swap: a key that a
	// second bucket brings again, which no run of mr does, fails the swap
	// with an error that names the index and the key and says what to do,
	// and the old table stays.
	t.Run("StagedCopiesDirectly", func(t *testing.T) {
		t.Parallel()
		b := setupPostgres(t)
		ctx := t.Context()
		stageAndApply(t, b, counts)
		staged, err := b.sink.Stage(ctx, counts, "r", "c1")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.sink.Apply(ctx, staged, "c1", 1, countRows(14, 2, 3)); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(b.query(t, `SELECT bucket, "rows" FROM mr_bucket_commits WHERE commit_key = 'c1' AND bucket >= 0 ORDER BY 1`)); got != "[[0 5] [1 2]]" {
			t.Errorf("records of c1: %s, want buckets 0 and 1 with 5 and 2 rows", got)
		}
		err = b.sink.Swap(ctx, counts, "r", "c1")
		for _, want := range []string{"breaks unique index counts_pkey of table counts", "Key (k)=(14) is duplicated", "run again with --fresh"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Swap error = %v, want one containing %q", err, want)
			}
		}
		if got := fmt.Sprint(b.query(t, `SELECT count(*), sum(n)::bigint FROM counts`)); got != "[[8 8]]" {
			t.Errorf("after the failed swap: count, sum = %s, want the old table's [[8 8]]", got)
		}
	})

	// What users put on the table survives: defaults, check constraints,
	// indexes and their names, the table's comment.
	t.Run("KeepsTheTable", func(t *testing.T) {
		t.Parallel()
		b := setupPostgres(t)
		for _, stmt := range []string{
			`CREATE TABLE counts (k bigint PRIMARY KEY, n bigint CHECK (n > 0), note text DEFAULT 'x')`,
			`CREATE INDEX counts_n ON counts (n)`,
			`CREATE INDEX "counts USING note" ON counts (note)`,
			`CREATE UNIQUE INDEX "counts n, big" ON counts ((n * 100 + k)) INCLUDE (note) WHERE n > 1`,
			`COMMENT ON TABLE counts IS 'made by hand'`,
			`COMMENT ON INDEX counts_n IS 'for lookups by n'`,
			`COMMENT ON CONSTRAINT counts_pkey ON counts IS 'the job''s key'`,
		} {
			if _, err := b.pool.Exec(t.Context(), stmt); err != nil {
				t.Fatal(err)
			}
		}
		stageAndApply(t, b, counts)
		if err := b.sink.Swap(t.Context(), counts, "r", "c1"); err != nil {
			t.Fatal(err)
		}
		if got, want := fmt.Sprint(b.query(t, `SELECT k, n, note FROM counts ORDER BY k`)),
			"[[10 2 x] [11 2 x] [12 2 x] [13 2 x] [14 2 x]]"; got != want {
			t.Errorf("rows = %s, want %s", got, want)
		}
		got := fmt.Sprint(b.query(t, `SELECT replace(pg_get_indexdef(indexrelid), current_schema() || '.', ''), coalesce(obj_description(indexrelid, 'pg_class'), '-')
			FROM pg_index WHERE indrelid = 'counts'::regclass ORDER BY 1`))
		if want := `[[CREATE INDEX "counts USING note" ON counts USING btree (note) -] ` +
			`[CREATE INDEX counts_n ON counts USING btree (n) for lookups by n] ` +
			`[CREATE UNIQUE INDEX "counts n, big" ON counts USING btree ((((n * 100) + k))) INCLUDE (note) WHERE (n > 1) -] ` +
			`[CREATE UNIQUE INDEX counts_pkey ON counts USING btree (k) -]]`; got != want {
			t.Errorf("indexes, comments:\n got %s\nwant %s", got, want)
		}
		if got := fmt.Sprint(b.query(t, `SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint WHERE conrelid = 'counts'::regclass AND conname = 'counts_pkey'`)); got != "[[the job's key]]" {
			t.Errorf("key constraint's comment = %s, want the job's key", got)
		}
		got = fmt.Sprint(b.query(t, `SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'counts'::regclass ORDER BY 1`))
		if want := "[[counts_n_check CHECK ((n > 0))] [counts_pkey PRIMARY KEY (k)]]"; got != want {
			t.Errorf("constraints = %s, want %s", got, want)
		}
		if got := fmt.Sprint(b.query(t, `SELECT obj_description('counts'::regclass, 'pg_class')`)); got != "[[made by hand]]" {
			t.Errorf("comment = %s, want made by hand", got)
		}
		if got := fmt.Sprint(b.query(t, `SELECT count(*) FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relname LIKE 'counts\_mr\_next\_%'`)); got != "[[0]]" {
			t.Errorf("relations left of the staging table: %s, want none", got)
		}
	})

	// A unique index of the user's on other columns than the key, which
	// the output breaks, fails the swap with what to do, and the old
	// table stays; once the index is gone, the same swap finishes.
	t.Run("UniqueIndexBroken", func(t *testing.T) {
		t.Parallel()
		b := setupPostgres(t)
		for _, stmt := range []string{
			`CREATE TABLE counts (k bigint PRIMARY KEY, n bigint)`,
			`CREATE UNIQUE INDEX counts_one_per_n ON counts (n) WHERE n > 1`,
		} {
			if _, err := b.pool.Exec(t.Context(), stmt); err != nil {
				t.Fatal(err)
			}
		}
		stageAndApply(t, b, counts)
		err := b.sink.Swap(t.Context(), counts, "r", "c1")
		for _, want := range []string{"breaks unique index counts_one_per_n of table counts", "Key (n)=(2) is duplicated", "drop it or change the job"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Swap error = %v, want one containing %q", err, want)
			}
		}
		if got := fmt.Sprint(b.query(t, `SELECT count(*) FROM counts`)); got != "[[8]]" {
			t.Errorf("after the failed swap: %s rows, want the old table's 8", got)
		}
		if _, err := b.pool.Exec(t.Context(), `DROP INDEX counts_one_per_n`); err != nil {
			t.Fatal(err)
		}
		if err := b.sink.Swap(t.Context(), counts, "r", "c1"); err != nil {
			t.Fatalf("Swap once the index is gone: %v", err)
		}
		if got := fmt.Sprint(b.query(t, `SELECT count(*), sum(n)::bigint FROM counts`)); got != "[[5 10]]" {
			t.Errorf("after the swap: count, sum = %s, want [[5 10]]", got)
		}
	})

	// An output table dropped during the run leaves no indexes to copy:
	// the swapped-in table gets the key, as Prepare would have made it.
	t.Run("OutputTableDropped", func(t *testing.T) {
		t.Parallel()
		b := setupPostgres(t)
		stageAndApply(t, b, counts)
		if _, err := b.pool.Exec(t.Context(), `DROP TABLE counts`); err != nil {
			t.Fatal(err)
		}
		if err := b.sink.Swap(t.Context(), counts, "r", "c1"); err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprint(b.query(t, `SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'counts'::regclass`))
		if !strings.HasSuffix(got, " PRIMARY KEY (k)]]") {
			t.Errorf("constraints = %s, want the key", got)
		}
	})

	// Swaps of one run at the same time, as a shared run's workers may
	// start, build each index once.
	t.Run("ConcurrentSwaps", func(t *testing.T) {
		t.Parallel()
		b := setupPostgres(t)
		if _, err := b.pool.Exec(t.Context(), `CREATE TABLE counts (k bigint PRIMARY KEY, n bigint); CREATE INDEX counts_n ON counts (n)`); err != nil {
			t.Fatal(err)
		}
		stageAndApply(t, b, counts)
		errs := make(chan error, 3)
		for range cap(errs) {
			go func() { errs <- b.sink.Swap(t.Context(), counts, "r", "c1") }()
		}
		for range cap(errs) {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		got := fmt.Sprint(b.query(t, `SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'counts'::regclass ORDER BY 1`))
		if want := "[[counts_n] [counts_pkey]]"; got != want {
			t.Errorf("indexes = %s, want %s", got, want)
		}
	})

	// A schema-qualified output name stages and swaps in that schema.
	t.Run("QualifiedName", func(t *testing.T) {
		t.Parallel()
		schema, dsn := pgtest.Schema(t)
		b := &pgBundle{sink: openPostgres(t, withOption(t, dsn, "-c search_path=pg_catalog")), pool: pgtest.PoolFor(t, dsn), dsn: dsn}
		table := counts
		table.Name = schema + ".counts"
		stageAndApply(t, b, table)
		if err := b.sink.Swap(t.Context(), table, "r", "c1"); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(b.query(t, `SELECT k, n FROM counts ORDER BY k`)); got != "[[10 2] [11 2] [12 2] [13 2] [14 2]]" {
			t.Errorf("rows = %s", got)
		}
	})

	// A view on the table stops the swap with an error that names the view
	// and says what to do; the old table stays as it was, the staged rows
	// wait, and once the view is gone the same swap finishes.
	t.Run("DependentView", func(t *testing.T) {
		t.Parallel()
		b := setupPostgres(t)
		stageAndApply(t, b, counts)
		if _, err := b.pool.Exec(t.Context(), `CREATE VIEW big_counts AS SELECT k FROM counts WHERE n > 1`); err != nil {
			t.Fatal(err)
		}
		err := b.sink.Swap(t.Context(), counts, "r", "c1")
		for _, want := range []string{"big_counts", "depend", "drop", "run the same command again"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Swap error = %v, want one containing %q", err, want)
			}
		}
		if got := fmt.Sprint(b.query(t, `SELECT count(*), sum(n)::bigint FROM counts`)); got != "[[8 8]]" {
			t.Errorf("after the failed swap: count, sum = %s, want the old table's [[8 8]]", got)
		}
		if _, err := b.pool.Exec(t.Context(), `DROP VIEW big_counts`); err != nil {
			t.Fatal(err)
		}
		if err := b.sink.Swap(t.Context(), counts, "r", "c1"); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(b.query(t, `SELECT count(*), sum(n)::bigint FROM counts`)); got != "[[5 10]]" {
			t.Errorf("after the swap: count, sum = %s, want [[5 10]]", got)
		}
	})

	// Neither the staging table nor the swap is built twice: the steps are
	// recorded beside the buckets, which Committed does not report.
	t.Run("Records", func(t *testing.T) {
		t.Parallel()
		b := setupPostgres(t)
		stageAndApply(t, b, counts)
		for range 2 {
			if err := b.sink.Swap(t.Context(), counts, "r", "c1"); err != nil {
				t.Fatal(err)
			}
		}
		got := fmt.Sprint(b.query(t, `SELECT commit_key, bucket FROM mr_bucket_commits ORDER BY 1, 2`))
		if want := "[[c0 0] [c1 -2] [c1 -1] [c1 0]]"; got != want {
			t.Errorf("commit records = %s, want %s", got, want)
		}
		if buckets, err := b.sink.Committed(t.Context(), "c1"); err != nil || fmt.Sprint(buckets) != "[0]" {
			t.Errorf("Committed(c1) = %v, %v; want [0]", buckets, err)
		}
	})

	// A staging table dropped by hand in the middle of a run took applied
	// buckets with it: Swap refuses to swap in what is left, the next
	// Stage builds the table anew, and Committed offers those buckets
	// again, so the run ends exact without --fresh.
	t.Run("StagingTableDropped", func(t *testing.T) {
		t.Parallel()
		b := setupPostgres(t)
		stageAndApply(t, b, counts)
		stage := "counts_mr_next_" + stagedSuffix(t, b)
		if _, err := b.pool.Exec(t.Context(), `DROP TABLE `+stage); err != nil {
			t.Fatal(err)
		}
		err := b.sink.Swap(t.Context(), counts, "r", "c1")
		want := `the staging table "` + stage + `" of this run was dropped during the run, and the buckets applied to it with it: ` +
			"run the same command again: it builds the table anew and applies them again"
		if err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("Swap error:\ngot  %v\nwant one ending %s", err, want)
		}
		staged, err := b.sink.Stage(t.Context(), counts, "r", "c1")
		if err != nil {
			t.Fatal(err)
		}
		if buckets, err := b.sink.Committed(t.Context(), "c1"); err != nil || len(buckets) != 0 {
			t.Fatalf("Committed(c1) after the drop = %v, %v; want none", buckets, err)
		}
		if err := b.sink.Apply(t.Context(), staged, "c1", 0, countRows(10, 5, 2)); err != nil {
			t.Fatal(err)
		}
		if err := b.sink.Swap(t.Context(), counts, "r", "c1"); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(b.query(t, `SELECT k, n FROM counts ORDER BY k`)); got != "[[10 2] [11 2] [12 2] [13 2] [14 2]]" {
			t.Errorf("rows = %s", got)
		}
	})
}

// stagedSuffix returns the hash part of the one staging table of counts
// in b's schema.
func stagedSuffix(t *testing.T, b *pgBundle) string {
	t.Helper()
	rows := b.query(t, `SELECT substr(relname, length('counts_mr_next_') + 1) FROM pg_class
		WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r' AND relname LIKE 'counts\_mr\_next\_%'`)
	if len(rows) != 1 {
		t.Fatalf("staging tables of counts: %v, want one", rows)
	}
	return rows[0][0].(string)
}
