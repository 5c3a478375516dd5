package sinks

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mrengine/mr/internal/sqlname"
	"github.com/mrengine/mr/mapreduce"
)

// Forgetting a run: mr gc removes a finished run's state, and with it the
// only reader of what the sink records about the run. mr_bucket_commits
// grows by a row per bucket per run (and per replay generation), so gc
// asks the sink to forget them. The output table stays: it is the result.
//
// What a run leaves, by commit key (the plan's Commit, and Commit +
// ".replay<g>" for each generation of mr dlq replay, see
// mapreduce.ReplayManifest):
//
//   - every row of mr_bucket_commits under those keys: the buckets, and
//     the stage and swap steps (buckets -2 and -1);
//   - a row of mr_table_owners if the run claimed its table under that
//     commit and never swapped (it stopped after Claim and was removed
//     done, or its run state was removed by hand);
//   - in SQLite, the row of mr_tables naming the run's staging table, once
//     that table is gone: a swap renames the row to the output table's,
//     which stays.
//
// Forget is idempotent, and a sink that never had mr's tables has nothing
// to forget. It counts the rows of mr_bucket_commits removed.

// ForgetSQL is the statement that removes the commit records of the given
// plan commits by hand, in PostgreSQL or SQLite, for when Forget cannot
// reach the sink.
func ForgetSQL(commits []string) string {
	var keys []string
	for _, c := range commits {
		pattern := strings.NewReplacer(`\`, `\\`, "_", `\_`, "%", `\%`).Replace(c) + ".replay%"
		keys = append(keys, fmt.Sprintf(`commit_key = %s OR commit_key LIKE %s ESCAPE '\'`, sqlname.Literal(c), sqlname.Literal(pattern)))
	}
	return "DELETE FROM mr_bucket_commits WHERE " + strings.Join(keys, " OR ")
}

// Forget removes what the sink records of the run with the given plan
// commit into table (see above), in one transaction, and returns the
// number of commit records removed.
func (s *SQLite) Forget(ctx context.Context, table, run, commit string) (int64, error) {
	var removed int64
	_, err := s.inTx(ctx, func(tx *sql.Tx) (bool, error) {
		var prepared bool
		if err := tx.QueryRowContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'mr_tables')`).Scan(&prepared); err != nil || !prepared {
			return false, err
		}
		// substr rather than LIKE, whose _ and % a commit key could hold.
		res, err := tx.ExecContext(ctx, `DELETE FROM mr_bucket_commits
			WHERE commit_key = ?1 OR substr(commit_key, 1, length(?1) + 7) = ?1 || '.replay'`, commit)
		if err != nil {
			return false, err
		}
		if removed, err = res.RowsAffected(); err != nil {
			return false, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM mr_table_owners WHERE run = ? AND commit_key = ?`, run, commit); err != nil {
			return false, err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM mr_tables WHERE name = ?1
			AND NOT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE)`, stageName("", table, run))
		return false, err
	})
	if err != nil {
		return 0, fmt.Errorf("sinks: forget run %s (commit %s) in %s: %w", run, commit, s, err)
	}
	return removed, nil
}

// Forget removes what the sink records of the run with the given plan
// commit into table (see above), from the schema that table resolves to
// (see Postgres), in one transaction, and returns the number of commit
// records removed.
func (s *Postgres) Forget(ctx context.Context, table, run, commit string) (int64, error) {
	fail := func(err error) error {
		return s.db.Scrub(fmt.Errorf("sinks: forget run %s (commit %s) in %s: %w", run, commit, s, err))
	}
	n, err := s.names(ctx, mapreduce.OutputTable{Name: table})
	if err != nil {
		return 0, fail(err)
	}
	var removed int64
	err = s.retry(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			removed = 0
			commits, err := relation(ctx, tx, n.schema, "mr_bucket_commits")
			if err != nil || commits == 0 { // never prepared: nothing to forget
				return err
			}
			tag, err := tx.Exec(ctx, "DELETE FROM "+n.commits.Sanitize()+
				" WHERE commit_key = $1 OR starts_with(commit_key, $1 || '.replay')", commit)
			if err != nil {
				return err
			}
			removed = tag.RowsAffected()
			if owners, err := relation(ctx, tx, n.schema, "mr_table_owners"); err != nil || owners == 0 {
				return err
			}
			_, err = tx.Exec(ctx, "DELETE FROM "+n.owners.Sanitize()+" WHERE run = $1 AND commit_key = $2", run, commit)
			return err
		})
	})
	if err != nil {
		return 0, fail(err)
	}
	return removed, nil
}
