package sinks_test

import (
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/sinks"
	"github.com/mrengine/mr/sinks/sinktest"
)

// openSQLite opens a sink on a new database in t.TempDir, and a second
// handle on the database to look at it from outside.
func openSQLite(t testing.TB) (*sinks.SQLite, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sink.db")
	sink, err := sinks.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return sink, db
}

func newSQLite(t *testing.T) sinktest.Backend {
	t.Helper()
	sink, db := openSQLite(t)
	return sinktest.Backend{
		Sink: sink,
		Exec: func(query string) error {
			_, err := db.ExecContext(t.Context(), query)
			return err
		},
		Query: func(query string) [][]any { return queryAll(t, db, query) },
	}
}

func queryAll(t testing.TB, db *sql.DB, query string) [][]any {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]any
	for rows.Next() {
		row := make([]any, len(cols))
		dest := make([]any, len(cols))
		for i := range row {
			dest[i] = &row[i]
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSQLite(t *testing.T) {
	t.Parallel()
	sinktest.Run(t, newSQLite)
}

// everyType is an output table with a column of each field type.
var everyType = mapreduce.OutputTable{
	Name: "every type",
	Keys: []mapreduce.Field{{Name: "i", Type: mapreduce.TypeInt64}, {Name: "d", Type: mapreduce.TypeDate}},
	Values: []mapreduce.Field{{Name: "f", Type: mapreduce.TypeFloat64}, {Name: "s", Type: mapreduce.TypeString},
		{Name: "b", Type: mapreduce.TypeBool}, {Name: "ts", Type: mapreduce.TypeTimestamp}},
}

func TestSQLite_Prepare(t *testing.T) {
	t.Parallel()

	t.Run("Schema", func(t *testing.T) {
		t.Parallel()
		sink, db := openSQLite(t)
		if err := sink.Prepare(t.Context(), everyType); err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprint(queryAll(t, db, `SELECT sql FROM sqlite_schema WHERE type = 'table' ORDER BY name`))
		want := `[[CREATE TABLE "every type" ("i" INTEGER NOT NULL, "d" TEXT NOT NULL, "f" REAL, "s" TEXT, "b" INTEGER, "ts" TEXT, PRIMARY KEY ("i", "d"))] ` +
			`[CREATE TABLE mr_bucket_commits (
	commit_key TEXT, bucket INTEGER, rows INTEGER, committed_at TEXT, table_id TEXT,
	PRIMARY KEY (commit_key, bucket))] ` +
			`[CREATE TABLE mr_table_owners (
	table_name TEXT PRIMARY KEY COLLATE NOCASE, run TEXT NOT NULL, commit_key TEXT NOT NULL, claimed_at TEXT NOT NULL)] ` +
			`[CREATE TABLE mr_tables (name TEXT PRIMARY KEY COLLATE NOCASE, id TEXT NOT NULL)]]`
		if got != want {
			t.Errorf("schema:\ngot  %s\nwant %s", got, want)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			name, create string
			table        mapreduce.OutputTable
			want         string // with %[1]s for the sink
		}{
			{"MissingColumns", `CREATE TABLE "every type" (i, d, s, PRIMARY KEY (i, d))`, everyType,
				`sinks: table "every type" in %[1]s lacks columns "f", "b", "ts": add them (ALTER TABLE "every type" ADD COLUMN "f" REAL; ` +
					`ALTER TABLE "every type" ADD COLUMN "b" INTEGER; ALTER TABLE "every type" ADD COLUMN "ts" TEXT) or drop the table so that mr creates it`},
			{"NoKey", `CREATE TABLE "every type" (i, d, f, s, b, ts)`, everyType,
				`sinks: table "every type" in %[1]s has no primary key or unique index on exactly ("i", "d"), which upserts need: ` +
					`add one (CREATE UNIQUE INDEX "every type_key" ON "every type" ("i", "d")) or drop the table so that mr creates it`},
			{"NoKeyColumns", "", mapreduce.OutputTable{Name: "t", Values: everyType.Values},
				`sinks: %[1]s: table "t" has no key columns`},
			{"UnknownType", "", mapreduce.OutputTable{Name: "t", Keys: []mapreduce.Field{{Name: "k", Type: 42}}},
				`sinks: %[1]s: column "k" of table "t" has unknown type Type(42)`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				sink, db := openSQLite(t)
				if tt.create != "" {
					if _, err := db.ExecContext(t.Context(), tt.create); err != nil {
						t.Fatal(err)
					}
				}
				err := sink.Prepare(t.Context(), tt.table)
				if want := fmt.Sprintf(tt.want, sink); err == nil || err.Error() != want {
					t.Errorf("Prepare error:\ngot  %v\nwant %s", err, want)
				}
			})
		}
	})
}

// tableRows is a mapreduce.Rows over a slice.
type tableRows struct {
	rows [][]any
	i    int
}

func (r *tableRows) Next() bool             { r.i++; return r.i <= len(r.rows) }
func (r *tableRows) Values() ([]any, error) { return r.rows[r.i-1], nil }
func (r *tableRows) Err() error             { return nil }

func TestSQLite_Apply(t *testing.T) {
	t.Parallel()
	sink, db := openSQLite(t)
	if err := sink.Prepare(t.Context(), everyType); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 11, 29, 23, 30, 0, 500_000_000, time.FixedZone("CET", 3600))
	rows := &tableRows{rows: [][]any{
		{int64(1), mapreduce.DateOf(ts), 0.5, "x", true, ts},
		{int64(2), mapreduce.Date(-1), -1.0, "", false, time.Unix(0, 0)},
	}}
	if err := sink.Apply(t.Context(), everyType, "run-1", 7, rows); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(queryAll(t, db, `SELECT i, d, f, s, b, ts, typeof(b) FROM "every type" ORDER BY i`))
	if want := `[[1 2026-11-29 0.5 x 1 2026-11-29T22:30:00.500000Z integer] [2 1969-12-31 -1  0 1970-01-01T00:00:00.000000Z integer]]`; got != want {
		t.Errorf("rows:\ngot  %s\nwant %s", got, want)
	}
	got = fmt.Sprint(queryAll(t, db, `SELECT commit_key, bucket, rows, length(committed_at) FROM mr_bucket_commits`))
	if want := `[[run-1 7 2 20]]`; got != want {
		t.Errorf("commit records:\ngot  %s\nwant %s", got, want)
	}
}

