package sinks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mrengine/mr/internal/crashpoint"
	"github.com/mrengine/mr/mapreduce"
)

var _ mapreduce.Replacer = (*Postgres)(nil)

// Stage returns the staging table of run for t (see mapreduce.Replacer),
// in t's schema, named by stageName. A new one is
//
//	CREATE TABLE stage (LIKE t INCLUDING ALL EXCLUDING INDEXES)
//
// which copies t's columns with their defaults, NOT NULL and CHECK
// constraints, identity and generated columns, comments and storage
// settings. Swap gives it t's indexes (the key among them, with their
// comments) once it is filled (see buildIndexes). It does not copy what
// LIKE leaves out: grants, the owner (the new table belongs to the role mr
// connects as), row-level security policies, triggers, foreign keys,
// publication memberships and partitioning. Re-apply those after a run if
// t has them.
func (s *Postgres) Stage(ctx context.Context, t mapreduce.OutputTable, run, commit string) (mapreduce.OutputTable, error) {
	fail := func(err error) error {
		return s.db.Scrub(fmt.Errorf("sinks: stage table %q for commit %q in %s: %w", t.Name, commit, s, err))
	}
	if err := checkTable(t); err != nil {
		return t, fail(err)
	}
	n, err := s.names(ctx, t)
	if err != nil {
		return t, fail(err)
	}
	stage := stageName(n.schema, n.table, run)
	// Qualified only where t is: an unqualified name resolves in the same
	// schema (see names), and a current schema whose name holds a dot
	// could not be written as schema.table.
	staged := t
	staged.Name = stage
	if strings.Contains(t.Name, ".") {
		staged.Name = n.schema + "." + stage
	}
	var swapped bool
	err = s.retry(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", prepareLockClass, n.schema); err != nil {
				return err
			}
			marks, err := postgresMarks(ctx, tx, n, commit)
			if err != nil {
				return err
			}
			out, err := relation(ctx, tx, n.schema, n.table)
			if err != nil {
				return err
			}
			oid, err := relation(ctx, tx, n.schema, stage)
			if err != nil {
				return err
			}
			// Each record counts only for the table it names (see
			// prepareLedger): a swap whose output table was dropped
			// since is built again, as is a staging table that was
			// dropped during the run, with the buckets lost with it.
			swapped = out != 0 && marks[swapBucket] == out
			if swapped {
				return nil
			}
			if err := s.claimTable(ctx, tx, n, run, commit); err != nil {
				return err
			}
			if oid != 0 && marks[stageBucket] == oid {
				return nil // a resumed run
			}
			qstage := pgx.Identifier{n.schema, stage}.Sanitize()
			if oid != 0 { // an earlier plan's, or one that is not the one recorded
				if _, err := tx.Exec(ctx, "DROP TABLE "+qstage); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (LIKE %s INCLUDING ALL EXCLUDING INDEXES)", qstage, n.out.Sanitize())); err != nil {
				return err
			}
			// LIKE copies the comments of columns and constraints (Swap
			// those of indexes), not the table's own.
			var comment *string
			err = tx.QueryRow(ctx, `SELECT format('COMMENT ON TABLE %s IS %L', $1::text, d) FROM obj_description($2::regclass, 'pg_class') d
				WHERE d IS NOT NULL`, qstage, n.out.Sanitize()).Scan(&comment)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if comment != nil {
				if _, err := tx.Exec(ctx, *comment); err != nil {
					return err
				}
			}
			if oid, err = relation(ctx, tx, n.schema, stage); err != nil {
				return err
			}
			return postgresMark(ctx, tx, n, commit, stageBucket, oid)
		})
	})
	if err != nil {
		return t, fail(err)
	}
	if swapped {
		return t, nil
	}
	s.staged.Store(staged.Name, commit)
	return staged, nil
}

