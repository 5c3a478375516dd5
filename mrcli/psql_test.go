package mrcli

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/internal/pgtest"
)

// TestRun_PsqlConventions checks that mr finds PostgreSQL as psql does:
// without --source from the PG* environment variables, and from a libpq
// key=value string, printed as host and database without the password.
func TestRun_PsqlConventions(t *testing.T) {
	t.Parallel()

	// seed writes 2,000 events into the schema of dsn.
	seed := func(t *testing.T, dsn string) {
		t.Helper()
		if err := eventgen.SeedPostgres(context.Background(), pgtest.PoolFor(t, dsn), demoEvents(2000), true); err != nil {
			t.Fatal(err)
		}
	}
	// wrong counts the groups of daily_rollup that differ from the truth.
	wrong := func(t *testing.T, dsn string) int {
		t.Helper()
		var n int
		err := pgtest.PoolFor(t, dsn).QueryRow(context.Background(), `SELECT count(*) FROM (
			(SELECT * FROM daily_rollup EXCEPT `+eventgen.PostgresTruth+`) UNION ALL
			(`+eventgen.PostgresTruth+` EXCEPT SELECT * FROM daily_rollup)) d`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("Environment", func(t *testing.T) {
		t.Parallel()
		dsn := pgtest.DSN(t)
		seed(t, dsn)
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		// A child process, so that the variables are its own.
		env := []string{"PGHOST=" + cfg.Host, fmt.Sprintf("PGPORT=%d", cfg.Port), "PGDATABASE=" + cfg.Database,
			"PGUSER=" + cfg.User, "PGPASSWORD=" + cfg.Password, "PGOPTIONS=" + cfg.RuntimeParams["options"], "PGSERVICE="}
		out, err := mrCommand(t, env, "run", "daily_rollup", "--workdir", t.TempDir(), "--partitions", "2", "--buckets", "2").Output()
		if err != nil {
			t.Fatalf("mr run without --source: %v\n%s", err, out)
		}
		source := fmt.Sprintf("source  postgres://%s@", cfg.User)
		if !strings.Contains(string(out), source) || !strings.Contains(string(out), "/"+cfg.Database) || !strings.Contains(string(out), ": 2000/2000 items") {
			t.Errorf("stdout does not show the environment's database (%s…/%s) and 2000 rows:\n%s", source, cfg.Database, out)
		}
		if n := wrong(t, dsn); n != 0 {
			t.Errorf("daily_rollup has %d groups that differ from PostgreSQL's", n)
		}
	})

	t.Run("KeyValue", func(t *testing.T) {
		t.Parallel()
		password := pgtest.RolePassword
		dsn := pgtest.PasswordDSN(t, password)
		seed(t, dsn)
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		kv := fmt.Sprintf("host=%s port=%d dbname=%s user=%s password=%s sslmode=disable options='%s'",
			cfg.Host, cfg.Port, cfg.Database, cfg.User, password, cfg.RuntimeParams["options"])
		r := runMR(t, "run", "daily_rollup", "--source", kv, "--workdir", t.TempDir(), "--partitions", "2", "--buckets", "2")
		if r.code != ExitOK {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		source := fmt.Sprintf("source  postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
		if !strings.Contains(r.stdout, source) {
			t.Errorf("stdout does not name the source as %q:\n%s", source, r.stdout)
		}
		if strings.Contains(r.stdout+r.stderr, password) {
			t.Errorf("the password is printed:\n%s\n%s", r.stdout, r.stderr)
		}
		if n := wrong(t, dsn); n != 0 {
			t.Errorf("daily_rollup has %d groups that differ from PostgreSQL's", n)
		}
	})
}
