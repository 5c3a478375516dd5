package sinks_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/sinks/sinktest"
)

func TestSQLite_Merge(t *testing.T) {
	t.Parallel()

	// A table of the user's whose declared types Prepare accepts but mr
	// would not create: the affinities change how values are stored (a
	// whole float in a NUMERIC column is an integer) and the driver how
	// they are read (text in a DATE or TIMESTAMP column is a time.Time),
	// yet the stored rows are exactly the values applied.
	table := mapreduce.OutputTable{
		Name: "theirs",
		Keys: []mapreduce.Field{{Name: "k", Type: mapreduce.TypeInt64}},
		Values: []mapreduce.Field{{Name: "f", Type: mapreduce.TypeFloat64}, {Name: "n", Type: mapreduce.TypeInt64},
			{Name: "b", Type: mapreduce.TypeBool}, {Name: "d", Type: mapreduce.TypeDate}, {Name: "ts", Type: mapreduce.TypeTimestamp},
			{Name: "dec", Type: mapreduce.TypeDecimal}, {Name: "raw", Type: mapreduce.TypeBytes}},
	}
	const create = `CREATE TABLE theirs (k INTEGER PRIMARY KEY, f NUMERIC, n NUMERIC, b BOOLEAN, d DATE, ts TIMESTAMP, dec, raw)`

	t.Run("Affinities", func(t *testing.T) {
		t.Parallel()
		sink, db := openSQLite(t)
		if _, err := db.ExecContext(t.Context(), create); err != nil {
			t.Fatal(err)
		}
		if err := sink.Prepare(t.Context(), table); err != nil {
			t.Fatal(err)
		}
		dec, _, _ := apd.NewFromString("1.50")
		rows := [][]any{
			{int64(1), 2.0, int64(1) << 60, true, mapreduce.Date(-1), time.Date(2026, 11, 29, 23, 30, 0, 123_456_000, time.UTC), dec, []byte{}},
			{int64(2), 0.25, int64(-7), false, mapreduce.Date(20786), time.Date(1969, 7, 20, 20, 17, 40, 1000, time.UTC), dec, []byte{0}},
		}
		if err := sink.Apply(t.Context(), table, "c1", 0, &tableRows{rows: rows}); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(queryAll(t, db, `SELECT typeof(f) FROM theirs ORDER BY k`)); got != "[[integer] [real]]" {
			t.Fatalf("typeof(f) = %s: the case needs a whole float stored as an integer", got)
		}
		p := &sinktest.Parts{KeyCols: 1, Parts: [][][]any{rows}, CombineFunc: func(stored, _ []any) []any { return stored }}
		if err := sink.Merge(t.Context(), table, table.Values, "c2", 0, p); err != nil {
			t.Fatal(err)
		}
		for i, row := range p.Stored[0] {
			if got, want := sinktest.Canon(row), sinktest.Canon(rows[row[0].(int64)-1]); got != want {
				t.Errorf("stored row %d:\ngot  %s\nwant %s", i, got, want)
			}
		}
	})

	// A value that mr cannot have stored fails the Merge, naming the
	// column and what to do.
	t.Run("Foreign", func(t *testing.T) {
		t.Parallel()
		sink, db := openSQLite(t)
		if _, err := db.ExecContext(t.Context(), create); err != nil {
			t.Fatal(err)
		}
		if err := sink.Prepare(t.Context(), table); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(t.Context(), `INSERT INTO theirs (k, dec) VALUES (1, 'lots')`); err != nil {
			t.Fatal(err)
		}
		p := &sinktest.Parts{KeyCols: 1, Parts: [][][]any{{{int64(1), nil, nil, nil, nil, nil, nil, nil}}},
			CombineFunc: func(_, row []any) []any { return row }}
		err := sink.Merge(t.Context(), table, table.Values, "c2", 0, p)
		for _, want := range []string{`merge bucket 0 of commit "c2" to table "theirs"`, `stored row 0: column "dec" holds "lots" (string), which is no decimal value as mr stores it`, "change or delete the row"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Merge error = %v, want one saying %s", err, want)
			}
		}
	})
}
