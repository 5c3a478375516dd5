package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// sqlState returns the SQLSTATE of err, or "" if it carries none.
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// schemaExists asks the cluster, not the test's own connections.
func schemaExists(t *testing.T, name string) bool {
	t.Helper()
	var exists bool
	err := get(t).pool.QueryRow(t.Context(),
		"SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", name).Scan(&exists)
	if err != nil {
		t.Fatalf("schema %s exists: %v", name, err)
	}
	return exists
}

func TestSchema(t *testing.T) {
	t.Parallel()

	t.Run("SearchPathIsTheSchema", func(t *testing.T) {
		t.Parallel()
		schema, dsn := Schema(t)
		if want := regexp.MustCompile(`^pgtest_[0-9a-f]{8}_[0-9]+$`); !want.MatchString(schema) {
			t.Fatalf("schema %q does not match %s", schema, want)
		}
		pool := PoolFor(t, dsn)
		ctx := t.Context()
		var current, path string
		if err := pool.QueryRow(ctx, "SELECT current_schema(), current_setting('search_path')").Scan(&current, &path); err != nil {
			t.Fatal(err)
		}
		if current != schema || path != schema {
			t.Fatalf("current_schema %q, search_path %q; want both %q", current, path, schema)
		}
		if _, err := pool.Exec(ctx, "CREATE TABLE events (id bigint PRIMARY KEY)"); err != nil {
			t.Fatal(err)
		}
		var where string
		if err := pool.QueryRow(ctx, "SELECT table_schema FROM information_schema.tables WHERE table_name = 'events'").Scan(&where); err != nil {
			t.Fatal(err)
		}
		if where != schema {
			t.Fatalf("unqualified table landed in %q, want %q", where, schema)
		}
	})

	t.Run("Isolated", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		a, b := Pool(t), Pool(t)
		if _, err := a.Exec(ctx, "CREATE TABLE items (n int); INSERT INTO items VALUES (1), (2)"); err != nil {
			t.Fatal(err)
		}
		_, err := b.Exec(ctx, "SELECT * FROM items")
		if got := sqlState(err); got != "42P01" {
			t.Fatalf("other schema's table from b: err %v (SQLSTATE %q), want undefined_table 42P01", err, got)
		}
		if _, err := b.Exec(ctx, "CREATE TABLE items (n int)"); err != nil {
			t.Fatalf("same table name in b: %v", err)
		}
		var na, nb int
		if err := a.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&na); err != nil {
			t.Fatal(err)
		}
		if err := b.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&nb); err != nil {
			t.Fatal(err)
		}
		if na != 2 || nb != 0 {
			t.Fatalf("rows in a %d, b %d; want 2 and 0", na, nb)
		}
	})

	t.Run("DroppedInCleanup", func(t *testing.T) {
		t.Parallel()
		get(t) // skip here, not only in Inner, without PostgreSQL
		var schema string
		t.Run("Inner", func(t *testing.T) {
			var dsn string
			schema, dsn = Schema(t)
			if _, err := PoolFor(t, dsn).Exec(t.Context(), "CREATE TABLE kept (n int)"); err != nil {
				t.Fatal(err)
			}
		})
		if schemaExists(t, schema) {
			t.Fatalf("schema %s outlived its test", schema)
		}
	})
}

func TestTx(t *testing.T) {
	t.Parallel()

	t.Run("RollsBack", func(t *testing.T) {
		t.Parallel()
		get(t) // skip here, not only in Inner, without PostgreSQL
		var schema string
		t.Run("Inner", func(t *testing.T) {
			tx := Tx(t)
			ctx := t.Context()
			if _, err := tx.Exec(ctx, "CREATE TABLE events (id bigint); INSERT INTO events VALUES (1)"); err != nil {
				t.Fatal(err)
			}
			if err := tx.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(schema, "pgtest_"+runToken+"_") {
				t.Fatalf("Tx's schema %q is not this run's", schema)
			}
		})
		if schema == "" {
			t.Fatal("inner test did not run")
		}
		if schemaExists(t, schema) {
			t.Fatalf("schema %s, created in the Tx, survived the rollback", schema)
		}
	})

	t.Run("Separate", func(t *testing.T) {
		t.Parallel()
		a, b := Tx(t), Tx(t)
		ctx := t.Context()
		if _, err := a.Exec(ctx, "CREATE TABLE only_a (n int)"); err != nil {
			t.Fatal(err)
		}
		_, err := b.Exec(ctx, "SELECT * FROM only_a")
		if got := sqlState(err); got != "42P01" {
			t.Fatalf("other Tx's table: err %v (SQLSTATE %q), want 42P01", err, got)
		}
	})
}

func TestPasswordDSN(t *testing.T) {
	t.Parallel()

	t.Run("RightPassword", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		conn, err := pgx.Connect(ctx, PasswordDSN(t, RolePassword))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "CREATE TABLE mine (n int)"); err != nil {
			t.Fatalf("create a table in the role's own schema: %v", err)
		}
		var user string
		if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil {
			t.Fatal(err)
		}
		if user != PasswordRole {
			t.Fatalf("connected as %q, want %q", user, PasswordRole)
		}
	})

	t.Run("WrongPassword", func(t *testing.T) {
		t.Parallel()
		dsn := PasswordDSN(t, "wrong")
		conn, err := pgx.Connect(t.Context(), dsn)
		if err == nil {
			conn.Close(t.Context())
			t.Fatal("connected with a wrong password")
		}
		if got := sqlState(err); got != "28P01" {
			t.Fatalf("err %v (SQLSTATE %q), want invalid_password 28P01", err, got)
		}
		if strings.Contains(err.Error(), "wrong") {
			t.Fatalf("error shows the password: %v", err)
		}
	})
}

