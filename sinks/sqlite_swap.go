package sinks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mrengine/mr/internal/crashpoint"
	"github.com/mrengine/mr/internal/sqlname"
	"github.com/mrengine/mr/mapreduce"
)

var _ mapreduce.Replacer = (*SQLite)(nil)

// Stage returns the staging table of run for t (see mapreduce.Replacer),
// named by stageName. A new one is made from t's own CREATE TABLE
// statement (sqlite_schema.sql) under the staging name, which keeps its
// columns, types, defaults, constraints and table options; if its key is
// a separate unique index, the staging table gets one of its own while it
// is built. t's other indexes and its triggers are made on the new table
// by Swap.
func (s *SQLite) Stage(ctx context.Context, t mapreduce.OutputTable, run, commit string) (mapreduce.OutputTable, error) {
	staged := t
	staged.Name = stageName("", t.Name, run)
	swapped, err := s.inTx(ctx, func(tx *sql.Tx) (bool, error) {
		marks, err := sqliteMarks(ctx, tx, commit)
		if err != nil {
			return false, err
		}
		out, err := tableID(ctx, tx, t.Name)
		if err != nil {
			return false, err
		}
		// Each record counts only for the table it names (see
		// createCommits): a swap whose output table was dropped since is
		// built again, as is a staging table dropped during the run.
		if out != "" && marks[swapBucket] == out {
			return true, nil
		}
		if err := s.claimTable(ctx, tx, t.Name, run, commit); err != nil {
			return false, err
		}
		id, err := tableID(ctx, tx, staged.Name)
		if err != nil {
			return false, err
		}
		if id != "" && marks[stageBucket] == id {
			return false, nil // a resumed run
		}
		if id != "" { // an earlier plan's, or not the one recorded
			if _, err := tx.ExecContext(ctx, "DROP TABLE "+sqlname.Quote(staged.Name)); err != nil {
				return false, err
			}
		}
		var create string
		err = tx.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ? COLLATE NOCASE`, t.Name).Scan(&create)
		if err != nil {
			return false, fmt.Errorf("read the definition of table %q: %w", t.Name, err)
		}
		if create, err = renameCreate(create, staged.Name); err != nil {
			return false, fmt.Errorf("copy the definition of table %q: %w", t.Name, err)
		}
		if _, err := tx.ExecContext(ctx, create); err != nil {
			return false, err
		}
		if s.check(ctx, tx, staged) != nil {
			if _, err := tx.ExecContext(ctx, stageKeySQL(staged)); err != nil {
				return false, err
			}
		}
		if id, err = newTableID(ctx, tx, staged.Name); err != nil {
			return false, err
		}
		return false, sqliteMark(ctx, tx, commit, stageBucket, id)
	})
	if err != nil {
		return t, fmt.Errorf("sinks: stage table %q for commit %q in %s: %w", t.Name, commit, s, err)
	}
	if swapped {
		return t, nil
	}
	return staged, nil
}

// stageKeySQL creates the unique index on the keys that the upserts into
// a staging table need when its definition has none.
func stageKeySQL(staged mapreduce.OutputTable) string {
	keys := make([]string, len(staged.Keys))
	for i, f := range staged.Keys {
		keys[i] = sqlname.Quote(f.Name)
	}
	return fmt.Sprintf("CREATE UNIQUE INDEX IF NOT EXISTS %s ON %s (%s)",
		sqlname.Quote(staged.Name+"_key"), sqlname.Quote(staged.Name), strings.Join(keys, ", "))
}

// Swap replaces t with the staging table of run (see mapreduce.Replacer),
// in one transaction that also records the swap: it drops t, renames the
// staging table to t, and runs t's CREATE INDEX and CREATE TRIGGER
// statements again on it, so that indexes and triggers keep their names.
// Those indexes are built inside the transaction; readers (WAL) see the
// old table until it commits. Views on t keep working: the rename runs
// with legacy_alter_table on, so that SQLite neither rewrites nor checks
// views, which would name a missing table between the DROP and the
// rename. Grants do not exist in SQLite; nothing else of t is lost.
func (s *SQLite) Swap(ctx context.Context, t mapreduce.OutputTable, run, commit string) error {
	if err := s.swap(ctx, t, run, commit); err != nil {
		return fmt.Errorf("sinks: replace table %q with the output of commit %q in %s: %w", t.Name, commit, s, err)
	}
	return nil
}

func (s *SQLite) swap(ctx context.Context, t mapreduce.OutputTable, run, commit string) error {
	stage := stageName("", t.Name, run)
	select {
	case s.write <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-s.write }()
	// The pragma holds for a connection, so the swap takes one of its own
	// and turns it off again before handing the connection back.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA legacy_alter_table = ON"); err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA legacy_alter_table = OFF")

	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op once committed
	marks, err := sqliteMarks(ctx, tx, commit)
	if err != nil {
		return err
	}
	old, err := tableID(ctx, tx, t.Name)
	if err != nil || (old != "" && marks[swapBucket] == old) {
		return err
	}
	if err := s.claimTable(ctx, tx, t.Name, run, commit); err != nil {
		return err
	}
	staged, err := tableID(ctx, tx, stage)
	if err != nil {
		return err
	}
	if staged == "" || staged != marks[stageBucket] {
		return fmt.Errorf("the staging table %q of this run was dropped during the run, and the buckets applied to it with it: "+
			"run the same command again: it builds the table anew and applies them again", stage)
	}
	rows, err := tx.QueryContext(ctx, `SELECT sql FROM sqlite_schema
		WHERE type IN ('index', 'trigger') AND tbl_name = ? COLLATE NOCASE AND sql IS NOT NULL ORDER BY type, rowid`, t.Name)
	if err != nil {
		return err
	}
	var recreate []string
	for rows.Next() {
		var stmt string
		if err := rows.Scan(&stmt); err != nil {
			rows.Close()
			return err
		}
		recreate = append(recreate, stmt)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	for _, stmt := range []string{
		"DROP TABLE IF EXISTS " + sqlname.Quote(t.Name),
		"DROP INDEX IF EXISTS " + sqlname.Quote(stage+"_key"),
		"ALTER TABLE " + sqlname.Quote(stage) + " RENAME TO " + sqlname.Quote(t.Name),
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	for _, stmt := range recreate {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("re-create on the new table: %s: %w", stmt, err)
		}
	}
	// The output table is the staging table now, with its id (and so its
	// buckets), and the run is done with it.
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM mr_tables WHERE name = ?`, []any{t.Name}},
		{`UPDATE mr_tables SET name = ? WHERE id = ?`, []any{t.Name, staged}},
		{`DELETE FROM mr_table_owners WHERE table_name = ?`, []any{t.Name}},
	} {
		if _, err := tx.ExecContext(ctx, stmt.sql, stmt.args...); err != nil {
			return err
		}
	}
	if err := sqliteMark(ctx, tx, commit, swapBucket, staged); err != nil {
		return err
	}
	crashpoint.Hit(ctx, crashpoint.SwapRenamed)
	return tx.Commit()
}