// Swap replaces t with the staging table of run (see mapreduce.Replacer).
// It first builds t's indexes on the staging table (see buildIndexes), in
// a transaction of its own that locks the staging table only, so that
// t's readers and the schema's other runs do not wait for the build. Then,
// in one transaction, it records the swap, builds any index that t gained
// since, analyzes the staging table (so that readers' first queries on it
// get good plans), drops t, renames the staging table to t and gives its
// indexes t's names and comments (PostgreSQL named them after the staging
// table). The old table is locked (ACCESS EXCLUSIVE) from the DROP to the
// COMMIT only: queries already reading it finish first, and queries that
// arrive meanwhile wait and then read the new table. A view or materialized view
// that depends on t stops the swap with an error naming it, since
// PostgreSQL cannot drop a table that a view uses; so does any other
// dependent object, such as a foreign key of another table.
func (s *Postgres) Swap(ctx context.Context, t mapreduce.OutputTable, run, commit string) error {
	fail := func(err error) error {
		return s.db.Scrub(fmt.Errorf("sinks: replace table %q with the output of commit %q in %s: %w", t.Name, commit, s, err))
	}
	if err := checkTable(t); err != nil {
		return fail(err)
	}
	n, err := s.names(ctx, t)
	if err != nil {
		return fail(err)
	}
	err = s.retry(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			return s.indexStage(ctx, tx, t, n, run, commit)
		})
	})
	if err != nil {
		return fail(err)
	}
	// A retry after a COMMIT whose reply was lost finds the swap recorded.
	err = s.retry(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			return s.swapOnce(ctx, tx, t, n, run, commit)
		})
	})
	if err != nil {
		return fail(err)
	}
	return nil
}

// indexStage builds t's indexes on the staging table of run, unless the
// swap is done already or the staging table is not the one of commit,
// which swapOnce reports.
func (s *Postgres) indexStage(ctx context.Context, tx pgx.Tx, t mapreduce.OutputTable, n names, run, commit string) error {
	stage := stageName(n.schema, n.table, run)
	if err := lockIndexes(ctx, tx, n, stage); err != nil {
		return err
	}
	marks, old, swapped, err := swapState(ctx, tx, n, commit)
	if err != nil || swapped {
		return err
	}
	staged, err := relation(ctx, tx, n.schema, stage)
	if err != nil || staged == 0 || staged != marks[stageBucket] {
		return err
	}
	_, err = buildIndexes(ctx, tx, t, old, staged, pgx.Identifier{n.schema, stage}.Sanitize())
	return err
}

// swapState returns the records of commit's steps (see postgresMarks)
// and the oid of the output table (0 if there is none), and whether it is
// the table that commit swapped in.
func swapState(ctx context.Context, tx pgx.Tx, n names, commit string) (marks map[int]uint32, old uint32, swapped bool, err error) {
	if marks, err = postgresMarks(ctx, tx, n, commit); err != nil {
		return nil, 0, false, err
	}
	if old, err = relation(ctx, tx, n.schema, n.table); err != nil {
		return nil, 0, false, err
	}
	return marks, old, old != 0 && marks[swapBucket] == old, nil
}

// lockIndexes takes the lock under which the indexes of the staging table
// stage are built, until tx ends.
func lockIndexes(ctx context.Context, tx pgx.Tx, n names, stage string) error {
	_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", indexLockClass, n.schema+"."+stage)
	return err
}

