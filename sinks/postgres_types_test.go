package sinks_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
)

// A pre-existing output table whose columns cannot hold the job's values
// is refused by Prepare, before the map phase, naming each column, its
// type, the type needed and the fix; once fixed as it says, the values
// come back exact. Types that hold every value are accepted.
func TestPostgres_PrepareTypes(t *testing.T) {
	t.Parallel()
	table := mapreduce.OutputTable{
		Name:   "totals",
		Keys:   []mapreduce.Field{{Name: "k", Type: mapreduce.TypeString}},
		Values: []mapreduce.Field{{Name: "n", Type: mapreduce.TypeInt64}, {Name: "m", Type: mapreduce.TypeInt64}},
	}
	for _, tt := range []struct {
		name, create string
		want         string // with %[1]s for the sink, %[2]s for the schema; "" if accepted
	}{
		{"Refused", `CREATE TABLE totals (k varchar(3) PRIMARY KEY, n real, m smallint)`,
			`sinks: table "totals" in %[1]s has columns of a type that cannot hold every value of the job's: ` +
				`"k" is character varying(3), needs text; "n" is real, needs bigint; "m" is smallint, needs bigint; ` +
				`change them (ALTER TABLE "%[2]s"."totals" ALTER COLUMN "k" TYPE text; ` +
				`ALTER TABLE "%[2]s"."totals" ALTER COLUMN "n" TYPE bigint; ` +
				`ALTER TABLE "%[2]s"."totals" ALTER COLUMN "m" TYPE bigint) or drop the table so that mr creates it`},
		{"Lossless", `CREATE TABLE totals (k varchar PRIMARY KEY, n numeric, m bigint)`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			schema, dsn := pgtest.Schema(t)
			b := &pgBundle{sink: openPostgres(t, dsn), pool: pgtest.PoolFor(t, dsn), dsn: dsn}
			if _, err := b.pool.Exec(t.Context(), tt.create); err != nil {
				t.Fatal(err)
			}
			err := b.sink.Prepare(t.Context(), table)
			if tt.want != "" {
				if want := fmt.Sprintf(tt.want, b.sink, schema); err == nil || err.Error() != want {
					t.Fatalf("Prepare error:\ngot  %v\nwant %s", err, want)
				}
				for _, col := range []string{"k TYPE text", "n TYPE bigint", "m TYPE bigint"} {
					if _, err := b.pool.Exec(t.Context(), "ALTER TABLE totals ALTER COLUMN "+col); err != nil {
						t.Fatal(err)
					}
				}
				err = b.sink.Prepare(t.Context(), table)
			}
			if err != nil {
				t.Fatal(err)
			}
			rows := &tableRows{rows: [][]any{{"long key", int64(16777217), int64(1) << 40}}}
			if err := b.sink.Apply(t.Context(), table, "c1", 0, rows); err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(b.query(t, `SELECT k, n::text, m::text FROM totals`)); got != "[[long key 16777217 1099511627776]]" {
				t.Errorf("rows = %s, want [[long key 16777217 1099511627776]]", got)
			}
		})
	}

	// A field whose SQLType names a type (a rollup key keeps its source
	// column's varchar(20)) accepts a column of that type however it is
	// spelled, and the lossless ones of its field type.
	t.Run("SQLType", func(t *testing.T) {
		t.Parallel()
		b := setupPostgres(t)
		keyed := mapreduce.OutputTable{Name: "by_code",
			Keys:   []mapreduce.Field{{Name: "code", Type: mapreduce.TypeString, SQLType: "varchar(20)"}},
			Values: []mapreduce.Field{{Name: "at", Type: mapreduce.TypeTimestamp}, {Name: "n", Type: mapreduce.TypeInt64, SQLType: "int4"}}}
		if _, err := b.pool.Exec(t.Context(), `CREATE TABLE by_code (code character varying(20) PRIMARY KEY, at timestamptz(6), n bigint)`); err != nil {
			t.Fatal(err)
		}
		if err := b.sink.Prepare(t.Context(), keyed); err != nil {
			t.Fatal(err)
		}
		if _, err := b.pool.Exec(t.Context(), `DROP TABLE by_code; CREATE TABLE by_code (code varchar(10) PRIMARY KEY, at timestamp, n integer)`); err != nil {
			t.Fatal(err)
		}
		err := b.sink.Prepare(t.Context(), keyed)
		want := `"code" is character varying(10), needs character varying(20); "at" is timestamp without time zone, needs timestamp with time zone; change them`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Prepare error = %v, want one saying %s", err, want)
		}
	})
}