// inTx runs fn in a write transaction and commits it unless fn fails.
func (s *SQLite) inTx(ctx context.Context, fn func(tx *sql.Tx) (bool, error)) (bool, error) {
	select {
	case s.write <- struct{}{}:
	case <-ctx.Done():
		return false, context.Cause(ctx)
	}
	defer func() { <-s.write }()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback() // a no-op once committed
	v, err := fn(tx)
	if err != nil {
		return v, err
	}
	return v, tx.Commit()
}

func sqliteTableExists(ctx context.Context, tx *sql.Tx, name string) (bool, error) {
	var exists bool
	err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ? COLLATE NOCASE)`, name).Scan(&exists)
	return exists, err
}

// sqliteMarks returns the records stageBucket and swapBucket that the
// commit table holds for commit: the id of the table each step made (see
// createCommits), "" if there is none.
func sqliteMarks(ctx context.Context, tx *sql.Tx, commit string) (map[int]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT bucket, coalesce(table_id, '') FROM mr_bucket_commits WHERE commit_key = ? AND bucket < 0`, commit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	marks := map[int]string{}
	for rows.Next() {
		var b int
		var id string
		if err := rows.Scan(&b, &id); err != nil {
			return nil, err
		}
		marks[b] = id
	}
	return marks, rows.Err()
}

// sqliteMark records step (stageBucket or swapBucket) of commit, made on
// the table of id, in place of any earlier record of it.
func sqliteMark(ctx context.Context, tx *sql.Tx, commit string, step int, id string) error {
	_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO mr_bucket_commits (commit_key, bucket, rows, committed_at, table_id) VALUES (?, ?, 0, ?, ?)`,
		commit, step, time.Now().UTC().Format(time.RFC3339), id)
	return err
}

// renameCreate returns a CREATE TABLE statement as sqlite_schema keeps it
// ("CREATE TABLE name…", the name possibly quoted or schema-qualified)
// with the table named name instead.
func renameCreate(create, name string) (string, error) {
	const prefix = "CREATE TABLE "
	if len(create) < len(prefix) || !strings.EqualFold(create[:len(prefix)], prefix) {
		return "", fmt.Errorf("unexpected definition %.40q", create)
	}
	rest := create[len(prefix):]
	for {
		n, err := identLen(rest)
		if err != nil {
			return "", fmt.Errorf("definition %.40q: %w", create, err)
		}
		rest = rest[n:]
		if !strings.HasPrefix(rest, ".") { // else that was the schema
			break
		}
		rest = rest[1:]
	}
	return prefix + sqlname.Quote(name) + rest, nil
}

// identLen returns the length of the SQLite identifier that s starts with:
// quoted with "", [], “ or ”, or bare.
func identLen(s string) (int, error) {
	if s == "" {
		return 0, errors.New("no table name")
	}
	switch open := s[0]; open {
	case '"', '`', '\'', '[':
		closing := open
		if open == '[' {
			closing = ']'
		}
		for i := 1; i < len(s); i++ {
			if s[i] != closing {
				continue
			}
			if closing != ']' && i+1 < len(s) && s[i+1] == closing {
				i++ // a doubled quote
				continue
			}
			return i + 1, nil
		}
		return 0, errors.New("unterminated table name")
	}
	i := strings.IndexAny(s, " \t\n\r(.")
	if i <= 0 {
		return 0, errors.New("no table name")
	}
	return i, nil
}
