package sources

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/mrengine/mr/internal/dburl"
	"github.com/mrengine/mr/internal/sqlname"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
)

// SQLite is a Source reading a table of an existing SQLite database file.
// It is safe for concurrent use: each call takes its own connection from a
// pool, and the database is in WAL mode, so readers never block each other
// nor a sink writing to the same file.
type SQLite struct {
	name string // dburl.SQLiteName of the path: String
	db   *sql.DB
}

var (
	_ mapreduce.Source    = (*SQLite)(nil)
	_ mapreduce.TieSource = (*SQLite)(nil)
)

// OpenSQLite opens the SQLite database at path for reading. The file must
// exist: a source is never created empty. Close it when done.
func OpenSQLite(path string) (*SQLite, error) {
	s := &SQLite{name: dburl.SQLiteName(path)}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sources: %s: no such file", s)
	}
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		return nil, fmt.Errorf("sources: %s: %w", s, err)
	}
	// Every map task holds one connection for the length of a chunk query.
	// The pure Go SQLite computes on the calling goroutine, so connections
	// beyond the CPUs only queue; but all of them stay open, since the
	// default of two idle connections would make every other query reopen
	// the file and rerun its pragmas.
	conns := max(4, runtime.GOMAXPROCS(0))
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	if err := db.Ping(); err != nil { // a file that is not a database fails here
		db.Close()
		return nil, fmt.Errorf("sources: %s: %w", s, err)
	}
	s.db = db
	return s, nil
}