// TestRestart does not call t.Parallel: it breaks every connection of the
// binary, so it runs while the parallel tests wait.
func TestRestart(t *testing.T) {
	pool := Pool(t)
	ctx := t.Context()
	startTime := func() time.Time {
		t.Helper()
		var ts time.Time
		if err := pool.QueryRow(ctx, "SELECT pg_postmaster_start_time()").Scan(&ts); err != nil {
			t.Fatal(err)
		}
		return ts
	}
	before := startTime()

	began := time.Now()
	Restart(t)
	t.Logf("restart took %s", time.Since(began).Round(time.Millisecond))

	// The pool's idle connections are dead; it must recover by itself.
	var after time.Time
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := pool.QueryRow(ctx, "SELECT pg_postmaster_start_time()").Scan(&after)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool did not recover after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !after.After(before) {
		t.Fatalf("postmaster start time %s, before the restart %s: not restarted", after, before)
	}
	// The shared pool behind Tx was reset: its first use works.
	if _, err := Tx(t).Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("Tx after restart: %v", err)
	}
}

func TestDropStaleSchemas(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	admin := AdminDSN(t)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	holder, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)

	// A dead run, a live run (its lock held by another session) and a
	// look-alike without pgtest's comment.
	dead, live := newRunToken(), newRunToken()
	liveKey, _ := tokenKey(live)
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_lock($1, $2)", lockClass, liveKey); err != nil {
		t.Fatal(err)
	}
	deadSchema, liveSchema, foreign := "pgtest_"+dead+"_1", "pgtest_"+live+"_1", "pgtest_"+dead+"_2"
	for _, s := range []struct{ name, token string }{{deadSchema, dead}, {liveSchema, live}, {foreign, ""}} {
		sql := "CREATE SCHEMA " + s.name + "; CREATE TABLE " + s.name + ".t (n int)"
		if s.token != "" {
			sql += "; COMMENT ON SCHEMA " + s.name + " IS '" + schemaComment + s.token + "'"
		}
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		for _, s := range []string{deadSchema, liveSchema, foreign} {
			_, _ = get(t).pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+s+" CASCADE")
		}
	})

	if _, err := dropStaleSchemas(ctx, conn, runToken); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{deadSchema: false, liveSchema: true, foreign: true} {
		if got := schemaExists(t, name); got != want {
			t.Errorf("schema %s exists %v, want %v", name, got, want)
		}
	}
}

func TestWithSearchPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ dsn, want string }{
		{"postgres://u@h:5/db?sslmode=disable", "postgres://u@h:5/db?options=-c%20search_path%3Ds&sslmode=disable"},
		{"postgresql://u@h/db?options=-c%20work_mem%3D1MB", "postgresql://u@h/db?options=-c%20work_mem%3D1MB%20-c%20search_path%3Ds"},
		{"host=h user=u", "host=h user=u options='-c search_path=s'"},
	} {
		if got := withSearchPath(tc.dsn, "s"); got != tc.want {
			t.Errorf("withSearchPath(%q) = %q, want %q", tc.dsn, got, tc.want)
		}
		if _, err := pgx.ParseConfig(withSearchPath(tc.dsn, "s")); err != nil {
			t.Errorf("%q: %v", tc.dsn, err)
		}
	}
	cfg, err := pgx.ParseConfig(withSearchPath("postgres://u@h/db", "s"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.RuntimeParams["options"]; got != "-c search_path=s" {
		t.Fatalf("options %q", got)
	}
}

func TestPackageName(t *testing.T) {
	t.Parallel()
	for arg0, want := range map[string]string{
		"/tmp/go-build1/b001/sources.test": "sources",
		"pgtest.test.exe":                  "pgtest",
		"./My-Pkg.test":                    "my_pkg",
		"2fast.test":                       "t2fast",
		"":                                 "t_",
	} {
		if got := packageName(arg0); got != want {
			t.Errorf("packageName(%q) = %q, want %q", arg0, got, want)
		}
	}
}

// fakeTB records what unavailable does instead of doing it.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Skip(args ...any)  { f.skipped = fmt.Sprint(args...) }
func (f *fakeTB) Fatal(args ...any) { f.failed = fmt.Sprint(args...) }

// TestUnavailable sets CI, so it cannot be parallel.
func TestUnavailable(t *testing.T) {
	cause := errors.New("found no initdb and postgres; looked in /nowhere")
	t.Setenv(EnvDSN, "")
	for _, ci := range []string{"true", ""} {
		t.Setenv("CI", ci)
		f := &fakeTB{TB: t}
		unavailable(f, cause)
		got, other := f.skipped, f.failed
		if ci == "true" {
			got, other = f.failed, f.skipped
		}
		if got == "" || other != "" {
			t.Fatalf("CI=%q: skipped %q, failed %q", ci, f.skipped, f.failed)
		}
		for _, want := range []string{"/nowhere", EnvDSN, "install"} {
			if !strings.Contains(got, want) {
				t.Errorf("CI=%q: message %q lacks %q", ci, got, want)
			}
		}
	}
}

func TestFindBin(t *testing.T) {
	t.Setenv(EnvPGBin, t.TempDir())
	_, err := findBin()
	if err == nil || !strings.Contains(err.Error(), EnvPGBin) {
		t.Fatalf("findBin with an empty %s: %v", EnvPGBin, err)
	}
	if os.Getenv(EnvDSN) == "" {
		t.Setenv(EnvPGBin, "")
		if _, err := findBin(); err != nil {
			t.Logf("no server binaries here: %v", err)
		}
	}
}
