package sinks_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/sinks"
	"github.com/mrengine/mr/sinks/sinktest"
	"github.com/mrengine/mr/sources"
)

// openPostgres opens a sink on dsn, closed in t.Cleanup.
func openPostgres(t testing.TB, dsn string) *sinks.Postgres {
	t.Helper()
	sink, err := sinks.OpenPostgres(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	return sink
}

// pgBundle is a sink on a fresh schema and a pool on the same schema to
// look at it from outside.
type pgBundle struct {
	sink *sinks.Postgres
	pool *pgxpool.Pool
	dsn  string
}

func setupPostgres(t testing.TB) *pgBundle {
	t.Helper()
	dsn := pgtest.DSN(t)
	return &pgBundle{sink: openPostgres(t, dsn), pool: pgtest.PoolFor(t, dsn), dsn: dsn}
}

// query returns the rows of sql with int16 and int32 widened to int64 and
// float32 to float64, as sinktest.Backend.Query promises.
func (b *pgBundle) query(t testing.TB, sql string, args ...any) [][]any {
	t.Helper()
	rows, err := b.pool.Query(t.Context(), sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([]any, error) {
		values, err := row.Values()
		for i, v := range values {
			switch v := v.(type) {
			case int16:
				values[i] = int64(v)
			case int32:
				values[i] = int64(v)
			case float32:
				values[i] = float64(v)
			}
		}
		return values, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func newPostgres(t *testing.T) sinktest.Backend {
	t.Helper()
	b := setupPostgres(t)
	return sinktest.Backend{
		Sink: b.sink,
		Exec: func(sql string) error {
			_, err := b.pool.Exec(t.Context(), sql)
			return err
		},
		Query: func(sql string) [][]any { return b.query(t, sql) },
	}
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	sinktest.Run(t, newPostgres)
}

// withOption adds a server setting to the startup options of a postgres://
// DSN, as pgtest does for search_path.
func withOption(t testing.TB, dsn, option string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		t.Skipf("needs a postgres:// URL to change, got %v", err)
	}
	q := u.Query()
	q.Set("options", strings.TrimSpace(q.Get("options")+" "+option))
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String()
}

func TestPostgres_Prepare(t *testing.T) {
	t.Parallel()

	t.Run("Schema", func(t *testing.T) {
		t.Parallel()
		b := setupPostgres(t)
		if err := b.sink.Prepare(t.Context(), everyType); err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprint(b.query(t, `SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
			FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
			WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND a.attnum > 0
			ORDER BY c.relname, a.attnum`))
		want := "[[every type i bigint true] [every type d date true] [every type f double precision false] " +
			"[every type s text false] [every type b boolean false] [every type ts timestamp with time zone false] " +
			"[mr_bucket_commits commit_key text true] [mr_bucket_commits bucket integer true] " +
			"[mr_bucket_commits rows bigint false] [mr_bucket_commits committed_at timestamp with time zone false] " +
			"[mr_bucket_commits table_oid oid false] " +
			"[mr_table_owners table_name text true] [mr_table_owners run text true] [mr_table_owners commit_key text true] " +
			"[mr_table_owners claimed_at timestamp with time zone true]]"
		if got != want {
			t.Errorf("columns:\ngot  %s\nwant %s", got, want)
		}
		got = fmt.Sprint(b.query(t, `SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint
			WHERE connamespace = current_schema()::regnamespace ORDER BY 1`))
		if want := `[["every type" PRIMARY KEY (i, d)] [mr_bucket_commits PRIMARY KEY (commit_key, bucket)] [mr_table_owners PRIMARY KEY (table_name)]]`; got != want {
			t.Errorf("constraints:\ngot  %s\nwant %s", got, want)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		long := strings.Repeat("x", 64)
		for _, tt := range []struct {
			name, create string
			table        mapreduce.OutputTable
			want         string // with %[1]s for the sink
		}{
			{"MissingColumns", `CREATE TABLE "every type" (i bigint, d date, s text, PRIMARY KEY (i, d))`, everyType,
				`sinks: table "every type" in %[1]s lacks columns "f", "b", "ts": add them (` +
					`ALTER TABLE "%[2]s"."every type" ADD COLUMN "f" double precision; ` +
					`ALTER TABLE "%[2]s"."every type" ADD COLUMN "b" boolean; ` +
					`ALTER TABLE "%[2]s"."every type" ADD COLUMN "ts" timestamptz) or drop the table so that mr creates it`},
			{"NoKey", `CREATE TABLE "every type" (i bigint, d date, f float8, s text, b bool, ts timestamptz)`, everyType,
				`sinks: table "every type" in %[1]s has no primary key or unique index on exactly ("i", "d"), which upserts need: ` +
					`add one (CREATE UNIQUE INDEX "every type_key" ON "%[2]s"."every type" ("i", "d")) or drop the table so that mr creates it`},
			{"KeyWithIncludedColumn", `CREATE TABLE "every type" (i bigint, d date, f float8, s text, b bool, ts timestamptz);
				CREATE UNIQUE INDEX ON "every type" (i) INCLUDE (d)`, everyType,
				`sinks: table "every type" in %[1]s has no primary key or unique index on exactly ("i", "d"), which upserts need: ` +
					`add one (CREATE UNIQUE INDEX "every type_key" ON "%[2]s"."every type" ("i", "d")) or drop the table so that mr creates it`},
			{"NoKeyColumns", "", mapreduce.OutputTable{Name: "t", Values: everyType.Values},
				`sinks: %[1]s: table "t" has no key columns`},
			{"UnknownType", "", mapreduce.OutputTable{Name: "t", Keys: []mapreduce.Field{{Name: "k", Type: 42}}},
				`sinks: %[1]s: column "k" of table "t" has unknown type Type(42)`},
			{"LongName", "", mapreduce.OutputTable{Name: long, Keys: everyType.Keys},
				`sinks: %[1]s: table name "` + long + `": schema and table names must be 1 to 63 bytes`},
			{"LongColumn", "", mapreduce.OutputTable{Name: "t", Keys: []mapreduce.Field{{Name: long, Type: mapreduce.TypeInt64}}},
				`sinks: %[1]s: column name "` + long + `" of table "t" must be 1 to 63 bytes`},
			{"NoSuchSchema", "", mapreduce.OutputTable{Name: "nowhere.t", Keys: everyType.Keys},
				`sinks: prepare table "nowhere.t" in %[1]s: ERROR: schema "nowhere" does not exist (SQLSTATE 3F000)`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				schema, dsn := pgtest.Schema(t)
				sink := openPostgres(t, dsn)
				if tt.create != "" {
					if _, err := pgtest.PoolFor(t, dsn).Exec(t.Context(), tt.create); err != nil {
						t.Fatal(err)
					}
				}
				err := sink.Prepare(t.Context(), tt.table)
				if want := fmt.Sprintf(tt.want, sink, schema); err == nil || err.Error() != want {
					t.Errorf("Prepare error:\ngot  %v\nwant %s", err, want)
				}
			})
		}
	})

	t.Run("QualifiedName", func(t *testing.T) {
		t.Parallel()
		b := setupPostgres(t)
		other, _ := pgtest.Schema(t)
		table := everyType
		table.Name = other + ".every type"
		if err := b.sink.Prepare(t.Context(), table); err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprint(b.query(t, `SELECT relnamespace::regnamespace::text, relname FROM pg_class
			WHERE relkind = 'r' AND relnamespace IN (current_schema()::regnamespace, $1::regnamespace) ORDER BY 2`, other))
		if want := fmt.Sprintf("[[%[1]s every type] [%[1]s mr_bucket_commits] [%[1]s mr_table_owners]]", other); got != want {
			t.Errorf("tables:\ngot  %s\nwant %s", got, want)
		}
		rows := &tableRows{rows: [][]any{{int64(1), mapreduce.Date(0), 1.5, "x", true, time.Unix(0, 0)}}}
		if err := b.sink.Apply(t.Context(), table, "c1", 3, rows); err != nil {
			t.Fatal(err)
		}
		committed, err := b.sink.Committed(t.Context(), "c1")
		if err != nil || fmt.Sprint(committed) != "[3]" {
			t.Errorf("Committed = %v, %v; want [3]", committed, err)
		}
	})

	t.Run("NoSchemaOnSearchPath", func(t *testing.T) {
		t.Parallel()
		dsn := withOption(t, pgtest.DSN(t), "-c search_path=no_such_schema")
		sink := openPostgres(t, dsn)
		committed, err := sink.Committed(t.Context(), "c1")
		if err != nil || committed != nil {
			t.Errorf("Committed = %v, %v; want none", committed, err)
		}
		err = sink.Prepare(t.Context(), everyType)
		want := fmt.Sprintf(`sinks: prepare table "every type" in %s: search_path names no existing schema: `+
			`qualify the table as schema.table, or set search_path (e.g. ?search_path=public in the URL)`, sink)
		if err == nil || err.Error() != want {
			t.Errorf("Prepare error:\ngot  %v\nwant %s", err, want)
		}
	})

	t.Run("ConcurrentProcesses", func(t *testing.T) {
		t.Parallel()
		// Each sink has its own pool, as separate processes would, so
		// that their CREATE TABLEs race for real.
		dsn := pgtest.DSN(t)
		const processes = 8
		procs := make([]*sinks.Postgres, processes)
		for i := range procs {
			procs[i] = openPostgres(t, dsn)
		}
		for round := range 5 {
			table := everyType
			table.Name = fmt.Sprintf("t%d", round)
			var wg sync.WaitGroup
			errs := make([]error, processes)
			for i, sink := range procs {
				wg.Go(func() { errs[i] = sink.Prepare(t.Context(), table) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	})
}

// reusingRows is a mapreduce.Rows that returns the same slice for every
// row, overwritten by Next, as the engine may.
type reusingRows struct {
	rows [][]any
	i    int
	buf  []any
}

func (r *reusingRows) Next() bool {
	if r.i >= len(r.rows) {
		return false
	}
	r.buf = append(r.buf[:0], r.rows[r.i]...)
	r.i++
	return true
}
func (r *reusingRows) Values() ([]any, error) { return r.buf, nil }
func (r *reusingRows) Err() error             { return nil }

// rollup is a daily_rollup-shaped output table.
var rollup = mapreduce.OutputTable{
	Name: "daily_rollup",
	Keys: []mapreduce.Field{{Name: "account_id", Type: mapreduce.TypeInt64}, {Name: "day", Type: mapreduce.TypeDate},
		{Name: "category", Type: mapreduce.TypeString}},
	Values: []mapreduce.Field{{Name: "events", Type: mapreduce.TypeInt64}, {Name: "total_cents", Type: mapreduce.TypeInt64}},
}

// rollupRows returns n daily_rollup rows with keys from first on, in a
// scrambled key order as a hash table yields them.
func rollupRows(first, n int, events int64) [][]any {
	rows := make([][]any, n)
	for i := range rows {
		k := first + (i*7919)%n // 7919 is prime: a permutation unless n is a multiple
		rows[i] = []any{int64(k / 100), mapreduce.Date(20786 + k%10), fmt.Sprintf("category-%d", k/10%10), events, int64(k)}
	}
	return rows
}

func TestPostgres_Apply(t *testing.T) {
	t.Parallel()

	prepare := func(t *testing.T, table mapreduce.OutputTable) *pgBundle {
		t.Helper()
		b := setupPostgres(t)
		if err := b.sink.Prepare(t.Context(), table); err != nil {
			t.Fatal(err)
		}
		return b
	}
	commits := func(t *testing.T, b *pgBundle) string {
		t.Helper()
		return fmt.Sprint(b.query(t, `SELECT commit_key, bucket, "rows", committed_at IS NOT NULL FROM mr_bucket_commits ORDER BY 1, 2`))
	}

	t.Run("EveryType", func(t *testing.T) {
		t.Parallel()
		b := setupPostgres(t)
		// The sink's session runs in a time zone far from UTC: dates and
		// instants must not move with it.
		sink := openPostgres(t, withOption(t, b.dsn, "-c TimeZone=Pacific/Kiritimati"))
		if err := sink.Prepare(t.Context(), everyType); err != nil {
			t.Fatal(err)
		}
		cet := time.FixedZone("CET", 3600)
		ts := time.Date(2026, 11, 29, 23, 30, 0, 123_456_000, cet)
		in := [][]any{
			{int64(1), mapreduce.DateOf(ts), 0.5, "x", true, ts},
			{int64(2), mapreduce.Date(-1), -1.0, "", false, time.Unix(0, 0)},
			{int64(-3), mapreduce.Date(0), 1e300, `it's "quoted"; ünïcode`, true, time.Date(1900, 1, 1, 0, 0, 0, 1000, time.UTC)},
			{int64(1) << 62, mapreduce.DateOf(time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)), math.Copysign(0, -1), "\t\n", false,
				time.Date(2026, 3, 29, 2, 30, 0, 0, time.FixedZone("CEST", 7200))},
		}
		if err := sink.Apply(t.Context(), everyType, "c1", 0, &tableRows{rows: in}); err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprint(b.query(t, `SELECT i, d::text, f, s, b, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')
			FROM "every type" ORDER BY i`))
		want := `[[-3 1970-01-01 1e+300 it's "quoted"; ünïcode true 1900-01-01 00:00:00.000001] ` +
			`[1 2026-11-29 0.5 x true 2026-11-29 22:30:00.123456] ` +
			`[2 1969-12-31 -1  false 1970-01-01 00:00:00.000000] ` +
			"[4611686018427387904 2026-03-29 -0 \t\n false 2026-03-29 00:30:00.000000]]"
		if got != want {
			t.Errorf("rows:\ngot  %s\nwant %s", got, want)
		}
		// Read back through pgx: the same Dates and instants.
		rows := b.query(t, `SELECT d, ts FROM "every type" ORDER BY i`)
		for i, j := range []int{2, 0, 1, 3} {
			d, ts := rows[i][0].(time.Time), rows[i][1].(time.Time)
			if mapreduce.DateOf(d) != in[j][1] || !ts.Equal(in[j][5].(time.Time)) {
				t.Errorf("row %d: date %v, ts %v; want %v, %v", j, d, ts, in[j][1], in[j][5])
			}
		}
	})

	t.Run("ReusedValues", func(t *testing.T) {
		t.Parallel()
		b := prepare(t, rollup)
		in := rollupRows(0, 5000, 1)
		if err := b.sink.Apply(t.Context(), rollup, "c1", 0, &reusingRows{rows: in}); err != nil {
			t.Fatal(err)
		}
		got := b.query(t, `SELECT count(*), count(DISTINCT (account_id, day, category)), sum(total_cents)::bigint FROM daily_rollup`)
		if want := "[[5000 5000 12497500]]"; fmt.Sprint(got) != want {
			t.Errorf("count, distinct keys, sum = %v, want %s", got, want)
		}
	})

	t.Run("Twice", func(t *testing.T) {
		t.Parallel()
		b := prepare(t, rollup)
		for _, events := range []int64{1, 2} {
			if err := b.sink.Apply(t.Context(), rollup, "c1", 5, &tableRows{rows: rollupRows(0, 300, events)}); err != nil {
				t.Fatal(err)
			}
		}
		got := b.query(t, `SELECT count(*), sum(events)::bigint FROM daily_rollup`)
		if want := "[[300 300]]"; fmt.Sprint(got) != want {
			t.Errorf("count, sum(events) = %v, want %s", got, want)
		}
		if got, want := commits(t, b), "[[c1 5 300 true]]"; got != want {
			t.Errorf("commit records:\ngot  %s\nwant %s", got, want)
		}
	})

	t.Run("SameBucketWaitsForTheFirst", func(t *testing.T) {
		t.Parallel()
		b := prepare(t, rollup)
		// The first Apply holds its commit record while its rows are
		// blocked; the second must wait for it, then do nothing.
		first := &blockingRows{rows: tableRows{rows: rollupRows(0, 100, 1)}, started: make(chan struct{}), release: make(chan struct{})}
		errs := make(chan error, 2)
		go func() { errs <- b.sink.Apply(t.Context(), rollup, "c1", 1, first) }()
		<-first.started
		go func() { errs <- b.sink.Apply(t.Context(), rollup, "c1", 1, &tableRows{rows: rollupRows(0, 100, 2)}) }()
		schema := b.query(t, "SELECT current_schema()")[0][0].(string)
		waitFor(t, "the second Apply to wait for the commit record's lock", func() bool {
			n := b.query(t, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND strpos(query, $1) > 0`,
				pgx.Identifier{schema, "mr_bucket_commits"}.Sanitize())
			return n[0][0].(int64) == 1
		})
		close(first.release)
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		got := b.query(t, `SELECT count(*), sum(events)::bigint FROM daily_rollup`)
		if want := "[[100 100]]"; fmt.Sprint(got) != want {
			t.Errorf("count, sum(events) = %v, want %s (the first Apply's rows)", got, want)
		}
		if got, want := commits(t, b), "[[c1 1 100 true]]"; got != want {
			t.Errorf("commit records:\ngot  %s\nwant %s", got, want)
		}
	})

	t.Run("FailsMidway", func(t *testing.T) {
		t.Parallel()
		b := prepare(t, rollup)
		boom := errors.New("boom")
		rows := &failingRows{tableRows: tableRows{rows: rollupRows(0, 20000, 1)}, failAt: 15000, err: boom}
		err := b.sink.Apply(t.Context(), rollup, "c1", 0, rows)
		if !errors.Is(err, boom) {
			t.Fatalf("Apply error = %v, want one wrapping %v", err, boom)
		}
		if got := b.query(t, `SELECT count(*) FROM daily_rollup`); fmt.Sprint(got) != "[[0]]" {
			t.Errorf("count = %v, want 0", got)
		}
		if got := commits(t, b); got != "[]" {
			t.Errorf("commit records: %s, want none", got)
		}
	})

	t.Run("CommitReplyLost", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			name    string
			commit  bool // whether the lost COMMIT took effect
			wantErr string
			rows    string
		}{
			{"Committed", true, "", "[[100]]"},
			{"RolledBack", false, "the connection failed during COMMIT, which did not take effect, " +
				"so the bucket was not applied: unexpected EOF", "[[0]]"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				b := prepare(t, rollup)
				sinks.SetPostgresCommitFunc(b.sink, func(ctx context.Context, tx pgx.Tx) error {
					end := tx.Rollback
					if tt.commit {
						end = tx.Commit
					}
					if err := end(ctx); err != nil {
						return err
					}
					return io.ErrUnexpectedEOF
				})
				err := b.sink.Apply(t.Context(), rollup, "c1", 0, &tableRows{rows: rollupRows(0, 100, 1)})
				if tt.wantErr == "" && err != nil {
					t.Fatal(err)
				}
				if tt.wantErr != "" && (!errors.Is(err, io.ErrUnexpectedEOF) || !strings.HasSuffix(err.Error(), tt.wantErr)) {
					t.Fatalf("Apply error:\ngot  %v\nwant one ending %s", err, tt.wantErr)
				}
				if got := b.query(t, `SELECT count(*) FROM daily_rollup`); fmt.Sprint(got) != tt.rows {
					t.Errorf("count = %v, want %s", got, tt.rows)
				}
			})
		}
	})
}

// blockingRows signals started at its first Next and then waits for
// release.
type blockingRows struct {
	rows             tableRows
	started, release chan struct{}
	once             sync.Once
}

func (r *blockingRows) Next() bool {
	r.once.Do(func() {
		close(r.started)
		<-r.release
	})
	return r.rows.Next()
}
func (r *blockingRows) Values() ([]any, error) { return r.rows.Values() }
func (r *blockingRows) Err() error             { return nil }

// failingRows fails in Values at row failAt, or calls hook there.
type failingRows struct {
	tableRows
	failAt int
	err    error
	hook   func()
}

func (r *failingRows) Values() ([]any, error) {
	if r.i-1 == r.failAt {
		if r.hook != nil {
			r.hook()
		} else {
			return nil, r.err
		}
	}
	return r.tableRows.Values()
}

// waitFor polls cond until it holds, failing t after 10 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestOpenPostgres(t *testing.T) {
	t.Parallel()

	// name is the String of a sink on dsn, a postgres:// URL from pgtest
	// with its user, host and options.
	name := func(t *testing.T, dsn string) string {
		t.Helper()
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		return "postgres://" + u.User.Username() + "@" + u.Host + "/postgres?options=" + strings.NewReplacer(" ", "%20", "=", "%3D").Replace(u.Query().Get("options"))
	}

	t.Run("Password", func(t *testing.T) {
		t.Parallel()
		dsn := pgtest.PasswordDSN(t, pgtest.RolePassword)
		sink := openPostgres(t, dsn)
		if got, want := sink.String(), name(t, dsn); got != want {
			t.Errorf("String() = %s, want %s", got, want)
		}
		// A zero RetryBudget means no retries; the CLI's sinks retry.
		if sink.RetryBudget != sinks.DefaultRetryBudget {
			t.Errorf("RetryBudget = %s, want DefaultRetryBudget (%s)", sink.RetryBudget, sinks.DefaultRetryBudget)
		}
	})

	t.Run("WrongPassword", func(t *testing.T) {
		t.Parallel()
		const password = "wrong-pw-7Qx"
		dsn := pgtest.PasswordDSN(t, password)
		began := time.Now()
		_, err := sinks.OpenPostgres(t.Context(), dsn)
		if err == nil {
			t.Fatal("OpenPostgres succeeded with a wrong password")
		}
		for _, want := range []string{"sinks: cannot connect to " + name(t, dsn) + ": ",
			"SQLSTATE 28P01", "(check the user and password of the URL, or PGPASSWORD and ~/.pgpass)"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("OpenPostgres error = %v, want one containing %q", err, want)
			}
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("OpenPostgres error shows the password: %v", err)
		}
		if d := time.Since(began); d > 5*time.Second {
			t.Errorf("OpenPostgres took %s: a wrong password is not worth retrying", d)
		}
	})

	t.Run("BadURL", func(t *testing.T) {
		t.Parallel()
		_, err := sinks.OpenPostgres(t.Context(), "postgres://mr:s3cr3t@localhost:notaport/mr")
		if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.HasPrefix(err.Error(), "sinks: ") {
			t.Errorf("OpenPostgres error = %v, want one without the password", err)
		}
	})

	// A refused connection is reported at once, not retried: it is as
	// likely a wrong port as a server restarting.
	t.Run("Unreachable", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // connections to addr are now refused
		began := time.Now()
		_, err = sinks.OpenPostgres(t.Context(), "postgres://mr:s3cr3t@"+addr+"/mr?sslmode=disable")
		if err == nil || strings.Contains(err.Error(), "s3cr3t") ||
			!strings.HasPrefix(err.Error(), "sinks: cannot connect to postgres://mr@"+addr+"/mr: ") ||
			!strings.HasSuffix(err.Error(), "connection refused (check that the server is up, and the host and port of the URL)") {
			t.Errorf("OpenPostgres error = %v, want a refused connection with a hint, without the password", err)
		}
		if d := time.Since(began); d > 5*time.Second {
			t.Errorf("OpenPostgres took %s: opening does not retry a refused connection", d)
		}
	})

	t.Run("Open", func(t *testing.T) {
		t.Parallel()
		for _, scheme := range []string{"postgres", "postgresql"} {
			dsn := pgtest.DSN(t)
			_, rest, _ := strings.Cut(dsn, "://")
			sink, err := sinks.Open(t.Context(), scheme+"://"+rest)
			if err != nil {
				t.Fatal(err)
			}
			sink.(io.Closer).Close()
			if _, ok := sink.(*sinks.Postgres); !ok {
				t.Errorf("Open(%s://…) = %T, want *sinks.Postgres", scheme, sink)
			}
		}
	})
}

// The source and the sink on one database have one name, however the
// database is written (the run id hashes both); another schema is another
// name.
func TestPostgres_String(t *testing.T) {
	t.Parallel()
	dsn := pgtest.PasswordDSN(t, pgtest.RolePassword)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	kv := fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=postgres sslmode=disable options='%s'",
		u.Hostname(), u.Port(), pgtest.PasswordRole, pgtest.RolePassword, u.Query().Get("options"))
	var want string
	for _, form := range []string{dsn, dsn + "&pool_max_conns=3&application_name=other", kv} {
		src, err := sources.OpenPostgres(t.Context(), form)
		if err != nil {
			t.Fatal(err)
		}
		src.Close()
		sink := openPostgres(t, form)
		if want == "" {
			want = sink.String()
		}
		if src.String() != want || sink.String() != want {
			t.Errorf("%s: source %s, sink %s; want both %s", pg.Redact(form), src, sink, want)
		}
	}
	if strings.Contains(want, pgtest.RolePassword) {
		t.Errorf("name %s shows the password", want)
	}
	if other := openPostgres(t, pgtest.PasswordDSN(t, pgtest.RolePassword)).String(); other == want {
		t.Errorf("another schema has the same name %s", other)
	}
}