func (s *Postgres) swapOnce(ctx context.Context, tx pgx.Tx, t mapreduce.OutputTable, n names, run, commit string) error {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", prepareLockClass, n.schema); err != nil {
		return err
	}
	marks, old, swapped, err := swapState(ctx, tx, n, commit)
	if err != nil || swapped {
		return err
	}
	if err := s.claimTable(ctx, tx, n, run, commit); err != nil {
		return err
	}
	stage := stageName(n.schema, n.table, run)
	staged, err := relation(ctx, tx, n.schema, stage)
	if err != nil {
		return err
	}
	if staged == 0 || staged != marks[stageBucket] {
		return fmt.Errorf("the staging table %q of this run was dropped during the run, and the buckets applied to it with it: "+
			"run the same command again: it builds the table anew and applies them again", stage)
	}
	qstage := pgx.Identifier{n.schema, stage}.Sanitize()
	if err := lockIndexes(ctx, tx, n, stage); err != nil {
		return err
	}
	indexes, err := buildIndexes(ctx, tx, t, old, staged, qstage)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "ANALYZE "+qstage); err != nil {
		return err
	}
	if old != 0 {
		views, err := dependentViews(ctx, tx, old)
		if err != nil {
			return err
		}
		if len(views) > 0 {
			return fmt.Errorf("table %s cannot be replaced while views depend on it (%s), since PostgreSQL cannot drop a table that a view uses: "+
				"drop them, run the same command again to finish the run (its output waits in table %s), then re-create them",
				n.out.Sanitize(), strings.Join(views, ", "), qstage)
		}
		if _, err := tx.Exec(ctx, "DROP TABLE "+n.out.Sanitize()); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "2BP01" { // dependent objects still exist
				return fmt.Errorf("the old table cannot be dropped (%s): remove what depends on it and run the same command again "+
					"to finish the run (its output waits in table %s): %w", pgErr.Detail, qstage, err)
			}
			return err
		}
	}
	if _, err := tx.Exec(ctx, "ALTER TABLE "+qstage+" RENAME TO "+ident(n.table)); err != nil {
		return err
	}
	if err := renameIndexes(ctx, tx, n, staged, indexes); err != nil {
		return err
	}
	for _, x := range indexes {
		if x.comment == "" {
			continue
		}
		if _, err := tx.Exec(ctx, x.comment); err != nil {
			return err
		}
	}
	if err := postgresMark(ctx, tx, n, commit, swapBucket, staged); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "DELETE FROM "+n.owners.Sanitize()+" WHERE table_name = $1", n.table); err != nil {
		return err
	}
	crashpoint.Hit(ctx, crashpoint.SwapRenamed)
	return nil
}

// dependentViews returns the views and materialized views whose rules use
// the table oid, as qualified names.
func dependentViews(ctx context.Context, tx pgx.Tx, oid uint32) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT DISTINCT v.oid::regclass::text
		FROM pg_catalog.pg_depend d
		JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
		JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
		WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
			AND d.refobjid = $1 AND v.oid <> $1
		ORDER BY 1`, oid)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// postgresMarks returns the records stageBucket and swapBucket that the
// commit table holds for commit: the oid of the table each step made
// (the staging table, which the swap makes the output table), 0 if there
// is none or it names none.
func postgresMarks(ctx context.Context, tx pgx.Tx, n names, commit string) (map[int]uint32, error) {
	rows, err := tx.Query(ctx, "SELECT bucket, coalesce(table_oid, 0) FROM "+n.commits.Sanitize()+" WHERE commit_key = $1 AND bucket < 0", commit)
	if err != nil {
		return nil, err
	}
	marks := map[int]uint32{}
	var step int
	var oid uint32
	_, err = pgx.ForEachRow(rows, []any{&step, &oid}, func() error {
		marks[step] = oid
		return nil
	})
	return marks, err
}

// postgresMark records step (stageBucket or swapBucket) of commit, made
// on the table oid, in place of any earlier record of it.
func postgresMark(ctx context.Context, tx pgx.Tx, n names, commit string, step int, oid uint32) error {
	_, err := tx.Exec(ctx, "INSERT INTO "+n.commits.Sanitize()+` (commit_key, bucket, "rows", table_oid) VALUES ($1, $2, 0, $3)
		ON CONFLICT (commit_key, bucket) DO UPDATE SET table_oid = EXCLUDED.table_oid, committed_at = now()`, commit, step, oid)
	return err
}
