package sources_test

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
	"github.com/mrengine/mr/sources"
	"github.com/mrengine/mr/sources/sourcetest"
)

// createDB creates an SQLite database in t.TempDir, runs stmts on it and
// returns its path.
func createDB(t testing.TB, stmts ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "source.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range stmts {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	return path
}

func openSQLite(t testing.TB, path string) *sources.SQLite {
	t.Helper()
	src, err := sources.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func newSQLite(t *testing.T, tables ...sourcetest.Table) mapreduce.Source {
	t.Helper()
	var stmts []string
	for _, table := range tables {
		stmts = append(stmts, table.Statements()...)
	}
	path := createDB(t, stmts...)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, table := range tables {
		insert := table.Insert(func(int) string { return "?" })
		for _, row := range table.Rows {
			if _, err := db.ExecContext(t.Context(), insert, row...); err != nil {
				t.Fatalf("%s %v: %v", insert, row, err)
			}
		}
	}
	return openSQLite(t, path)
}

func TestSQLite(t *testing.T) {
	t.Parallel()
	sourcetest.Run(t, newSQLite)
}

func TestSQLite_Describe(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		create []string
		want   string // the error, with %[1]s for the source; empty for none
	}{
		{"RowidAlias", []string{`CREATE TABLE t (id INTEGER PRIMARY KEY, v)`, `INSERT INTO t VALUES (3, 'x')`}, ""},
		{"WithoutRowid", []string{`CREATE TABLE t (id bigint PRIMARY KEY, v) WITHOUT ROWID`}, ""},
		{"UpperCaseNames", []string{`CREATE TABLE T (ID INT NOT NULL, V TEXT)`, `CREATE UNIQUE INDEX t_id ON T (ID)`}, ""},
		{"CompositeKey", []string{`CREATE TABLE t (id INTEGER, v TEXT, PRIMARY KEY (id, v))`},
			`sources: cursor column "id" of table "t" in %[1]s must be unique: add a unique index or pick another --cursor`},
		{"PartialIndex", []string{`CREATE TABLE t (id INTEGER, v)`, `CREATE UNIQUE INDEX t_id ON t (id) WHERE id > 0`},
			`sources: cursor column "id" of table "t" in %[1]s must be unique: add a unique index or pick another --cursor`},
		{"NoType", []string{`CREATE TABLE t (id PRIMARY KEY, v)`},
			`sources: cursor column "id" of table "t" in %[1]s has type ""; it must be an integer column (pick another --cursor)`},
		{"TextValue", []string{`CREATE TABLE t (id INTEGER UNIQUE, v)`, `INSERT INTO t VALUES (1, 'a'), ('x1', 'b')`},
			`sources: cursor column "id" of table "t" in %[1]s holds the non-integer value "x1": store integers only or pick another --cursor`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := openSQLite(t, createDB(t, tt.create...))
			_, err := src.Describe(t.Context(), mapreduce.Input{Table: "t", Cursor: "id", Columns: []string{"v"}})
			if want := fmt.Sprintf(tt.want, src); (tt.want == "" && err != nil) || (tt.want != "" && (err == nil || err.Error() != want)) {
				t.Fatalf("Describe error:\ngot  %v\nwant %s", err, want)
			}
		})
	}
}