func TestOpenSQLite(t *testing.T) {
	t.Parallel()

	t.Run("CreatesFile", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "new.db")
		sink, err := sinks.OpenSQLite(path)
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		if _, err := os.Stat(path); err != nil {
			t.Error(err)
		}
	})

	t.Run("NoSuchDirectory", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "missing", "new.db")
		_, err := sinks.OpenSQLite(path)
		if prefix := "sinks: sqlite:" + path + ": unable to open database file"; err == nil || !strings.HasPrefix(err.Error(), prefix) {
			t.Errorf("OpenSQLite error = %v, want one starting %q", err, prefix)
		}
	})
}

func TestOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tt := range []struct {
		url, want string // want is the sink's name, or the error
	}{
		{"sqlite:" + dir + "/a.db", "sqlite:" + dir + "/a.db"},
		{dir + "/b.db", "sqlite:" + dir + "/b.db"},
		{"sqlite:" + dir + "/x/../c.db", "sqlite:" + dir + "/c.db"},
		{"postgres://mr:secret@localhost:port/mr", "sinks: cannot parse `postgres://mr:xxxxx@localhost:port/mr`: invalid port " +
			"(write postgres://USER:PASSWORD@HOST:PORT/DATABASE or host=HOST port=PORT dbname=DATABASE)"},
		// A key=value DSN is PostgreSQL's, here a socket where none listens.
		{"host=" + dir + " port=1 user=mr dbname=mr password=hunter2", "sinks: cannot connect to postgres://mr@/mr?host=" + dir + "&port=1: …"},
		{"mysql://mr:secret@localhost/mr.db", `sinks: unsupported scheme "mysql": use sqlite:PATH, a PATH ending in .db, postgres://USER@HOST/DB, or host=HOST dbname=DB`},
		{"mr:hunter2@localhost", `sinks: not a database URL: use sqlite:PATH, a PATH ending in .db, postgres://USER@HOST/DB, or host=HOST dbname=DB`},
	} {
		sink, err := sinks.Open(t.Context(), tt.url)
		got := fmt.Sprint(err)
		if err == nil {
			got = sink.String()
			sink.(io.Closer).Close()
		}
		prefix, cut := strings.CutSuffix(tt.want, "…")
		if got != tt.want && !(cut && strings.HasPrefix(got, prefix)) || strings.Contains(got, "hunter2") {
			t.Errorf("Open(%q):\ngot  %s\nwant %s", tt.url, got, tt.want)
		}
	}
}

// BenchmarkSQLite_Apply upserts one bucket of new keys into an empty
// daily_rollup table.
func BenchmarkSQLite_Apply(b *testing.B) {
	if testing.Short() {
		b.Skip("writes 100k rows per iteration")
	}
	const rows = 100_000
	table := mapreduce.OutputTable{
		Name: "daily_rollup",
		Keys: []mapreduce.Field{{Name: "account_id", Type: mapreduce.TypeInt64}, {Name: "day", Type: mapreduce.TypeDate},
			{Name: "category", Type: mapreduce.TypeString}},
		Values: []mapreduce.Field{{Name: "events", Type: mapreduce.TypeInt64}, {Name: "total_cents", Type: mapreduce.TypeInt64}},
	}
	data := make([][]any, rows)
	for k := range data {
		data[k] = []any{int64(k / 100), mapreduce.Date(20786 + k%10), fmt.Sprintf("category-%d", k/10%10), int64(k % 7), int64(k)}
	}
	b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			sink, _ := openSQLite(b)
			if err := sink.Prepare(b.Context(), table); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := sink.Apply(b.Context(), table, "bench", 0, &tableRows{rows: data}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

// A pre-existing SQLite table whose column affinities would change the
// job's values (an INTEGER column turns the string 007 into 7, a REAL one
// rounds large integers) is refused by Prepare, naming the columns.
func TestSQLite_PrepareTypes(t *testing.T) {
	t.Parallel()
	sink, db := openSQLite(t)
	if _, err := db.Exec(`CREATE TABLE totals (k INTEGER PRIMARY KEY, n REAL, day DATE, note)`); err != nil {
		t.Fatal(err)
	}
	table := mapreduce.OutputTable{
		Name: "totals",
		Keys: []mapreduce.Field{{Name: "k", Type: mapreduce.TypeString}},
		Values: []mapreduce.Field{{Name: "n", Type: mapreduce.TypeInt64}, {Name: "day", Type: mapreduce.TypeDate},
			{Name: "note", Type: mapreduce.TypeString}},
	}
	err := sink.Prepare(t.Context(), table)
	want := fmt.Sprintf(`sinks: table "totals" in %s has columns whose type would change the job's values: `+
		`"k" is INTEGER (INTEGER affinity), needs TEXT; "n" is REAL (REAL affinity), needs INTEGER; `+
		`SQLite cannot change a column's type: create the table anew with those types, or drop it so that mr creates it`, sink)
	if err == nil || err.Error() != want {
		t.Errorf("Prepare error:\ngot  %v\nwant %s", err, want)
	}
}
