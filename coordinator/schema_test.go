package coordinator

import (
	"errors"
	"strings"
	"testing"

	"github.com/mrengine/mr/internal/pgtest"
)

// TestOpen_NotMigrated checks that a worker or mr run pointed at a
// coordinator database without its tables is told to run mr migrate,
// instead of failing later on a missing table mid-task.
func TestOpen_NotMigrated(t *testing.T) {
	t.Parallel()

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		c, err := Open(t.Context(), pgtest.DSN(t))
		if err == nil {
			c.Close()
			t.Fatal("Open of an empty schema succeeded; want an error wrapping ErrNotMigrated")
		}
		if !errors.Is(err, ErrNotMigrated) || !strings.Contains(err.Error(), "run mr migrate") {
			t.Errorf("Open of an empty schema = %v; want an error wrapping ErrNotMigrated that says to run mr migrate", err)
		}
	})

	// River's migrations applied but one of mr's tables missing (a
	// database migrated by hand, or half way): the error names the table.
	t.Run("MissingTable", func(t *testing.T) {
		t.Parallel()
		dsn := pgtest.DSN(t)
		pool := pgtest.PoolFor(t, dsn)
		if _, err := Migrate(t.Context(), pool); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(t.Context(), "DROP TABLE mr_workers"); err != nil {
			t.Fatal(err)
		}
		err := CheckSchema(t.Context(), pool)
		if !errors.Is(err, ErrNotMigrated) || !strings.Contains(err.Error(), "mr_workers") {
			t.Errorf("checkSchema without mr_workers = %v; want an error wrapping ErrNotMigrated that names mr_workers", err)
		}
		c, err := Open(t.Context(), dsn)
		if err == nil {
			c.Close()
			t.Fatal("Open without mr_workers succeeded")
		}
		if !errors.Is(err, ErrNotMigrated) || !strings.Contains(err.Error(), "mr_workers") || !strings.Contains(err.Error(), "run mr migrate") {
			t.Errorf("Open without mr_workers = %v; want ErrNotMigrated naming mr_workers and saying to run mr migrate", err)
		}
	})
}

// TestMigrate checks that Migrate readies a database for Open and can run
// again, as mr migrate does at every deploy: the second run applies
// nothing and breaks nothing.
func TestMigrate(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	pool := pgtest.PoolFor(t, dsn)
	applied, err := Migrate(t.Context(), pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) == 0 {
		t.Error("the first Migrate applied no River migration")
	}
	// State written between the two must survive the second.
	if _, err := pool.Exec(t.Context(), "INSERT INTO mr_workers (id, host, pid) VALUES ('w1', 'h', 1)"); err != nil {
		t.Fatal(err)
	}
	again, err := Migrate(t.Context(), pool)
	if err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if len(again) != 0 {
		t.Errorf("second Migrate applied River versions %v; want none", again)
	}
	var n int
	if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM mr_workers").Scan(&n); err != nil || n != 1 {
		t.Errorf("mr_workers after the second Migrate has %d rows (%v); want 1", n, err)
	}
	c, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open after Migrate: %v", err)
	}
	c.Close()
}