// TestSQLite_Describe_ExprTypes checks the types Describe reports for
// plain columns among Exprs, which rollups compile against: PostgreSQL's
// names for timestamps are SQLite column types too, and a table written
// for both databases uses them.
func TestSQLite_Describe_ExprTypes(t *testing.T) {
	t.Parallel()
	src := openSQLite(t, createDB(t, `CREATE TABLE t (id INTEGER PRIMARY KEY, a TIMESTAMP, b timestamptz, c timestamp with time zone, d DATE, e bigint)`))
	info, err := src.Describe(t.Context(), mapreduce.Input{Table: "t", Cursor: "id", Exprs: []string{"a", "b", "c", "d", "e"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"timestamp with time zone", "timestamp with time zone", "timestamp with time zone", "date", "bigint"}
	if !slices.Equal(info.Types, want) {
		t.Errorf("types %q, want %q", info.Types, want)
	}
}

func TestSQLite_ReadChunk(t *testing.T) {
	t.Parallel()

	t.Run("RealCursorValue", func(t *testing.T) {
		t.Parallel()
		src := openSQLite(t, createDB(t, `CREATE TABLE t (id INTEGER UNIQUE)`, `INSERT INTO t VALUES (1), (1.5)`))
		in := mapreduce.Input{Table: "t", Cursor: "id"}
		err := src.ReadChunk(t.Context(), in, partition.Range{Lo: 0, Hi: 10}, 10, mapreduce.NewBatch(nil))
		want := fmt.Sprintf(`sources: cursor column "id" of table "t" in %s holds the non-integer value 1.5: store integers only or pick another --cursor`, src)
		if err == nil || err.Error() != want {
			t.Fatalf("ReadChunk error:\ngot  %v\nwant %s", err, want)
		}
	})

	t.Run("Types", func(t *testing.T) {
		t.Parallel()
		src := openSQLite(t, createDB(t,
			`CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB, ts TIMESTAMP, n)`,
			`INSERT INTO t VALUES (1, 7, 2.5, 'x', x'00ff', '2026-11-29 10:00:00', NULL)`))
		in := mapreduce.Input{Table: "t", Cursor: "id", Columns: []string{"i", "r", "s", "b", "ts", "n"}}
		b := mapreduce.NewBatch(in.Columns)
		if err := src.ReadChunk(t.Context(), in, partition.Range{Lo: 0, Hi: 10}, 10, b); err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprintf("%#v", b.Row(0).Columns())
		want := `map[string]interface {}{"b":[]uint8{0x0, 0xff}, "i":7, "n":interface {}(nil), "r":2.5, "s":"x", "ts":time.Date(2026, time.November, 29, 10, 0, 0, 0, time.UTC)}`
		if got != want {
			t.Errorf("row:\ngot  %s\nwant %s", got, want)
		}
	})
}

func TestOpenSQLite(t *testing.T) {
	t.Parallel()

	t.Run("NoSuchFile", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "missing.db")
		_, err := sources.OpenSQLite(path)
		if want := fmt.Sprintf("sources: sqlite:%s: no such file", path); err == nil || err.Error() != want {
			t.Errorf("OpenSQLite error:\ngot  %v\nwant %s", err, want)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("OpenSQLite created %s", path)
		}
	})

	t.Run("NotADatabase", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "text.db")
		if err := os.WriteFile(path, []byte("this is not a database, just some text long enough to hold a header"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := sources.OpenSQLite(path)
		if want := fmt.Sprintf("sources: sqlite:%s: file is not a database (26)", path); err == nil || err.Error() != want {
			t.Errorf("OpenSQLite error:\ngot  %v\nwant %s", err, want)
		}
	})

	t.Run("ReservedCharacters", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "a?b#c%d")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "x.db")
		if err := os.Rename(createDB(t, `CREATE TABLE t (id INTEGER PRIMARY KEY)`), path); err != nil {
			t.Fatal(err)
		}
		src := openSQLite(t, path)
		if _, err := src.Describe(t.Context(), mapreduce.Input{Table: "t", Cursor: "id"}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestOpen(t *testing.T) {
	t.Parallel()
	path := createDB(t, `CREATE TABLE t (id INTEGER PRIMARY KEY)`)
	for _, tt := range []struct {
		url, want string // want is the source's name, or the error
	}{
		{"sqlite:" + path, "sqlite:" + path},
		{path, "sqlite:" + path},
		{"sqlite:" + filepath.Dir(path) + "/.//" + filepath.Base(path), "sqlite:" + path},
		{"sqlite:" + filepath.Dir(path) + "/nope.db", "sources: sqlite:" + filepath.Dir(path) + "/nope.db: no such file"},
		{"mysql://mr:secret@localhost/mr.db", `sources: unsupported scheme "mysql": use sqlite:PATH, a PATH ending in .db, postgres://USER@HOST/DB, or host=HOST dbname=DB`},
		{"mr:hunter2@localhost", `sources: not a database URL: use sqlite:PATH, a PATH ending in .db, postgres://USER@HOST/DB, or host=HOST dbname=DB`},
	} {
		src, err := sources.Open(t.Context(), tt.url)
		got := fmt.Sprint(err)
		if err == nil {
			got = src.String()
			src.(*sources.SQLite).Close()
		}
		if got != tt.want {
			t.Errorf("Open(%q):\ngot  %s\nwant %s", tt.url, got, tt.want)
		}
	}
}

// BenchmarkSQLite_ReadChunk reads a table of the shape daily_rollup reads,
// whole, in chunks of limit rows.
func BenchmarkSQLite_ReadChunk(b *testing.B) {
	if testing.Short() {
		b.Skip("creates a table of a million rows")
	}
	const rows = 1_000_000
	src := openSQLite(b, createDB(b,
		`CREATE TABLE events (id INTEGER PRIMARY KEY, account_id bigint, ts timestamptz, category text, amount_cents bigint, payload text)`,
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
			INSERT INTO events SELECT i, i %% 1000, strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ', 1767225600 + i * 30, 'unixepoch'),
			'category-' || (i %% 7), i %% 5000, '{"item":' || i || ',"note":"some payload text"}' FROM n`, rows)))
	in := mapreduce.Input{Table: "events", Cursor: "id", Columns: []string{"account_id", "ts", "category", "amount_cents", "payload"}}
	for _, limit := range []int{1000, 50000} {
		b.Run(fmt.Sprintf("rows=%d/limit=%d", rows, limit), func(b *testing.B) {
			b.ReportAllocs()
			batch := mapreduce.NewBatch(in.Columns)
			for b.Loop() {
				for lo := int64(1); ; lo = batch.Last() + 1 {
					batch.Reset()
					err := src.ReadChunk(b.Context(), in, partition.Range{Lo: lo, Hi: rows + 1}, limit, batch)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
