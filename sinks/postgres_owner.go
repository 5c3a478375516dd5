package sinks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mrengine/mr/internal/sqlname"
	"github.com/mrengine/mr/mapreduce"
)

// Claim makes run (with its plan commit) the owner of t's table (see
// OwnedError), or returns an *OwnedError if another unfinished run owns
// it; Stage claims the table the same way. It is meant for the engine to
// call right after Prepare, before the map phase, so that a second run
// into the table is refused before it reads a row. A commit already swapped
// in claims nothing, since no Swap would follow to release it. t must be
// prepared.
func (s *Postgres) Claim(ctx context.Context, t mapreduce.OutputTable, run, commit string) error {
	fail := func(err error) error {
		return s.db.Scrub(fmt.Errorf("sinks: claim table %q for run %s in %s: %w", t.Name, run, s, err))
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
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", prepareLockClass, n.schema); err != nil {
				return err
			}
			marks, err := postgresMarks(ctx, tx, n, commit)
			if err != nil {
				return err
			}
			out, err := relation(ctx, tx, n.schema, n.table)
			if err != nil || (out != 0 && marks[swapBucket] == out) {
				return err // finished: no Swap would release a claim
			}
			return s.claimTable(ctx, tx, n, run, commit)
		})
	})
	var owned *OwnedError
	if errors.As(err, &owned) {
		return err
	}
	if err != nil {
		return fail(err)
	}
	return nil
}

// claimTable claims n's table for run and commit in tx, which holds the
// schema's advisory lock, so that two runs cannot both find it free.
func (s *Postgres) claimTable(ctx context.Context, tx pgx.Tx, n names, run, commit string) error {
	var owner, owned string
	var since time.Time
	err := tx.QueryRow(ctx, "SELECT run, commit_key, claimed_at FROM "+n.owners.Sanitize()+" WHERE table_name = $1", n.table).
		Scan(&owner, &owned, &since)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return err
	case owner != run:
		return &OwnedError{
			Table: n.out.Sanitize(), Sink: s.String(), Run: owner, Commit: owned, Since: since,
			Release: fmt.Sprintf("DELETE FROM %s WHERE table_name = %s; DROP TABLE IF EXISTS %s",
				n.owners.Sanitize(), sqlname.Literal(n.table), pgx.Identifier{n.schema, stageName(n.schema, n.table, owner)}.Sanitize()),
		}
	case owned == commit:
		return nil
	}
	_, err = tx.Exec(ctx, "INSERT INTO "+n.owners.Sanitize()+` (table_name, run, commit_key) VALUES ($1, $2, $3)
		ON CONFLICT (table_name) DO UPDATE SET run = EXCLUDED.run, commit_key = EXCLUDED.commit_key, claimed_at = now()`,
		n.table, run, commit)
	return err
}
