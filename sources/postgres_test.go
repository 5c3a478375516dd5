package sources_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
	"github.com/mrengine/mr/sources"
	"github.com/mrengine/mr/sources/sourcetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openPostgres opens a source on dsn, closed in t.Cleanup.
func openPostgres(t testing.TB, dsn string) *sources.Postgres {
	t.Helper()
	src, err := sources.OpenPostgres(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// exec runs each statement on pool.
func exec(t testing.TB, pool *pgxpool.Pool, stmts ...string) {
	t.Helper()
	for _, stmt := range stmts {
		if _, err := pool.Exec(context.WithoutCancel(t.Context()), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

func newPostgres(t *testing.T, tables ...sourcetest.Table) mapreduce.Source {
	t.Helper()
	dsn := pgtest.DSN(t)
	pool := pgtest.PoolFor(t, dsn)
	for _, table := range tables {
		exec(t, pool, table.Statements()...)
		insert := table.Insert(func(i int) string { return "$" + strconv.Itoa(i) })
		for _, row := range table.Rows {
			if _, err := pool.Exec(t.Context(), insert, row...); err != nil {
				t.Fatalf("%s %v: %v", insert, row, err)
			}
		}
	}
	return openPostgres(t, dsn)
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	sourcetest.Run(t, newPostgres)
}

// pgBundle is a source on a fresh schema, and a pool on the same schema to
// set its tables up.
type pgBundle struct {
	schema string
	dsn    string
	pool   *pgxpool.Pool
	src    *sources.Postgres
}

func setupPostgres(t testing.TB, stmts ...string) *pgBundle {
	t.Helper()
	schema, dsn := pgtest.Schema(t)
	pool := pgtest.PoolFor(t, dsn)
	exec(t, pool, stmts...)
	return &pgBundle{schema: schema, dsn: dsn, pool: pool, src: openPostgres(t, dsn)}
}

// count returns the result of a count(*) query.
func (b *pgBundle) count(t testing.TB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := b.pool.QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func checkError(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil || err.Error() != want {
		t.Fatalf("%s error:\ngot  %v\nwant %s", what, err, want)
	}
}

func TestPostgres_Describe(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name   string
		create []string
		want   string // the error, with %[1]s for the source; empty for none
	}{
		{"Integer", []string{`CREATE TABLE t (id integer PRIMARY KEY, v text)`}, ""},
		{"Smallint", []string{`CREATE TABLE t (id smallint PRIMARY KEY, v text)`}, ""},
		{"UniqueConstraint", []string{`CREATE TABLE t (id bigint UNIQUE NOT NULL, v text)`}, ""},
		{"UniqueInclude", []string{`CREATE TABLE t (id bigint NOT NULL, v text)`, `CREATE UNIQUE INDEX ON t (id) INCLUDE (v)`}, ""},
		{"Domain", []string{`CREATE DOMAIN event_id AS bigint`, `CREATE TABLE t (id event_id PRIMARY KEY, v text)`,
			`INSERT INTO t VALUES (1, 'a'), (2, 'b')`}, ""},
		{"Partitioned", []string{`CREATE TABLE t (id bigint PRIMARY KEY, v text) PARTITION BY RANGE (id)`,
			`CREATE TABLE t_1 PARTITION OF t FOR VALUES FROM (0) TO (100)`}, ""},
		{"Text", []string{`CREATE TABLE t (id text PRIMARY KEY, v text)`},
			`sources: cursor column "id" of table "t" in %[1]s has type "text"; it must be an integer column (pick another --cursor)`},
		{"Numeric", []string{`CREATE TABLE t (id numeric PRIMARY KEY, v text)`},
			`sources: cursor column "id" of table "t" in %[1]s has type "numeric"; it must be an integer column (pick another --cursor)`},
		{"NumericPrecision", []string{`CREATE TABLE t (id numeric(10,0) PRIMARY KEY, v text)`},
			`sources: cursor column "id" of table "t" in %[1]s has type "numeric(10,0)"; it must be an integer column (pick another --cursor)`},
		{"NoIndex", []string{`CREATE TABLE t (id bigint NOT NULL, v text)`},
			`sources: cursor column "id" of table "t" in %[1]s must be unique: add a unique index or pick another --cursor`},
		{"PlainIndex", []string{`CREATE TABLE t (id bigint NOT NULL, v text)`, `CREATE INDEX ON t (id)`},
			`sources: cursor column "id" of table "t" in %[1]s must be unique: add a unique index or pick another --cursor`},
		{"CompositeKey", []string{`CREATE TABLE t (id bigint, v text, PRIMARY KEY (id, v))`},
			`sources: cursor column "id" of table "t" in %[1]s must be unique: add a unique index or pick another --cursor`},
		{"PartialIndex", []string{`CREATE TABLE t (id bigint, v text)`, `CREATE UNIQUE INDEX ON t (id) WHERE id > 0`},
			`sources: cursor column "id" of table "t" in %[1]s must be unique: add a unique index or pick another --cursor`},
		{"ExpressionIndex", []string{`CREATE TABLE t (id bigint, v text)`, `CREATE UNIQUE INDEX ON t ((id + 0))`},
			`sources: cursor column "id" of table "t" in %[1]s must be unique: add a unique index or pick another --cursor`},
		{"Nulls", []string{`CREATE TABLE t (id bigint UNIQUE, v text)`, `INSERT INTO t VALUES (1, 'a'), (NULL, 'b'), (NULL, 'c'), (NULL, 'd')`},
			`sources: cursor column "id" of table "t" in %[1]s has 3 NULL values: fill them or pick another --cursor`},
		{"CaseMatters", []string{`CREATE TABLE "T" (id bigint PRIMARY KEY, v text)`},
			`sources: table "t" not found in %[1]s (check --table)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bundle := setupPostgres(t, tt.create...)
			in := mapreduce.Input{Table: "t", Cursor: "id", Columns: []string{"v"}}
			info, err := bundle.src.Describe(t.Context(), in)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := readAll(t, bundle.src, in, partition.Range{Lo: -1 << 40, Hi: 1 << 40}, 1); int64(len(got)) != info.Rows {
					t.Errorf("read %v, want %d rows", got, info.Rows)
				}
				return
			}
			checkError(t, "Describe", err, fmt.Sprintf(tt.want, bundle.src))
		})
	}

	t.Run("SchemaQualified", func(t *testing.T) {
		t.Parallel()
		bundle := setupPostgres(t, `CREATE TABLE events (id bigint PRIMARY KEY)`, `INSERT INTO events VALUES (5), (9)`)
		in := mapreduce.Input{Table: bundle.schema + ".events", Cursor: "id"}
		info, err := bundle.src.Describe(t.Context(), in)
		if want := (mapreduce.TableInfo{Min: 5, Max: 9, Rows: 2}); err != nil || !reflect.DeepEqual(info, want) {
			t.Fatalf("Describe = %+v, %v; want %+v", info, err, want)
		}
		if rows := readAll(t, bundle.src, in, partition.Range{Lo: 0, Hi: 100}, 1); len(rows) != 2 {
			t.Errorf("read %d rows, want 2", len(rows))
		}
		for _, table := range []string{"nope.events", ".events", "events.", bundle.schema + ".", bundle.schema + ".events.x"} {
			_, err := bundle.src.Describe(t.Context(), mapreduce.Input{Table: table, Cursor: "id"})
			checkError(t, "Describe "+table, err, fmt.Sprintf(`sources: table %q not found in %s (check --table)`, table, bundle.src))
		}
	})

	// Identifiers are quoted, never pasted: names made to break out of
	// the quotes name no table and run nothing.
	t.Run("Injection", func(t *testing.T) {
		t.Parallel()
		bundle := setupPostgres(t, `CREATE TABLE events (id bigint PRIMARY KEY, v text)`, `CREATE TABLE x (id bigint)`,
			`INSERT INTO events VALUES (1, 'a')`)
		evil := []string{`events"; DROP TABLE x; --`, `events; DROP TABLE x; --`, `x" CASCADE; DROP TABLE "x`,
			`events' OR '1'='1`, "events\x00", `"events"`}
		for _, table := range evil {
			in := mapreduce.Input{Table: table, Cursor: "id"}
			_, err := bundle.src.Describe(t.Context(), in)
			want := fmt.Sprintf(`sources: table %q not found in %s (check --table)`, table, bundle.src)
			checkError(t, "Describe", err, want)
			err = bundle.src.ReadChunk(t.Context(), in, partition.Range{Lo: 0, Hi: 10}, 10, mapreduce.NewBatch(nil))
			checkError(t, "ReadChunk", err, want)
		}
		for _, col := range evil {
			_, err := bundle.src.Describe(t.Context(), mapreduce.Input{Table: "events", Cursor: "id", Columns: []string{col}})
			checkError(t, "Describe", err, fmt.Sprintf(`sources: column %q not found in table "events" of %s; it has columns id, v (check --table, or the job's Input.Columns)`, col, bundle.src))
			_, err = bundle.src.Describe(t.Context(), mapreduce.Input{Table: "events", Cursor: col})
			checkError(t, "Describe", err, fmt.Sprintf(`sources: column %q not found in table "events" of %s; it has columns id, v (check --cursor)`, col, bundle.src))
			err = bundle.src.ReadChunk(t.Context(), mapreduce.Input{Table: "events", Cursor: "id", Columns: []string{col}},
				partition.Range{Lo: 0, Hi: 10}, 10, mapreduce.NewBatch([]string{col}))
			if err == nil || !strings.Contains(err.Error(), "(SQLSTATE 42703)") && !strings.Contains(err.Error(), "NUL byte") {
				t.Errorf("ReadChunk of column %q: %v, want undefined column", col, err)
			}
		}
		if n := bundle.count(t, `SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename IN ('events', 'x')`, bundle.schema); n != 2 {
			t.Fatalf("%d of the tables events and x left, want 2", n)
		}
		if n := bundle.count(t, `SELECT count(*) FROM events`); n != 1 {
			t.Errorf("events has %d rows, want 1", n)
		}
	})

	t.Run("RowEstimate", func(t *testing.T) {
		t.Parallel()
		bundle := setupPostgres(t, `CREATE TABLE t (id bigint PRIMARY KEY, v text) WITH (autovacuum_enabled = false)`,
			`INSERT INTO t SELECT i, repeat('x', 50) FROM generate_series(1, 10000) i`)
		in := mapreduce.Input{Table: "t", Cursor: "id"}
		describe := func() mapreduce.TableInfo {
			t.Helper()
			info, err := bundle.src.Describe(t.Context(), in)
			if err != nil {
				t.Fatal(err)
			}
			return info
		}
		if info := describe(); info.Rows != 10000 { // never analyzed: count(*)
			t.Errorf("Rows = %d before ANALYZE, want 10000", info.Rows)
		}
		exec(t, bundle.pool, `ANALYZE t`, `INSERT INTO t SELECT i, repeat('x', 50) FROM generate_series(10001, 20000) i`)
		// The statistics say 10,000 rows; the pages say the table doubled.
		if info := describe(); info.Rows < 19000 || info.Rows > 21000 || info.Max != 20000 {
			t.Errorf("Describe = %+v after ANALYZE and growth, want about 20000 rows up to 20000", info)
		}
		exec(t, bundle.pool, `DELETE FROM t`)
		if info := describe(); !reflect.DeepEqual(info, mapreduce.TableInfo{}) {
			t.Errorf("Describe = %+v of an emptied table, want zero", info)
		}
	})
}

// readAll reads r in chunks of limit rows, returning the cursors.
func readAll(t testing.TB, src mapreduce.Source, in mapreduce.Input, r partition.Range, limit int) []int64 {
	t.Helper()
	var cursors []int64
	b := mapreduce.NewBatch(in.Columns)
	for rest := r; ; rest = rest.After(b.Last()) {
		b.Reset()
		err := src.ReadChunk(t.Context(), in, rest, limit, b)
		if err == io.EOF {
			return cursors
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := range b.Len() {
			cursors = append(cursors, b.Row(i).Cursor())
		}
	}
}

func TestPostgres_ReadChunk(t *testing.T) {
	t.Parallel()

	// Types: every column type decodes to the Go type the doc promises.
	t.Run("Types", func(t *testing.T) {
		t.Parallel()
		bundle := setupPostgres(t, `CREATE TABLE t (id bigint PRIMARY KEY,
				i int, s smallint, n numeric(12,2), nn numeric, tx text, vc varchar(10), ch char(3),
				tz timestamptz, ts timestamp, d date, b bool, jb jsonb, j json, by bytea,
				f8 float8, f4 real, u uuid, arr int[], iv interval, o oid)`,
			`INSERT INTO t VALUES (1, -7, 3, 12.50, 1e20, 'x', 'héllo', 'ab',
				'2026-03-04 23:30:00.123456-05', '2026-03-04 23:30:00', '2026-03-04', true, '{"a": [1, 2]}', '{"a" : 1}', '\x00ff',
				2.5, 0.5, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,2}', '1 day 02:00:00', 4000000000)`,
			`INSERT INTO t (id) VALUES (2)`,
			`INSERT INTO t (id, nn, tz, ts, d, f8) VALUES (3, 'NaN', 'infinity', '-infinity', 'infinity', '-Infinity')`,
			`INSERT INTO t (id, tz, d) VALUES (4, '1999-12-31 23:59:59.999999+00', '1970-01-01')`)
		cols := []string{"i", "s", "n", "nn", "tx", "vc", "ch", "tz", "ts", "d", "b", "jb", "j", "by", "f8", "f4", "u", "arr", "iv", "o"}
		in := mapreduce.Input{Table: "t", Cursor: "id", Columns: cols}
		b := mapreduce.NewBatch(cols)
		if err := bundle.src.ReadChunk(t.Context(), in, partition.Range{Lo: 0, Hi: 10}, 10, b); err != nil {
			t.Fatal(err)
		}
		if b.Len() != 4 {
			t.Fatalf("read %d rows, want 4", b.Len())
		}
		utc := func(s string) time.Time {
			v, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				t.Fatal(err)
			}
			return v.UTC()
		}
		want := []map[string]any{{
			"i": int64(-7), "s": int64(3), "n": "12.50", "nn": "100000000000000000000", "tx": "x", "vc": "héllo", "ch": "ab ",
			"tz": utc("2026-03-05T04:30:00.123456Z"), "ts": utc("2026-03-04T23:30:00Z"), "d": utc("2026-03-04T00:00:00Z"),
			"b": true, "jb": []byte(`{"a": [1, 2]}`), "j": []byte(`{"a" : 1}`), "by": []byte{0, 0xff},
			"f8": 2.5, "f4": 0.5, "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "arr": "{1,2}", "iv": "1 day 02:00:00", "o": int64(4000000000),
		}, {}, {
			"nn": "NaN", "tz": "infinity", "ts": "-infinity", "d": "infinity", "f8": "-Inf",
		}, {
			"tz": utc("1999-12-31T23:59:59.999999Z"), "d": utc("1970-01-01T00:00:00Z"),
		}}
		for r, w := range want {
			row := b.Row(r)
			for c, name := range cols {
				got, want := row.Value(c), w[name]
				if name == "f8" && want == "-Inf" {
					want = math.Inf(-1)
				}
				if fmt.Sprintf("%T %#v", got, got) != fmt.Sprintf("%T %#v", want, want) {
					t.Errorf("row %d, column %s = %T %#v, want %T %#v", r+1, name, got, got, want, want)
				}
				if tm, ok := got.(time.Time); ok && tm.Location() != time.UTC {
					t.Errorf("row %d, column %s in %v, want UTC", r+1, name, tm.Location())
				}
			}
		}
		// The getters of Map functions read them.
		row := b.Row(0)
		if got := row.Float64(2); got != 12.5 {
			t.Errorf("Float64(numeric) = %v, want 12.5", got)
		}
		if got := row.Time(7); !got.Equal(utc("2026-03-05T04:30:00.123456Z")) {
			t.Errorf("Time(timestamptz) = %v", got)
		}
	})

	// A smallint or integer cursor takes bounds beyond its range.
	t.Run("NarrowCursor", func(t *testing.T) {
		t.Parallel()
		bundle := setupPostgres(t, `CREATE TABLE s (id smallint PRIMARY KEY)`, `INSERT INTO s VALUES (-32768), (0), (32767)`,
			`CREATE TABLE i (id integer PRIMARY KEY)`, `INSERT INTO i VALUES (-2147483648), (0), (2147483647)`)
		for _, table := range []string{"s", "i"} {
			in := mapreduce.Input{Table: table, Cursor: "id"}
			if got := readAll(t, bundle.src, in, partition.Range{Lo: -1 << 40, Hi: 1 << 40}, 2); len(got) != 3 {
				t.Errorf("table %s: read %v, want 3 rows", table, got)
			}
		}
	})

	t.Run("Limit", func(t *testing.T) {
		t.Parallel()
		bundle := setupPostgres(t, `CREATE TABLE t (id bigint PRIMARY KEY)`)
		err := bundle.src.ReadChunk(t.Context(), mapreduce.Input{Table: "t", Cursor: "id"}, partition.Range{Lo: 0, Hi: 10}, 0, mapreduce.NewBatch(nil))
		checkError(t, "ReadChunk", err, `sources: read [0, 10) of table "t": limit must be at least 1, got 0`)
	})
}

func TestOpenPostgres(t *testing.T) {
	t.Parallel()

	// A zero RetryBudget means no retries; the CLI's sources retry.
	t.Run("RetryBudget", func(t *testing.T) {
		t.Parallel()
		if got := openPostgres(t, pgtest.DSN(t)).RetryBudget; got != sources.DefaultRetryBudget {
			t.Errorf("RetryBudget = %s, want DefaultRetryBudget (%s)", got, sources.DefaultRetryBudget)
		}
	})

	t.Run("WrongPassword", func(t *testing.T) {
		t.Parallel()
		const password = "Wr0ng-pa55word"
		dsn := pgtest.PasswordDSN(t, password)
		_, err := sources.OpenPostgres(t.Context(), dsn)
		if err == nil {
			t.Fatal("OpenPostgres with a wrong password: no error")
		}
		msg := err.Error()
		if strings.Contains(msg, password) {
			t.Errorf("error shows the password: %s", msg)
		}
		for _, want := range []string{"sources: cannot connect to postgres://" + pgtest.PasswordRole + "@127.0.0.1:",
			"password authentication failed", "(SQLSTATE 28P01)", "(check the user and password of the URL, or PGPASSWORD and ~/.pgpass)"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q\ndoes not say %q", msg, want)
			}
		}
	})

	t.Run("RightPassword", func(t *testing.T) {
		t.Parallel()
		src := openPostgres(t, pgtest.PasswordDSN(t, pgtest.RolePassword))
		if name := src.String(); strings.Contains(name, pgtest.RolePassword) || !strings.HasPrefix(name, "postgres://"+pgtest.PasswordRole+"@127.0.0.1:") {
			t.Errorf("String() = %s, want the user and server without the password", name)
		}
		_, err := src.Describe(t.Context(), mapreduce.Input{Table: "nope", Cursor: "id"})
		if err == nil || strings.Contains(err.Error(), pgtest.RolePassword) {
			t.Errorf("Describe error %v: want one without the password", err)
		}
	})

	// Each form of DSN, to a port where nothing listens: the error names
	// the server by its one canonical name, never the password, and comes
	// at once.
	t.Run("ServerDown", func(t *testing.T) {
		t.Parallel()
		addr := closedPort(t)
		host, port, _ := net.SplitHostPort(addr)
		const password = "hunter2-Secret"
		for _, dsn := range []string{
			"postgres://mr:" + password + "@" + addr + "/mrdb",
			"postgresql://mr@" + addr + "/mrdb?password=" + password + "&pool_max_conns=3&sslmode=disable",
			"host=" + host + " port=" + port + " user=mr password='" + password + "' dbname=mrdb pool_max_conns=2",
		} {
			start := time.Now()
			_, err := sources.OpenPostgres(t.Context(), dsn)
			want := "sources: cannot connect to postgres://mr@" + addr + "/mrdb: "
			if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), password) ||
				!strings.HasSuffix(err.Error(), "connection refused (check that the server is up, and the host and port of the URL)") {
				t.Errorf("OpenPostgres(%s):\ngot  %v\nwant %s…connection refused (check …)", pg.Redact(dsn), err, want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("OpenPostgres took %s to fail; opening does not retry", d)
			}
		}
	})

	t.Run("BadURL", func(t *testing.T) {
		t.Parallel()
		const password = "hunter2-Secret"
		_, err := sources.OpenPostgres(t.Context(), "postgres://mr:"+password+"@localhost:port/mrdb")
		if err == nil || strings.Contains(err.Error(), password) || !strings.HasPrefix(err.Error(), "sources: cannot parse `postgres://mr:xxxxx@localhost:port/mrdb`: ") {
			t.Errorf("OpenPostgres error %v: want a parse error without the password", err)
		}
	})
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestOpen_Postgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	var names []string // one per scheme, and all the same: the canonical name
	for _, scheme := range []string{"postgres", "postgresql"} {
		url := scheme + strings.TrimPrefix(dsn, strings.SplitN(dsn, ":", 2)[0])
		src, err := sources.Open(t.Context(), url)
		if err != nil {
			t.Fatalf("Open(%s): %v", url, err)
		}
		names = append(names, src.String())
		if _, ok := src.(*sources.Postgres); !ok || !strings.HasPrefix(src.String(), "postgres://") || strings.Contains(src.String(), "sslmode") {
			t.Errorf("Open(%s) = %T %s", url, src, src)
		}
		src.(io.Closer).Close()
	}
	if names[0] != names[1] {
		t.Errorf("one database has two names: %q", names)
	}
	src, err := sources.Open(t.Context(), "postgres://mr:secret@"+closedPort(t)+"/mr")
	if src != nil || err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("Open of a server that is down = %#v, %v", src, err)
	}
}

// BenchmarkPostgres_ReadChunk reads a table of the shape daily_rollup
// reads, whole, in chunks of limit rows.
func BenchmarkPostgres_ReadChunk(b *testing.B) {
	if testing.Short() {
		b.Skip("creates a table of a million rows")
	}
	const rows = 1_000_000
	bundle := setupPostgres(b, `CREATE TABLE events (id bigint, account_id bigint, ts timestamptz,
		category text, amount_cents bigint, payload text)`)
	next, stop := iter.Pull(eventgen.Config{Rows: rows, Seed: 1}.All())
	defer stop()
	n, err := bundle.pool.CopyFrom(b.Context(), pgx.Identifier{"events"},
		[]string{"id", "account_id", "ts", "category", "amount_cents", "payload"},
		pgx.CopyFromFunc(func() ([]any, error) {
			e, ok := next()
			if !ok {
				return nil, nil
			}
			return []any{e.ID, e.AccountID, e.TS, e.Category, e.AmountCents, pgtype.Text{String: e.Payload.String, Valid: e.Payload.Valid}}, nil
		}))
	if err != nil || n != rows {
		b.Fatalf("COPY: %d rows, %v", n, err)
	}
	exec(b, bundle.pool, `ALTER TABLE events ADD PRIMARY KEY (id)`, `VACUUM ANALYZE events`)

	in := mapreduce.Input{Table: "events", Cursor: "id", Columns: []string{"account_id", "ts", "category", "amount_cents", "payload"}}
	for _, limit := range []int{1000, 50000} {
		b.Run(fmt.Sprintf("rows=%d/limit=%d", rows, limit), func(b *testing.B) {
			b.ReportAllocs()
			batch := mapreduce.NewBatch(in.Columns)
			for b.Loop() {
				read := 0
				for lo := int64(1); ; lo = batch.Last() + 1 {
					batch.Reset()
					err := bundle.src.ReadChunk(b.Context(), in, partition.Range{Lo: lo, Hi: rows + 1}, limit, batch)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					read += batch.Len()
				}
				if read != rows {
					b.Fatalf("read %d rows, want %d", read, rows)
				}
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// errorsAs is errors.As for a target type.
func errorsAs[T error](err error) (T, bool) {
	var target T
	ok := errors.As(err, &target)
	return target, ok
}
