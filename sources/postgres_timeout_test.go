package sources_test

import (
	"strings"
	"testing"

	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
)

// TestPostgres_StreamStatementTimeout streams ranges whose one query runs
// far longer than the session's statement_timeout: each row costs a
// millisecond (pg_sleep in the condition). A cancelled query that had
// delivered chunks is issued again from the row after the last one; one
// that had delivered none (the plan sorts the range before its first row,
// say) leaves the range to keyset chunks. The two tables take the two
// paths today, by their plans; either way every row must arrive once, in
// order, where the stream used to fail on every attempt.
func TestPostgres_StreamStatementTimeout(t *testing.T) {
	t.Parallel()
	bundle := setupPostgres(t,
		`CREATE TABLE wide (id bigint PRIMARY KEY, v text)`,
		`INSERT INTO wide SELECT i, repeat('x', 4000) FROM generate_series(1, 20000) i`,
		`CREATE TABLE narrow (id bigint PRIMARY KEY, v text)`,
		`INSERT INTO narrow SELECT i, 'v' FROM generate_series(1, 20000) i`, `ANALYZE wide, narrow`)
	src := openPostgres(t, bundle.dsn+"&statement_timeout=150")
	for _, table := range []string{"wide", "narrow"} {
		t.Run(table, func(t *testing.T) {
			t.Parallel()
			in := mapreduce.Input{Table: table, Cursor: "id", Columns: []string{"v"}, Where: "pg_sleep(0.001) IS NOT NULL"}
			var got []int64
			b := mapreduce.NewBatch(in.Columns)
			err := src.Stream(t.Context(), in, partition.Range{Lo: 1, Hi: 601}, 25, b, func(b *mapreduce.Batch) error {
				for i := range b.Len() {
					got = append(got, b.Row(i).Cursor())
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range got {
				if c != int64(i+1) {
					t.Fatalf("row %d has cursor %d; the stream skipped or repeated rows", i, c)
				}
			}
			if len(got) != 600 {
				t.Errorf("read %d rows, want 600", len(got))
			}
		})
	}
}

// TestPostgres_GroupedStatementTimeout aggregates a range at the source
// past statement_timeout: a grouped range cannot be read in parts, so the
// error says what to change.
func TestPostgres_GroupedStatementTimeout(t *testing.T) {
	t.Parallel()
	bundle := setupPostgres(t, `CREATE TABLE t (id bigint PRIMARY KEY, g int)`,
		`INSERT INTO t SELECT i, i % 3 FROM generate_series(1, 400) i`)
	src := openPostgres(t, bundle.dsn+"&statement_timeout=100")
	in := mapreduce.Input{Table: "t", Cursor: "id", Exprs: []string{"g", "count(*)"}, GroupBy: 1, Where: "pg_sleep(0.001) IS NOT NULL"}
	b := mapreduce.NewBatch(nil)
	err := src.Stream(t.Context(), in, partition.Range{Lo: 1, Hi: 401}, 25, b, func(*mapreduce.Batch) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "raise it for mr's role, use more --partitions, or --push-down off") {
		t.Fatalf("err = %v, want the statement_timeout advice", err)
	}
}
