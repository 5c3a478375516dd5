package sinks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mrengine/mr/internal/sqlname"
	"github.com/mrengine/mr/mapreduce"
)

// Claim makes run (with its plan commit) the owner of t's table, or
// returns an *OwnedError if another unfinished run owns it, as
// Postgres.Claim does; a commit already swapped in claims nothing. t must
// be prepared.
func (s *SQLite) Claim(ctx context.Context, t mapreduce.OutputTable, run, commit string) error {
	_, err := s.inTx(ctx, func(tx *sql.Tx) (bool, error) {
		marks, err := sqliteMarks(ctx, tx, commit)
		if err != nil {
			return false, err
		}
		out, err := tableID(ctx, tx, t.Name)
		if err != nil || (out != "" && marks[swapBucket] == out) {
			return false, err // finished: no Swap would release a claim
		}
		return false, s.claimTable(ctx, tx, t.Name, run, commit)
	})
	var owned *OwnedError
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("sinks: claim table %q for run %s in %s: %w", t.Name, run, s, err)
	}
	return err
}

// claimTable claims the table for run and commit in tx, a write
// transaction, which no other writer can interleave with.
func (s *SQLite) claimTable(ctx context.Context, tx *sql.Tx, table, run, commit string) error {
	var owner, owned, since string
	err := tx.QueryRowContext(ctx, `SELECT run, commit_key, claimed_at FROM mr_table_owners WHERE table_name = ?`, table).
		Scan(&owner, &owned, &since)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return err
	case owner != run:
		at, _ := time.Parse(time.RFC3339, since) // written by claimTable
		return &OwnedError{
			Table: sqlname.Quote(table), Sink: s.String(), Run: owner, Commit: owned, Since: at,
			Release: fmt.Sprintf("DELETE FROM mr_table_owners WHERE table_name = %s; DROP TABLE IF EXISTS %s",
				sqlname.Literal(table), sqlname.Quote(stageName("", table, owner))),
		}
	case owned == commit:
		return nil
	}
	_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO mr_table_owners (table_name, run, commit_key, claimed_at) VALUES (?, ?, ?, ?)`,
		table, run, commit, time.Now().UTC().Format(time.RFC3339))
	return err
}
