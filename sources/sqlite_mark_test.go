package sources_test

import (
	"database/sql"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/mrengine/mr/mapreduce"
)

func TestSQLite_Mark(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name   string
		create []string
		want   int64
		err    string // the error, with %[1]s for the source; empty for none
	}{
		{name: "Max", create: []string{`CREATE TABLE t (id INTEGER PRIMARY KEY, v)`, `INSERT INTO t VALUES (3, 'a'), (17, 'b'), (5, 'c')`}, want: 17},
		{name: "Negative", create: []string{`CREATE TABLE t (id INTEGER PRIMARY KEY, v)`, `INSERT INTO t VALUES (-9, 'a'), (-4, 'b')`}, want: -4},
		{name: "Empty", create: []string{`CREATE TABLE t (id INTEGER PRIMARY KEY, v)`}, want: math.MinInt64},
		{name: "EmptiedAutoincrement", create: []string{`CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, v)`,
			`INSERT INTO t (v) VALUES ('a')`, `DELETE FROM t`}, want: math.MinInt64},
		{name: "CaseInsensitiveNames", create: []string{`CREATE TABLE T (ID INTEGER PRIMARY KEY, V)`, `INSERT INTO T VALUES (8, 'a')`}, want: 8},
		{name: "TextValue", create: []string{`CREATE TABLE t (id INTEGER UNIQUE, v)`, `INSERT INTO t VALUES (1, 'a'), ('x1', 'b')`},
			err: `sources: cursor column "id" of table "t" in %[1]s holds the non-integer value "x1": store integers only or pick another --cursor`},
		{name: "NoTable", err: `sources: table "t" not found in %[1]s (check --table)`},
		{name: "NoColumn", create: []string{`CREATE TABLE t (key INTEGER PRIMARY KEY, v)`},
			err: `sources: column "id" not found in table "t" of %[1]s; it has columns key, v (check --cursor)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := openSQLite(t, createDB(t, append([]string{`CREATE TABLE other (x)`}, tt.create...)...))
			got, err := src.Mark(t.Context(), mapreduce.Input{Table: "t", Cursor: "id", Columns: []string{"v"}})
			if tt.err != "" {
				checkError(t, "Mark", err, fmt.Sprintf(tt.err, src))
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Mark = %d, %v; want %d", got, err, tt.want)
			}
		})
	}

	// A writer holding SQLite's write lock neither blocks Mark nor can
	// commit a row at or below the mark: rows take ids above the largest
	// committed one.
	t.Run("OpenWriter", func(t *testing.T) {
		t.Parallel()
		path := createDB(t, `CREATE TABLE t (id INTEGER PRIMARY KEY, v)`, `INSERT INTO t (v) VALUES ('a'), ('b')`)
		src := openSQLite(t, path) // sets WAL mode
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		conn, err := db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(t.Context(), `BEGIN IMMEDIATE`); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(t.Context(), `INSERT INTO t (v) VALUES ('held')`); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		mark, err := src.Mark(t.Context(), mapreduce.Input{Table: "t", Cursor: "id"})
		if err != nil || mark != 2 {
			t.Fatalf("Mark = %d, %v; want 2, the largest committed id", mark, err)
		}
		if took := time.Since(began); took > time.Second {
			t.Errorf("Mark took %v beside an open writer", took)
		}
		if _, err := conn.ExecContext(t.Context(), `COMMIT`); err != nil {
			t.Fatal(err)
		}
		var low int64
		if err := db.QueryRowContext(t.Context(), `SELECT min(id) FROM t WHERE v = 'held'`).Scan(&low); err != nil || low <= mark {
			t.Fatalf("the held row has id %d, %v; want one above the mark %d", low, err, mark)
		}
	})
}
