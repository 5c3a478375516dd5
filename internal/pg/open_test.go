package pg_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// These tests connect with pgtest.AdminDSN and never ask pgtest for a
// schema: pgtest names schemas after the test binary, and pg.test would
// give pg_…, a prefix PostgreSQL reserves for system schemas.

// adminURL returns pgtest's AdminDSN as a URL; the tests skip unless it
// is one.
func adminURL(t *testing.T) *url.URL {
	t.Helper()
	u, err := url.Parse(pgtest.AdminDSN(t))
	if err != nil || u.Scheme == "" || u.Port() == "" {
		t.Skipf("needs pgtest's postgres:// URL with a TCP host, got %v", err)
	}
	return u
}

// open opens dsn, closed in t.Cleanup.
func open(t *testing.T, dsn string) *pg.DB {
	t.Helper()
	db, err := pg.Open(t.Context(), dsn, pg.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func TestOpen(t *testing.T) {
	t.Parallel()

	// One database written four ways is one name; another schema is
	// another name.
	t.Run("Name", func(t *testing.T) {
		t.Parallel()
		u := adminURL(t)
		user := u.User.Username()
		u.User = url.UserPassword(user, "any-Pw") // pgtest's cluster trusts every role but PasswordRole
		q := u.Query()
		q.Set("options", "-c search_path=one")
		u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
		dsn := u.String()
		kv := "host=" + u.Hostname() + " port=" + u.Port() + " user=" + user + " password=any-Pw" +
			" dbname=postgres sslmode=disable options='-c search_path=one'"
		want := open(t, dsn).String()
		for _, form := range []string{dsn + "&pool_max_conns=3&application_name=pg_test", kv, "postgresql" + strings.TrimPrefix(dsn, "postgres")} {
			if got := open(t, form).String(); got != want {
				t.Errorf("%s names %s, want %s", pg.Redact(form), got, want)
			}
		}
		if prefix := "postgres://" + user + "@" + u.Host + "/postgres?options="; !strings.HasPrefix(want, prefix) || strings.Contains(want, "any-Pw") {
			t.Errorf("name %s, want one starting %s", want, prefix)
		}
		if got := open(t, strings.Replace(dsn, "%3Done", "%3Dtwo", 1)).String(); got == want {
			t.Errorf("another schema has the same name %s", got)
		}
	})

	// mr until the run is known, then mr/<run id> on every connection,
	// those opened before included; a name the DSN sets wins.
	t.Run("ApplicationName", func(t *testing.T) {
		t.Parallel()
		show := func(db *pg.DB) string {
			t.Helper()
			var name string
			if err := db.Pool.QueryRow(t.Context(), "SHOW application_name").Scan(&name); err != nil {
				t.Fatal(err)
			}
			return name
		}
		db := open(t, adminURL(t).String())
		if got := show(db); got != "mr" {
			t.Errorf("application_name = %q, want mr", got)
		}
		// Hold both connections of the pool, so that both take the name.
		held := make([]*pgxpool.Conn, 2)
		for i := range held {
			c, err := db.Pool.Acquire(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			held[i] = c
		}
		for _, c := range held {
			c.Release()
		}
		db.SetApplicationName("mr/daily_rollup-5e0c1a7f")
		for i := range 4 {
			if got := show(db); got != "mr/daily_rollup-5e0c1a7f" {
				t.Errorf("query %d: application_name = %q, want mr/daily_rollup-5e0c1a7f", i, got)
			}
		}
		long := "mr/" + strings.Repeat("é", 40)
		db.SetApplicationName(long)
		if got, want := show(db), "mr/"+strings.Repeat("?", 60); got != want {
			t.Errorf("application_name = %q, want %q", got, want)
		}

		u := adminURL(t)
		q := u.Query()
		q.Set("application_name", "etl")
		u.RawQuery = q.Encode()
		mine := open(t, u.String())
		mine.SetApplicationName("mr/r")
		if got := show(mine); got != "etl" {
			t.Errorf("with application_name=etl in the DSN: application_name = %q, want etl", got)
		}
	})

	// Every refusal names the database, tells what to check, holds no
	// password, and comes at once.
	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		if os.Getenv(pgtest.EnvDSN) != "" {
			t.Skip("needs pgtest's own cluster, whose pg_hba.conf asks " + pgtest.PasswordRole + " for a password")
		}
		const password = "Wr0ng-pa55word"
		u := adminURL(t)
		u.User = url.UserPassword(pgtest.PasswordRole, password)
		wrong := u.String()
		u.User = url.User("postgres")
		u.Path = "/no_such_db"
		for _, tt := range []struct{ dsn, code, hint string }{
			{wrong, "28P01", "(check the user and password of the URL, or PGPASSWORD and ~/.pgpass)"},
			{u.String(), "3D000", "(check the database name of the URL)"},
		} {
			began := time.Now()
			_, err := pg.Open(t.Context(), tt.dsn, pg.Options{})
			if err == nil || !strings.HasPrefix(err.Error(), "cannot connect to postgres://") || !strings.Contains(err.Error(), tt.code) ||
				!strings.HasSuffix(err.Error(), tt.hint) || strings.Contains(err.Error(), password) {
				t.Errorf("Open(%s): %v", pg.Redact(tt.dsn), err)
			}
			if d := time.Since(began); d > 5*time.Second {
				t.Errorf("Open(%s) took %s to fail", pg.Redact(tt.dsn), d)
			}
		}
	})
}

// A server that keeps refusing gives one *UnavailableError; a ctx that
// ends gives its cause.
func TestDB_Retry(t *testing.T) {
	t.Parallel()
	db := open(t, adminURL(t).String())
	refused := func(context.Context) error { return os.NewSyscallError("connect", syscall.ECONNREFUSED) }

	began := time.Now()
	err := db.Retry(t.Context(), 300*time.Millisecond, refused)
	var ue *pg.UnavailableError
	if !errors.As(err, &ue) || ue.Attempts < 2 || ue.Waited < 300*time.Millisecond || !errors.Is(err, syscall.ECONNREFUSED) ||
		ue.Database != "postgres" || !strings.HasPrefix(ue.Server, "127.0.0.1:") {
		t.Fatalf("Retry: %#v", err)
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("Retry took %s with a budget of 300ms", d)
	}
	for _, want := range []string{"PostgreSQL at " + ue.Server + ` (database "postgres") still unreachable after `,
		"connection refused; the run can be resumed: run the same command again once the server is back"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q\ndoes not say %q", err, want)
		}
	}

	for _, budget := range []time.Duration{0, -1} {
		if err := db.Retry(t.Context(), budget, refused); !errors.As(err, &ue) || ue.Attempts != 1 {
			t.Errorf("Retry with a budget of %s: %v, want one attempt", budget, err)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err = db.Retry(ctx, time.Hour, refused)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &ue) {
		t.Errorf("Retry until ctx ends: %v", err)
	}

	calls := 0
	err = db.Retry(t.Context(), 0, func(ctx context.Context) error {
		calls++
		return db.Pool.Ping(ctx)
	})
	if err != nil || calls != 1 {
		t.Errorf("Retry of a ping: %v after %d calls", err, calls)
	}
}
