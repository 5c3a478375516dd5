package eventgen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	_ "modernc.org/sqlite"

	"github.com/mrengine/mr/internal/sqlname" // the "sqlite" driver
)

// Table is the name of the table SeedSQLite fills.
const Table = "events"

// metaTable records, per seeded table, the fingerprint of the Config that
// seeded it, so that Seeded can tell a reusable file from a stale one.
const metaTable = "eventgen"

// rowsPerInsert rows go in one INSERT statement: SQLite's per-statement
// overhead is paid once per 100 rows, and 100 × 6 parameters stay far
// below its limit of 32,766.
const rowsPerInsert = 100

// SeedSQLite creates or replaces the events table in the SQLite file at
// path (created if missing) and fills it with cfg's rows, in one
// transaction. Timestamps are stored as RFC 3339 text with their offset,
// as SQLite has no timestamp type.
func SeedSQLite(ctx context.Context, path string, cfg Config) (err error) {
	db, err := openSQLite(path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	// The load is one transaction; if the machine dies it is rolled back
	// anyway, so syncing each page buys nothing.
	for _, pragma := range []string{"PRAGMA journal_mode=WAL", "PRAGMA synchronous=OFF", "PRAGMA cache_size=-65536"} {
		if _, err := db.ExecContext(ctx, pragma); err != nil {
			return fmt.Errorf("seed %s: %s: %w", path, pragma, err)
		}
	}
	if err := seed(ctx, db, cfg); err != nil {
		return fmt.Errorf("seed %s: %w", path, err)
	}
	// Move the loaded pages from the WAL into the database file.
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return fmt.Errorf("seed %s: checkpoint: %w", path, err)
	}
	return nil
}

func seed(ctx context.Context, db *sql.DB, cfg Config) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	for _, stmt := range []string{
		`DROP TABLE IF EXISTS ` + Table,
		// INTEGER PRIMARY KEY makes id the rowid: keyset reads walk the
		// table's own b-tree. ts is text: SQLite has no timestamp type.
		`CREATE TABLE ` + Table + ` (
			id           INTEGER PRIMARY KEY,
			account_id   BIGINT NOT NULL,
			ts           TEXT NOT NULL,
			category     TEXT NOT NULL,
			amount_cents BIGINT NOT NULL,
			payload      TEXT
		)`,
		`CREATE TABLE IF NOT EXISTS ` + metaTable + ` (name TEXT PRIMARY KEY, config TEXT NOT NULL, rows BIGINT NOT NULL)`,
		`DELETE FROM ` + metaTable + ` WHERE name = '` + Table + `'`,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	full, err := tx.PrepareContext(ctx, insertSQL(rowsPerInsert))
	if err != nil {
		return err
	}
	defer full.Close()
	args := make([]any, 0, 6*rowsPerInsert)
	var rows int64
	for e := range cfg.All() {
		args = append(args, e.ID, e.AccountID, e.TSText(), e.Category, e.AmountCents, e.Payload)
		rows++
		if len(args) == cap(args) {
			if _, err := full.ExecContext(ctx, args...); err != nil {
				return err
			}
			args = args[:0]
		}
	}
	if len(args) > 0 {
		if _, err := tx.ExecContext(ctx, insertSQL(len(args)/6), args...); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO `+metaTable+` (name, config, rows) VALUES (?, ?, ?)`,
		Table, cfg.fingerprint(), rows); err != nil {
		return err
	}
	return tx.Commit()
}

func insertSQL(rows int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO ` + Table + ` (id, account_id, ts, category, amount_cents, payload) VALUES `)
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?)")
	}
	return b.String()
}

// Seeded reports whether the SQLite file at path holds the events table
// exactly as SeedSQLite(ctx, path, cfg) would leave it: seeded by this
// generator version from the same Config, with its row count intact. A
// missing file is not seeded (and is not created).
func Seeded(ctx context.Context, path string, cfg Config) (ok bool, err error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	db, err := openSQLite(path)
	if err != nil {
		return false, err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	var fingerprint string
	var want int64
	err = db.QueryRowContext(ctx, `SELECT config, rows FROM `+metaTable+` WHERE name = ?`, Table).Scan(&fingerprint, &want)
	switch {
	case errors.Is(err, sql.ErrNoRows) || err != nil && strings.Contains(err.Error(), "no such table"):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read %s: %w", path, err)
	case fingerprint != cfg.fingerprint():
		return false, nil
	}
	var rows int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+Table).Scan(&rows); err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return false, nil
		}
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	return rows == want, nil
}

// openSQLite opens the SQLite file at path, creating it if missing.
func openSQLite(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", sqlname.SQLiteURI(path, "_pragma=busy_timeout(10000)"))
	if err != nil {
		return nil, err
	}
	// PRAGMAs are per connection: keep one.
	db.SetMaxOpenConns(1)
	return db, nil
}
