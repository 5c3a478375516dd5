package sinks

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/cockroachdb/apd/v3"
	"github.com/mrengine/mr/internal/dburl"
	"github.com/mrengine/mr/internal/sqlname"
	"github.com/mrengine/mr/mapreduce"
)

// SQLite is a Sink writing to a table of an SQLite database file. It is
// safe for concurrent use.
type SQLite struct {
	name string // dburl.SQLiteName of the path: String
	db   *sql.DB
	// write is a one-slot semaphore that Apply holds for its transaction.
	// SQLite has one writer at a time; taking turns here hands the lock
	// over at once and waits as long as ctx allows, where SQLite's busy
	// handler would poll with growing sleeps and give up at its timeout.
	write chan struct{}
}

var _ mapreduce.Sink = (*SQLite)(nil)

// OpenSQLite opens the SQLite database at path, creating the file if it
// is missing. Close it when done.
func OpenSQLite(path string) (*SQLite, error) {
	s := &SQLite{name: dburl.SQLiteName(path), write: make(chan struct{}, 1)}
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		return nil, fmt.Errorf("sinks: %s: %w", s, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("sinks: %s: %w", s, err)
	}
	s.db = db
	return s, nil
}

// sqliteDSN is the driver's name for the database at path: a file: URI
// (mode=rwc creates a missing file) with the characters a URI reserves
// escaped. Transactions begin IMMEDIATE, taking the write lock up front, so
// that writers from other connections or processes wait for each other
// (up to the busy timeout) instead of failing with SQLITE_BUSY when a read
// lock cannot be upgraded. WAL lets readers, such as a source on the same
// file, run beside the writer.
func sqliteDSN(path string) string {
	return sqlname.SQLiteURI(path, "mode=rwc&_txlock=immediate&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

// String returns "sqlite:" and the absolute, cleaned path of the file, its
// canonical name: part of a run's identity.
func (s *SQLite) String() string { return s.name }

// sqliteTypes are the column types of the field types.
var sqliteTypes = map[mapreduce.Type]string{
	mapreduce.TypeInt64:     "INTEGER",
	mapreduce.TypeFloat64:   "REAL",
	mapreduce.TypeString:    "TEXT",
	mapreduce.TypeBool:      "INTEGER", // 0 or 1
	mapreduce.TypeDate:      "TEXT",    // YYYY-MM-DD, see sqlValue
	mapreduce.TypeTimestamp: "TEXT",    // RFC 3339 in UTC, see sqlValue
	mapreduce.TypeDecimal:   "TEXT",    // the exact decimal text: NUMERIC affinity would round it to a double
	mapreduce.TypeBytes:     "BLOB",
}

// sqliteType is the column type of f. SQLite has no arrays: an array is
// stored as the JSON array of its elements' stored values (see sqlValue).
func sqliteType(f mapreduce.Field) (string, bool) {
	typ, ok := sqliteTypes[f.Type]
	if f.Array {
		typ = "TEXT"
	}
	return typ, ok
}

// timestampLayout writes timestamps as RFC 3339 in UTC with a fixed six
// fractional digits (the engine keeps microseconds), so that text order is
// time order. RFC3339Nano drops trailing zeros and would sort
// "…:05.5Z" before "…:05Z".
const timestampLayout = "2006-01-02T15:04:05.000000Z07:00"

// sqlValue converts a row value to what its column stores. A Date must not
// reach database/sql as it is: being an int32, it would be stored as a
// count of days.
func sqlValue(v any) any {
	switch v := v.(type) {
	case mapreduce.Date:
		return v.String()
	case time.Time:
		return v.UTC().Format(timestampLayout)
	case *apd.Decimal:
		return v.Text('f')
	case []int64, []float64, []string, []bool, [][]byte:
		b, _ := json.Marshal(v) // cannot fail for these types
		return string(b)
	case []mapreduce.Date, []time.Time, []*apd.Decimal:
		return jsonArray(v)
	}
	return v
}

// jsonArray is the JSON array of an array value's elements as sqlValue
// stores them: text for dates, timestamps and exact decimals.
func jsonArray(v any) string {
	rv := reflect.ValueOf(v)
	elems := make([]any, rv.Len())
	for i := range elems {
		elems[i] = sqlValue(rv.Index(i).Interface())
	}
	b, _ := json.Marshal(elems) // strings only: cannot fail
	return string(b)
}

// The tables of mr's own beside the output tables: the commit table (see
// the package doc), the owner table (see OwnedError), and mr_tables,
// which gives each table that mr writes an id of its own.
//
// SQLite keeps nothing that tells a table from one of the same name
// created after it was dropped: rowids and root pages of sqlite_schema are
// reused, and VACUUM renumbers root pages. So mr_tables ties a random id to
// a table's name when mr creates the table, or first sees it, and the
// commit table records with each bucket (and step) the id of the table it
// went to, as Postgres records the table's oid. Committed counts a bucket
// only while a table of that id exists: when a table is dropped, and
// Prepare (or Stage, for a staging table) creates it again, it gets a new
// id, and the buckets of the old one are applied again. The swap hands the
// staging table's id to the output table, with its buckets. What mr cannot
// see is a table dropped and created again by someone else between two
// runs: it keeps its id, and a run over it should be started --fresh.
const (
	createCommits = `CREATE TABLE IF NOT EXISTS mr_bucket_commits (
	commit_key TEXT, bucket INTEGER, rows INTEGER, committed_at TEXT, table_id TEXT,
	PRIMARY KEY (commit_key, bucket))`
	createTableIDs = `CREATE TABLE IF NOT EXISTS mr_tables (name TEXT PRIMARY KEY COLLATE NOCASE, id TEXT NOT NULL)`
	createOwners   = `CREATE TABLE IF NOT EXISTS mr_table_owners (
	table_name TEXT PRIMARY KEY COLLATE NOCASE, run TEXT NOT NULL, commit_key TEXT NOT NULL, claimed_at TEXT NOT NULL)`
)

// Prepare creates t's table if it is missing, with a primary key on its
// key columns, and mr's own tables. It checks that an existing table has
// every column of t, of an affinity that keeps its values (see
// sqliteAffinities), and a primary key or unique index on exactly its
// keys.
func (s *SQLite) Prepare(ctx context.Context, t mapreduce.OutputTable) error {
	create, err := createSQL(t)
	if err != nil {
		return fmt.Errorf("sinks: %s: %w", s, err)
	}
	var problem error
	_, err = s.inTx(ctx, func(tx *sql.Tx) (bool, error) {
		existed, err := sqliteTableExists(ctx, tx, t.Name)
		if err != nil {
			return false, err
		}
		for _, stmt := range []string{create, createCommits, createTableIDs, createOwners} {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return false, err
			}
		}
		var tied bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pragma_table_info('mr_bucket_commits') WHERE name = 'table_id')`).Scan(&tied); err != nil {
			return false, err
		}
		if !tied { // made by an mr that did not record it: those buckets count no more, and are applied again once
			if _, err := tx.ExecContext(ctx, `ALTER TABLE mr_bucket_commits ADD COLUMN table_id TEXT`); err != nil {
				return false, err
			}
		}
		if !existed {
			if _, err := newTableID(ctx, tx, t.Name); err != nil {
				return false, err
			}
		}
		problem = s.check(ctx, tx, t)
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("sinks: prepare table %q in %s: %w", t.Name, s, err)
	}
	return problem
}

// tableID returns the id of the table name (see createCommits), giving it
// one if it has none yet, or "" if there is no such table.
func tableID(ctx context.Context, tx *sql.Tx, name string) (string, error) {
	exists, err := sqliteTableExists(ctx, tx, name)
	if err != nil || !exists {
		return "", err
	}
	var id string
	err = tx.QueryRowContext(ctx, `SELECT id FROM mr_tables WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return newTableID(ctx, tx, name)
	}
	return id, err
}

// newTableID gives the table name a new id, for a table mr has just
// created.
func newTableID(ctx context.Context, tx *sql.Tx, name string) (string, error) {
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO mr_tables (name, id) VALUES (?, ?)`, name, id)
	return id, err
}

func createSQL(t mapreduce.OutputTable) (string, error) {
	if len(t.Keys) == 0 {
		return "", fmt.Errorf("table %q has no key columns", t.Name)
	}
	var cols, keys []string
	for i, f := range slices.Concat(t.Keys, t.Values) {
		typ, ok := sqliteType(f)
		if !ok {
			return "", fmt.Errorf("column %q of table %q has unknown type %s", f.Name, t.Name, f.Type)
		}
		def := sqlname.Quote(f.Name) + " " + typ
		if i < len(t.Keys) {
			def += " NOT NULL"
			keys = append(keys, sqlname.Quote(f.Name))
		}
		cols = append(cols, def)
	}
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s, PRIMARY KEY (%s))",
		sqlname.Quote(t.Name), strings.Join(cols, ", "), strings.Join(keys, ", ")), nil
}

// querier is what check reads the schema through: the database, or the
// transaction that is changing it.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// check makes sure that the table can take t's rows: it has every column,
// each of an affinity that keeps its values (see checkAffinities), and a
// primary key or a unique index on exactly the key columns, which
// ON CONFLICT needs. Names are matched without regard to case, as SQLite
// does.
func (s *SQLite) check(ctx context.Context, q querier, t mapreduce.OutputTable) error {
	fail := func(err error) error { return fmt.Errorf("sinks: check table %q in %s: %w", t.Name, s, err) }
	// have holds the table's columns; keys its candidate keys by name: the
	// primary key and the unique indexes, each a set of columns.
	have := map[string]bool{}
	keys := map[string][]string{}
	add := func(query string, row func(a, b string, pk int)) error {
		rows, err := q.QueryContext(ctx, query, t.Name)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var a, b string
			var pk int
			if err := rows.Scan(&a, &b, &pk); err != nil {
				return err
			}
			row(a, strings.ToLower(b), pk)
		}
		return rows.Err()
	}
	err := add(`SELECT 'primary key', name, pk FROM pragma_table_info(?)`, func(key, col string, pk int) {
		have[col] = true
		if pk > 0 {
			keys[key] = append(keys[key], col)
		}
	})
	if err != nil {
		return fail(err)
	}
	err = add(`SELECT l.name, coalesce(i.name, ''), 0 FROM pragma_index_list(?) AS l, pragma_index_info(l.name) AS i
		WHERE l."unique" AND NOT l.partial`, func(index, col string, _ int) {
		keys[index] = append(keys[index], col)
	})
	if err != nil {
		return fail(err)
	}

	var missing, alter []string
	for _, f := range slices.Concat(t.Keys, t.Values) {
		if !have[strings.ToLower(f.Name)] {
			missing = append(missing, fmt.Sprintf("%q", f.Name))
			typ, _ := sqliteType(f)
			alter = append(alter, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", sqlname.Quote(t.Name), sqlname.Quote(f.Name), typ))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("sinks: table %q in %s lacks columns %s: add them (%s) or drop the table so that mr creates it",
			t.Name, s, strings.Join(missing, ", "), strings.Join(alter, "; "))
	}

	if err := s.checkAffinities(ctx, q, t); err != nil {
		return err
	}

	want, quoted := make([]string, len(t.Keys)), make([]string, len(t.Keys))
	for i, f := range t.Keys {
		want[i], quoted[i] = strings.ToLower(f.Name), sqlname.Quote(f.Name)
	}
	slices.Sort(want)
	for _, key := range keys {
		slices.Sort(key)
		if slices.Equal(key, want) {
			return nil
		}
	}
	return fmt.Errorf("sinks: table %q in %s has no primary key or unique index on exactly (%s), which upserts need: "+
		"add one (CREATE UNIQUE INDEX %s ON %s (%s)) or drop the table so that mr creates it",
		t.Name, s, strings.Join(quoted, ", "), sqlname.Quote(t.Name+"_key"), sqlname.Quote(t.Name), strings.Join(quoted, ", "))
}

// Committed returns the buckets recorded under commit, in order, that went
// to a table that still exists (see createCommits). A sink never prepared
// has none.
func (s *SQLite) Committed(ctx context.Context, commit string) ([]int, error) {
	fail := func(err error) error { return fmt.Errorf("sinks: read the commits of %q in %s: %w", commit, s, err) }
	var prepared bool
	err := s.db.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'mr_tables')`).Scan(&prepared)
	if err != nil {
		return nil, fail(err)
	}
	if !prepared {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT c.bucket FROM mr_bucket_commits c
		JOIN mr_tables i ON i.id = c.table_id
		JOIN sqlite_schema s ON s.type = 'table' AND s.name = i.name COLLATE NOCASE
		WHERE c.commit_key = ? AND c.bucket >= 0 ORDER BY c.bucket`, commit)
	if err != nil {
		return nil, fail(err)
	}
	defer rows.Close()
	var buckets []int
	for rows.Next() {
		var b int
		if err := rows.Scan(&b); err != nil {
			return nil, fail(err)
		}
		buckets = append(buckets, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(err)
	}
	return buckets, nil
}

// Apply upserts rows into t and records bucket under commit, in one
// transaction; if the bucket is already recorded for this very table (see
// createCommits) it does nothing. Values
// are converted to the column types of Prepare. Any error, including one
// from rows, rolls everything back.
func (s *SQLite) Apply(ctx context.Context, t mapreduce.OutputTable, commit string, bucket int, rows mapreduce.OutputRows) error {
	err := s.applyBucket(ctx, t, commit, bucket, func(tx *sql.Tx) (int, error) { return upsert(ctx, tx, t, rows) })
	if err != nil {
		return fmt.Errorf("sinks: apply bucket %d of commit %q to table %q in %s: %w", bucket, commit, t.Name, s, err)
	}
	return nil
}

// applyBucket is the one way a bucket reaches t, for Apply and Merge: in
// one transaction, holding the write semaphore, it checks that the bucket
// is not recorded for this very table yet (else it does nothing), lets
// write upsert its rows, and records it with the count write returns.
func (s *SQLite) applyBucket(ctx context.Context, t mapreduce.OutputTable, commit string, bucket int, write func(tx *sql.Tx) (int, error)) error {
	select {
	case s.write <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-s.write }()

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op once committed
	id, err := tableID(ctx, tx, t.Name)
	if err != nil {
		return err
	}
	if id == "" {
		return fmt.Errorf("table %s was dropped during the run, so the bucket was not applied; "+
			"run the same command again: it creates the table anew and applies every bucket lost with it", sqlname.Quote(t.Name))
	}
	var done bool
	err = tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM mr_bucket_commits WHERE commit_key = ? AND bucket = ? AND table_id = ?)`,
		commit, bucket, id).Scan(&done)
	if err != nil || done {
		return err
	}
	n, err := write(tx)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO mr_bucket_commits (commit_key, bucket, rows, committed_at, table_id) VALUES (?, ?, ?, ?, ?)`,
		commit, bucket, n, time.Now().UTC().Format(time.RFC3339), id)
	if err != nil {
		return err
	}
	return tx.Commit()
}

// rowsPerInsert is how many rows one INSERT statement carries, so that the
// cost of executing a statement is paid once per many rows. Measured with
// BenchmarkSQLite_Apply (100k rows): 1 row per statement ~100k rows/s, 10
// ~200k, 100 ~250k, 500 no better than 100 and a longer statement.
const rowsPerInsert = 100

// maxParams is SQLite's default limit on the parameters of a statement
// (SQLITE_MAX_VARIABLE_NUMBER), which a very wide table would reach.
const maxParams = 32766

// upsert writes rows to t in statements of rowsPerInsert rows and returns
// how many it wrote.
func upsert(ctx context.Context, tx *sql.Tx, t mapreduce.OutputTable, rows mapreduce.OutputRows) (int, error) {
	return insertRows(ctx, tx, len(t.Keys)+len(t.Values), func(n int) string { return upsertSQL(t, n) }, rows)
}

// insertRows writes rows, each width values wide, with the statements
// stmt(n) of n rows each: rowsPerInsert rows at a time, within maxParams.
// It returns how many rows it wrote.
func insertRows(ctx context.Context, tx *sql.Tx, width int, stmt func(n int) string, rows mapreduce.OutputRows) (int, error) {
	per := max(1, min(rowsPerInsert, maxParams/width))
	full, err := tx.PrepareContext(ctx, stmt(per))
	if err != nil {
		return 0, err
	}
	defer full.Close()
	args := make([]any, 0, per*width)
	n := 0
	for rows.Next() {
		values, err := rows.Values()
		if err != nil {
			return n, err
		}
		if len(values) != width {
			return n, fmt.Errorf("row %d has %d values for %d columns", n, len(values), width)
		}
		for _, v := range values {
			args = append(args, sqlValue(v))
		}
		n++
		if len(args) == per*width {
			if _, err := full.ExecContext(ctx, args...); err != nil {
				return n, err
			}
			args = args[:0]
		}
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	if len(args) > 0 {
		if _, err := tx.ExecContext(ctx, stmt(len(args)/width), args...); err != nil {
			return n, err
		}
	}
	return n, nil
}

// upsertSQL is an INSERT of n rows into t that overwrites the values of
// existing keys.
func upsertSQL(t mapreduce.OutputTable, n int) string {
	var cols, keys, set []string
	for i, f := range slices.Concat(t.Keys, t.Values) {
		q := sqlname.Quote(f.Name)
		cols = append(cols, q)
		if i < len(t.Keys) {
			keys = append(keys, q)
		} else {
			set = append(set, q+" = excluded."+q)
		}
	}
	onConflict := "DO NOTHING"
	if len(set) > 0 {
		onConflict = "DO UPDATE SET " + strings.Join(set, ", ")
	}
	return fmt.Sprintf("%s ON CONFLICT (%s) %s", insertSQL(sqlname.Quote(t.Name), cols, n), strings.Join(keys, ", "), onConflict)
}

// insertSQL is an INSERT of n rows into the columns cols of table, all
// quoted already.
func insertSQL(table string, cols []string, n int) string {
	row := "(" + strings.Repeat("?, ", len(cols)-1) + "?)"
	return fmt.Sprintf("INSERT INTO %s (%s) VALUES %s", table, strings.Join(cols, ", "), strings.Join(slices.Repeat([]string{row}, n), ", "))
}

// sqliteAffinities are the column affinities that keep every value of a
// field type as mr stores it (see sqliteTypes) unchanged; nil means all
// do. SQLite is dynamically typed, but it converts a value to its
// column's affinity where it can: integers in a REAL column become
// doubles (9007199254740993 is read back as …992), integers in a TEXT
// column text, and text that reads as a number, such as the decimal 1.10
// or the string 007, a number in an INTEGER, REAL or NUMERIC column. Text
// that cannot read as a number (dates, timestamps, JSON arrays) and bytes
// are never converted, so any column takes them; a column declared with
// no type has BLOB affinity, which converts nothing. A double is
// converted to an integer only where that is exact, so the numeric
// affinities all keep floats.
var sqliteAffinities = map[mapreduce.Type][]string{
	mapreduce.TypeInt64:   {"INTEGER", "NUMERIC", "BLOB"},
	mapreduce.TypeFloat64: {"REAL", "NUMERIC", "INTEGER", "BLOB"},
	mapreduce.TypeString:  {"TEXT", "BLOB"},
	mapreduce.TypeBool:    {"INTEGER", "NUMERIC", "BLOB"},
	mapreduce.TypeDecimal: {"TEXT", "BLOB"},
}

// affinity is the affinity SQLite gives a column of the declared type,
// by the rules of its documentation (Datatypes In SQLite, 3.1), in order.
func affinity(declared string) string {
	d := strings.ToUpper(declared)
	switch {
	case strings.Contains(d, "INT"):
		return "INTEGER"
	case strings.Contains(d, "CHAR"), strings.Contains(d, "CLOB"), strings.Contains(d, "TEXT"):
		return "TEXT"
	case d == "", strings.Contains(d, "BLOB"):
		return "BLOB"
	case strings.Contains(d, "REAL"), strings.Contains(d, "FLOA"), strings.Contains(d, "DOUB"):
		return "REAL"
	}
	return "NUMERIC"
}

// checkAffinities returns an error naming every column of t whose
// declared type has an affinity that would change its field's values.
func (s *SQLite) checkAffinities(ctx context.Context, q querier, t mapreduce.OutputTable) error {
	rows, err := q.QueryContext(ctx, `SELECT name, type FROM pragma_table_info(?)`, t.Name)
	if err != nil {
		return fmt.Errorf("sinks: check table %q in %s: %w", t.Name, s, err)
	}
	declared := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			rows.Close()
			return fmt.Errorf("sinks: check table %q in %s: %w", t.Name, s, err)
		}
		declared[strings.ToLower(name)] = typ
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("sinks: check table %q in %s: %w", t.Name, s, err)
	}
	var wrong []string
	for _, f := range slices.Concat(t.Keys, t.Values) {
		typ := declared[strings.ToLower(f.Name)]
		want, _ := sqliteType(f)
		allowed, some := sqliteAffinities[f.Type]
		if a := affinity(typ); some && !f.Array && !slices.Contains(allowed, a) {
			wrong = append(wrong, fmt.Sprintf("%q is %s (%s affinity), needs %s", f.Name, typ, a, want))
		}
	}
	if len(wrong) == 0 {
		return nil
	}
	return fmt.Errorf("sinks: table %q in %s has columns whose type would change the job's values: %s; "+
		"SQLite cannot change a column's type: create the table anew with those types, or drop it so that mr creates it",
		t.Name, s, strings.Join(wrong, "; "))
}
