package sinks_test

import (
	"fmt"
	"strings"
	"testing"
)

func TestSQLite_Swap(t *testing.T) {
	t.Parallel()

	// What users put on the table survives: defaults, checks, its key as a
	// separate unique index, other indexes and triggers under their names,
	// and views on it, which keep working.
	t.Run("KeepsTheTable", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		sink, db := openSQLite(t)
		for _, stmt := range []string{
			`CREATE TABLE "counts" (k INTEGER NOT NULL, n INTEGER CHECK (n > 0), note TEXT DEFAULT 'x')`,
			`CREATE UNIQUE INDEX counts_key ON counts (k)`,
			`CREATE INDEX counts_n ON counts (n)`,
			`CREATE TABLE audit (k INTEGER)`,
			`CREATE TRIGGER counts_audit AFTER INSERT ON counts BEGIN INSERT INTO audit VALUES (new.k); END`,
			`CREATE VIEW big_counts AS SELECT k FROM counts WHERE n > 1`,
		} {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		if err := sink.Prepare(ctx, counts); err != nil {
			t.Fatal(err)
		}
		if err := sink.Apply(ctx, counts, "c0", 0, countRows(0, 8, 1)); err != nil {
			t.Fatal(err)
		}
		staged, err := sink.Stage(ctx, counts, "r", "c1")
		if err != nil {
			t.Fatal(err)
		}
		if err := sink.Apply(ctx, staged, "c1", 0, countRows(10, 5, 2)); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(queryAll(t, db, `SELECT count(*) FROM big_counts`)); got != "[[0]]" {
			t.Errorf("before the swap the view sees %s rows, want the old table's 0", got)
		}
		if err := sink.Swap(ctx, counts, "r", "c1"); err != nil {
			t.Fatal(err)
		}
		if got, want := fmt.Sprint(queryAll(t, db, `SELECT k, n, note FROM counts ORDER BY k`)),
			"[[10 2 x] [11 2 x] [12 2 x] [13 2 x] [14 2 x]]"; got != want {
			t.Errorf("rows = %s, want %s", got, want)
		}
		if got := fmt.Sprint(queryAll(t, db, `SELECT count(*) FROM big_counts`)); got != "[[5]]" {
			t.Errorf("after the swap the view sees %s rows, want 5", got)
		}
		got := fmt.Sprint(queryAll(t, db, `SELECT type, name, tbl_name FROM sqlite_schema WHERE name NOT IN ('mr_bucket_commits', 'mr_tables', 'mr_table_owners', 'audit')
			AND name NOT LIKE 'sqlite_autoindex_mr%' ORDER BY 1, 2`))
		if want := "[[index counts_key counts] [index counts_n counts] [table counts counts] " +
			"[trigger counts_audit counts] [view big_counts big_counts]]"; got != want {
			t.Errorf("schema = %s\nwant %s", got, want)
		}
		// The key index and the trigger work on the new table.
		if err := sink.Apply(ctx, counts, "c1.replay1", 0, countRows(14, 2, 5)); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(queryAll(t, db, `SELECT k, n FROM counts WHERE k >= 14 ORDER BY k`)); got != "[[14 5] [15 5]]" {
			t.Errorf("upserted rows = %s", got)
		}
		if got := fmt.Sprint(queryAll(t, db, `SELECT k FROM audit ORDER BY k`)); !strings.HasSuffix(got, "[15]]") {
			t.Errorf("audit = %s, want it to end with the insert of 15 after the swap", got)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO counts (k, n) VALUES (10, 1)`); err == nil {
			t.Error("after the swap the key index let a duplicate key in")
		}
	})

	t.Run("Records", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		sink, db := openSQLite(t)
		if err := sink.Prepare(ctx, counts); err != nil {
			t.Fatal(err)
		}
		staged, err := sink.Stage(ctx, counts, "r", "c1")
		if err != nil {
			t.Fatal(err)
		}
		if err := sink.Apply(ctx, staged, "c1", 3, countRows(0, 2, 1)); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := sink.Swap(ctx, counts, "r", "c1"); err != nil {
				t.Fatal(err)
			}
		}
		if got := fmt.Sprint(queryAll(t, db, `SELECT commit_key, bucket FROM mr_bucket_commits ORDER BY 1, 2`)); got != "[[c1 -2] [c1 -1] [c1 3]]" {
			t.Errorf("commit records = %s", got)
		}
		if buckets, err := sink.Committed(ctx, "c1"); err != nil || fmt.Sprint(buckets) != "[3]" {
			t.Errorf("Committed(c1) = %v, %v; want [3]", buckets, err)
		}
		if _, err := db.ExecContext(ctx, `DROP TABLE "`+staged.Name+`"`); err == nil {
			t.Errorf("staging table %q outlived the swap", staged.Name)
		}
	})
}
