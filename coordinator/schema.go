package coordinator

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// mrSchema creates mr's own tables beside River's, in the schema River's
// are in (the search path's first). It is idempotent, so that Migrate can
// run again, and additive: a later version adds tables and columns with
// IF NOT EXISTS, so that workers of two versions can share a database
// while they are rolled out.
//
//	mr_runs      one row per submitted run: the command line workers
//	             rebuild it from, the plan's Commit that its tasks carry,
//	             and its phase (map, reduce, finish, done), which the
//	             barrier commits advance.
//	mr_state     the Store's records, keyed as DirStore names its files:
//	             plan, checkpoint/0003, done/0007, replay; each sealed by
//	             the XXH64 of its body, checked on load.
//	mr_attempts  one row per attempt that committed a task or was fenced.
//	mr_workers   one row per worker process, with when it was last seen.
const mrSchema = `
CREATE TABLE IF NOT EXISTS mr_runs (
	run          text PRIMARY KEY,
	command      jsonb NOT NULL,
	commit       text NOT NULL,
	partitions   int NOT NULL,
	buckets      int NOT NULL,
	phase        text NOT NULL,
	submitted_at timestamptz NOT NULL DEFAULT now(),
	finished_at  timestamptz
);
CREATE TABLE IF NOT EXISTS mr_state (
	run        text NOT NULL,
	key        text NOT NULL,
	commit     text NOT NULL,
	done       boolean NOT NULL DEFAULT false,
	body       bytea NOT NULL,
	sum        bigint NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (run, key)
);
CREATE TABLE IF NOT EXISTS mr_attempts (
	run     text NOT NULL,
	task    text NOT NULL,
	job_id  bigint NOT NULL,
	attempt int NOT NULL,
	worker  text NOT NULL,
	outcome text NOT NULL,
	detail  text NOT NULL DEFAULT '',
	at      timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (job_id, attempt, outcome)
);
CREATE TABLE IF NOT EXISTS mr_workers (
	id         text PRIMARY KEY,
	host       text NOT NULL,
	pid        int NOT NULL,
	started_at timestamptz NOT NULL DEFAULT now(),
	seen_at    timestamptz NOT NULL DEFAULT now(),
	stopped_at timestamptz
);
`

// mrTables are the tables of mrSchema, for the check at start.
var mrTables = []string{"mr_runs", "mr_state", "mr_attempts", "mr_workers"}

// Migrate brings the coordinator database's schema up to date: River's
// migrations (rivermigrate), then mr's tables. It returns the River
// versions it applied, none when there were none to apply.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return nil, err
	}
	res, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return nil, fmt.Errorf("apply River's migrations: %w", err)
	}
	var applied []int
	for _, v := range res.Versions {
		applied = append(applied, v.Version)
	}
	if _, err := pool.Exec(ctx, mrSchema); err != nil {
		return applied, fmt.Errorf("create mr's tables: %w", err)
	}
	return applied, nil
}

// ErrNotMigrated reports a coordinator database without the tables that
// workers need.
var ErrNotMigrated = errors.New("the coordinator database is not migrated")

// CheckSchema returns an error wrapping ErrNotMigrated, saying what is
// missing, unless River's migrations and mr's tables are all in place.
func CheckSchema(ctx context.Context, pool *pgxpool.Pool) error {
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return err
	}
	res, err := m.Validate(ctx, nil)
	if err != nil {
		return fmt.Errorf("check River's migrations: %w", err)
	}
	if !res.OK {
		return fmt.Errorf("%w: %v", ErrNotMigrated, res.Messages)
	}
	var missing []string
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, t := range mrTables {
			var found bool
			if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", t).Scan(&found); err != nil {
				return err
			}
			if !found {
				missing = append(missing, t)
			}
		}
		return nil
	})
	switch {
	case err != nil:
		return err
	case len(missing) > 0:
		return fmt.Errorf("%w: tables %v are missing", ErrNotMigrated, missing)
	}
	return nil
}