// sqliteDSN is the driver's name for the database at path: a file: URI,
// so that mode=rw refuses to create a missing file, with the characters a
// URI reserves escaped. WAL lets readers run beside a writer; the busy
// timeout covers the moments a reader must wait for one (WAL recovery, a
// journal mode change).
func sqliteDSN(path string) string {
	return sqlname.SQLiteURI(path, "mode=rw&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

// String returns "sqlite:" and the absolute, cleaned path of the file, its
// canonical name: part of a run's identity.
func (s *SQLite) String() string { return s.name }

// column is a column of a table as PRAGMA table_info reports it.
type column struct {
	name    string
	typ     string // the declared type, as written
	pk      int    // position in the primary key, from 1; 0 if not in it
	notNull bool
}

// Describe checks in against the table and returns the cursor's bounds,
// from one scan of the cursor column that also counts NULL and non-integer
// values. Names are matched the way SQLite does, without regard to case.
func (s *SQLite) Describe(ctx context.Context, in mapreduce.Input) (mapreduce.TableInfo, error) {
	var info mapreduce.TableInfo
	cols, err := s.columns(ctx, in.Table)
	if err != nil {
		return info, err
	}
	if len(cols) == 0 {
		return info, errNoTable(s, in.Table)
	}
	cursor, err := findColumns(s, in, cols, func(c column) string { return c.name }, strings.EqualFold)
	if err != nil {
		return info, err
	}
	if in.Compound() {
		return s.describeCompound(ctx, in, cols, cursor)
	}
	// SQLite's rule: a declared type containing "INT" has integer affinity.
	if !strings.Contains(strings.ToUpper(cursor.typ), "INT") {
		return info, errCursorType(s, in.Table, in.Cursor, cursor.typ)
	}
	if unique, err := s.unique(ctx, in.Table, cursor, cols); err != nil {
		return info, err
	} else if !unique {
		return info, errCursorNotUnique(s, in.Table, in.Cursor)
	}

	c, t := sqlname.Quote(in.Cursor), sqlname.Quote(in.Table)
	var lo, hi any
	var nulls, odd int64
	err = s.db.QueryRowContext(ctx, fmt.Sprintf(`SELECT min(%[1]s), max(%[1]s), count(*), count(*) - count(%[1]s),
		count(*) FILTER (WHERE typeof(%[1]s) NOT IN ('integer', 'null')) FROM %[2]s`, c, t)).
		Scan(&lo, &hi, &info.Rows, &nulls, &odd)
	if err != nil {
		return info, s.describeErr(in.Table, err)
	}
	if nulls > 0 {
		return info, errCursorNulls(s, in.Table, in.Cursor, nulls)
	}
	if odd > 0 {
		var v any
		err := s.db.QueryRowContext(ctx, fmt.Sprintf(
			`SELECT %[1]s FROM %[2]s WHERE typeof(%[1]s) NOT IN ('integer', 'null') LIMIT 1`, c, t)).Scan(&v)
		if err != nil {
			return info, s.describeErr(in.Table, err)
		}
		return info, errCursorValue(s, in.Table, in.Cursor, v)
	}
	if info.Rows > 0 {
		info.Min, info.Max = lo.(int64), hi.(int64)
	}
	info.Types, err = s.exprTypes(ctx, in)
	return info, err
}

// exprTypes checks in's expressions and condition by running the range
// query over no rows, and returns the expressions' types: the declared
// type of a plain column, in PostgreSQL's spelling, and "" for any other
// expression, whose type SQLite cannot tell before it has a value.
func (s *SQLite) exprTypes(ctx context.Context, in mapreduce.Input) ([]string, error) {
	if len(in.Exprs) == 0 && in.Where == "" {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, chunkQuery(in), 0, 0, 0)
	if err != nil {
		return nil, errUserSQL(s, in.Table, err.Error())
	}
	defer rows.Close()
	cols, err := rows.ColumnTypes()
	if err != nil {
		return nil, s.describeErr(in.Table, err)
	}
	types := make([]string, len(in.Exprs))
	for i, c := range cols[1+len(in.Columns):] {
		types[i] = sqliteTypePG(c.DatabaseTypeName())
	}
	return types, rows.Err()
}

// sqliteTypePG spells a declared SQLite column type as the PostgreSQL type
// of the values the driver gives for it, by SQLite's affinity rules (and
// the driver's, for dates and times); "" when it is none of them.
func sqliteTypePG(decl string) string {
	d := strings.ToUpper(decl)
	switch {
	case d == "":
		return ""
	case strings.Contains(d, "INT"):
		return "bigint"
	case strings.Contains(d, "CHAR"), strings.Contains(d, "CLOB"), strings.Contains(d, "TEXT"):
		return "text"
	case strings.Contains(d, "BLOB"):
		return "bytea"
	case strings.Contains(d, "REAL"), strings.Contains(d, "FLOA"), strings.Contains(d, "DOUB"):
		return "double precision"
	case d == "DATE":
		return "date"
	case d == "DATETIME", d == "TIMESTAMP", d == "TIMESTAMPTZ", d == "TIMESTAMP WITH TIME ZONE":
		return "timestamp with time zone"
	case d == "BOOLEAN", d == "BOOL":
		return "boolean"
	case strings.Contains(d, "NUMERIC"), strings.Contains(d, "DECIMAL"):
		return "numeric"
	}
	return ""
}

// describeErr wraps an error of the database while describing table.
func (s *SQLite) describeErr(table string, err error) error {
	return fmt.Errorf("sources: describe table %q in %s: %w", table, s, err)
}

// columns returns the columns of table, none if it does not exist.
func (s *SQLite) columns(ctx context.Context, table string) ([]column, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, type, pk, "notnull" FROM pragma_table_info(?)`, table)
	if err != nil {
		return nil, s.describeErr(table, err)
	}
	defer rows.Close()
	var cols []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.name, &c.typ, &c.pk, &c.notNull); err != nil {
			return nil, s.describeErr(table, err)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.describeErr(table, err)
	}
	return cols, nil
}

// unique reports whether cursor alone is the table's primary key or has a
// unique index of its own. A partial index does not count: it leaves the
// rows outside its WHERE clause unconstrained.
func (s *SQLite) unique(ctx context.Context, table string, cursor column, cols []column) (bool, error) {
	pks := 0
	for _, c := range cols {
		if c.pk > 0 {
			pks++
		}
	}
	if pks == 1 && cursor.pk == 1 {
		return true, nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_index_list(?1) AS l
		WHERE l."unique" AND NOT l.partial
		AND (SELECT count(*) FROM pragma_index_info(l.name)) = 1
		AND (SELECT name FROM pragma_index_info(l.name)) = ?2`, table, cursor.name).Scan(&n)
	if err != nil {
		return false, s.describeErr(table, err)
	}
	return n > 0, nil
}

// ReadChunk appends the rows of one keyset chunk to b, values as the
// driver gives them: int64, float64, string, []byte, time.Time (for
// columns declared DATE, DATETIME or TIMESTAMP) or nil. It returns
// io.EOF when r holds no rows.
func (s *SQLite) ReadChunk(ctx context.Context, in mapreduce.Input, r partition.Range, limit int, b *mapreduce.Batch) error {
	if in.Compound() {
		return s.ReadChunkAfter(ctx, in, r, nil, limit, b)
	}
	last, ok := r.Last()
	if !ok {
		return io.EOF
	}
	rows, err := s.db.QueryContext(ctx, chunkQuery(in), r.Lo, last, limit)
	if err != nil {
		return s.readErr(in.Table, r, err)
	}
	defer rows.Close()
	return s.appendRows(rows, in, r, b)
}

// appendRows scans every row of a chunk's query into b: the cursor, with
// a compound cursor its tie-breaker, then the values. It returns io.EOF
// for a chunk without rows.
func (s *SQLite) appendRows(rows *sql.Rows, in mapreduce.Input, r partition.Range, b *mapreduce.Batch) error {
	compound := in.Compound()
	var cursor, tie any
	values := make([]any, len(in.Columns)+len(in.Exprs))
	dest := []any{&cursor}
	if compound {
		dest = append(dest, &tie)
	}
	for i := range values {
		dest = append(dest, &values[i])
	}
	n := 0
	for rows.Next() {
		// Scanning into an *any copies a []byte, so values stay valid
		// after the next Scan (only sql.RawBytes would alias the driver).
		if err := rows.Scan(dest...); err != nil {
			return s.readErr(in.Table, r, err)
		}
		c, ok := cursor.(int64)
		if !ok {
			return errCursorValue(s, in.Table, in.Cursor, cursor)
		}
		if compound {
			id, ok := tie.(int64)
			if !ok {
				return errCursorValue(s, in.Table, in.Cursor, tie)
			}
			b.AppendTie(c, id)
		} else {
			b.Append(c)
		}
		for i, v := range values {
			b.Set(i, v)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return s.readErr(in.Table, r, err)
	}
	if n == 0 {
		return io.EOF
	}
	return nil
}

// readErr wraps an error of the database while reading r of table.
func (s *SQLite) readErr(table string, r partition.Range, err error) error {
	return fmt.Errorf("sources: read %s of table %q in %s: %w", r, table, s, err)
}

// chunkQuery is the keyset query of ReadChunk, with in's expressions and
// condition as chunkQueryPG has them; its parameters are the range's first
// and last cursor values, both included (see chunkQueryPG), and the limit. A SELECT cannot write to an SQLite database, so user SQL needs no
// read-only transaction here.
func chunkQuery(in mapreduce.Input) string {
	c := sqlname.Quote(in.Cursor)
	var q strings.Builder
	q.WriteString("SELECT " + c + selectList(sqlname.Quote, in) + fromClause(sqlname.Quote, sqlname.Quote(in.Table), in))
	fmt.Fprintf(&q, " WHERE %s >= ? AND %s <= ?%s ORDER BY %s LIMIT ?", c, c, andWhere(in), c)
	return q.String()
}
