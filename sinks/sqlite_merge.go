package sinks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/mrengine/mr/internal/sqlname"
	"github.com/mrengine/mr/mapreduce"
)

var _ mapreduce.Merger = (*SQLite)(nil)

// sqliteMergeKeys is the temporary table that holds the keys of a part
// while Merge reads their stored rows. Temporary tables belong to the
// connection, and a connection runs one transaction at a time, so one name
// serves every Merge; it is created and dropped inside the transaction,
// which takes it away on a rollback too.
const sqliteMergeKeys = "mr_merge_keys"

// sqliteMergeSQL are the statements that read the stored rows of a part's
// keys.
type sqliteMergeSQL struct {
	create string // create the keys table
	insert func(n int) string
	empty  string // empty the keys table for the next part
	read   string // the stored rows of the keys: keys, then cols
	window string // the keys of the window's stored rows, from ? on
	delete string // delete the rows of the keys
	drop   string
}

// sqliteMergeStatements writes the statements with which Merge reads the
// stored rows of t's keys. The keys table has the column types mr gives
// an output table, so that its values compare with the output table's as
// stored. The read walks the keys table and looks each key up in the
// output table's key index (CROSS JOIN fixes that order in SQLite), and
// reads the keys back from the keys table: the very values the engine
// gave, whatever the output column's affinity.
//
// With a lookback window, the keys table first holds the window's stored
// keys that the bucket owns, whose rows the DELETE looks up by the key
// index as the read does. The window's column is compared with From as
// sqlValue stores it, as text for dates and timestamps, which is exact:
// dates are YYYY-MM-DD and timestamps have a fixed six fractional digits
// in UTC (see timestampLayout), so that text order is time order, to the
// microsecond. julianday() would not do: SQLite's date functions keep
// milliseconds only. Text that does not read as a number stays text in a
// column of any affinity, and so does the parameter when it takes the
// column's, so the comparison is one of text however the column was
// declared.
func sqliteMergeStatements(t mapreduce.OutputTable, cols []mapreduce.Field, w *mapreduce.Window) sqliteMergeSQL {
	keys := "temp." + sqlname.Quote(sqliteMergeKeys)
	var defs, keyCols, on, read, windowKeys []string
	for _, f := range t.Keys {
		q := sqlname.Quote(f.Name)
		typ, _ := sqliteType(f)
		defs = append(defs, q+" "+typ)
		keyCols = append(keyCols, q)
		on = append(on, "o."+q+" = k."+q)
		read = append(read, "k."+q)
		windowKeys = append(windowKeys, "o."+q)
	}
	for _, f := range cols {
		read = append(read, "o."+sqlname.Quote(f.Name))
	}
	q := sqliteMergeSQL{
		create: fmt.Sprintf("CREATE TEMP TABLE %s (%s)", sqlname.Quote(sqliteMergeKeys), strings.Join(defs, ", ")),
		insert: func(n int) string { return insertSQL(keys, keyCols, n) },
		empty:  "DELETE FROM " + keys,
		read: fmt.Sprintf("SELECT %s FROM %s AS k CROSS JOIN %s AS o WHERE %s",
			strings.Join(read, ", "), keys, sqlname.Quote(t.Name), strings.Join(on, " AND ")),
		drop: "DROP TABLE IF EXISTS " + keys,
	}
	if w != nil {
		list := strings.Join(keyCols, ", ")
		q.window = fmt.Sprintf("SELECT %s FROM %s AS o WHERE o.%s >= ?", strings.Join(windowKeys, ", "), sqlname.Quote(t.Name), sqlname.Quote(w.Column))
		q.delete = fmt.Sprintf("DELETE FROM %s WHERE (%s) IN (SELECT %s FROM %s)", sqlname.Quote(t.Name), list, list, keys)
	}
	return q
}

// Merge applies bucket of an incremental run to t and records it under
// commit, in one transaction (see mapreduce.Merger). With a lookback
// window, it first deletes the window's stored rows that m.Owned says are
// the bucket's (see deleteOwned). Then, for each part, it writes the
// part's keys into a temporary table, streams the rows of t
// that join them (keys, then cols, in no particular order) to m.Merge, and
// upserts the rows that returns as Apply does; then it records the
// bucket. A bucket recorded for this very table already is left alone: m
// is not read. Values are read back as the types of OutputRows from what
// Apply stores (see sqlValue). Any error, including one of m, rolls
// everything back.
func (s *SQLite) Merge(ctx context.Context, t mapreduce.OutputTable, cols []mapreduce.Field, commit string, bucket int, m mapreduce.MergeParts) error {
	fail := func(err error) error {
		return fmt.Errorf("sinks: merge bucket %d of commit %q to table %q in %s: %w", bucket, commit, t.Name, s, err)
	}
	if _, err := createSQL(mapreduce.OutputTable{Name: t.Name, Keys: t.Keys, Values: cols}); err != nil {
		return fail(err)
	}
	for _, f := range cols {
		if f.Array {
			return fail(fmt.Errorf("column %q of table %q is an array, which Merge cannot read back", f.Name, t.Name))
		}
	}
	w := m.Window()
	if w != nil {
		if err := checkWindow(t, w); err != nil {
			return fail(err)
		}
	}
	q := sqliteMergeStatements(t, cols, w)
	fields := slices.Concat(t.Keys, cols)
	err := s.applyBucket(ctx, t, commit, bucket, func(tx *sql.Tx) (int, error) {
		for _, stmt := range []string{q.drop, q.create} {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return 0, err
			}
		}
		if w != nil {
			if err := s.deleteOwned(ctx, tx, q, t.Keys, sqlValue(w.From), m); err != nil {
				return 0, fmt.Errorf("the lookback window from %v: %w", w.From, err)
			}
		}
		written := 0
		for part := 0; m.Next(); part++ {
			if part > 0 {
				if _, err := tx.ExecContext(ctx, q.empty); err != nil {
					return 0, err
				}
			}
			if _, err := insertRows(ctx, tx, len(t.Keys), q.insert, m.Keys()); err != nil {
				return 0, fmt.Errorf("part %d: the keys: %w", part, err)
			}
			merged, err := s.readStored(ctx, tx, fields, m.Merge, q.read)
			if err != nil {
				return 0, fmt.Errorf("part %d: %w", part, err)
			}
			n, err := upsert(ctx, tx, t, merged)
			if err != nil {
				return 0, fmt.Errorf("part %d: the merged rows: %w", part, err)
			}
			written += n
		}
		if err := m.Err(); err != nil {
			return 0, err
		}
		_, err := tx.ExecContext(ctx, q.drop)
		return written, err
	})
	if err != nil {
		return fail(err)
	}
	return nil
}

// deleteOwned deletes the rows of the window's stored keys, those whose
// window column holds from (a sqlValue) or later, that m.Owned returns,
// and leaves the keys table empty for the first part.
func (s *SQLite) deleteOwned(ctx context.Context, tx *sql.Tx, q sqliteMergeSQL, keys []mapreduce.Field, from any, m mapreduce.MergeParts) error {
	owned, err := s.readStored(ctx, tx, keys, m.Owned, q.window, from)
	if err != nil {
		return err
	}
	if _, err := insertRows(ctx, tx, len(keys), q.insert, owned); err != nil {
		return fmt.Errorf("the owned keys: %w", err)
	}
	for _, stmt := range []string{q.delete, q.empty} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// readStored runs the query of stored rows, whose columns are fields,
// and hands them to the engine by take (m.Merge, m.Owned), returning the
// rows that take returns. The stored rows are closed when take returns;
// an error reading them comes first, as take may have wrapped it without
// %w.
func (s *SQLite) readStored(ctx context.Context, tx *sql.Tx, fields []mapreduce.Field, take func(mapreduce.OutputRows) (mapreduce.OutputRows, error),
	query string, args ...any) (mapreduce.OutputRows, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read the stored rows: %w", err)
	}
	stored := &sqliteStored{rows: rows, fields: fields, dest: make([]any, len(fields)), values: make([]any, len(fields))}
	for i := range stored.dest {
		stored.dest[i] = &stored.values[i]
	}
	taken, err := take(stored)
	closeErr := rows.Close()
	if storedErr := stored.Err(); storedErr != nil {
		return nil, fmt.Errorf("read the stored rows: %w", storedErr)
	}
	if err != nil {
		return nil, err
	}
	if closeErr != nil {
		return nil, fmt.Errorf("read the stored rows: %w", closeErr)
	}
	return taken, nil
}

// sqliteStored is the stored rows of a part as mapreduce.OutputRows, with
// each value converted back from what its column stores (see sqlValue) to
// the Go type of its field.
type sqliteStored struct {
	rows   *sql.Rows
	fields []mapreduce.Field
	dest   []any // pointers to values
	values []any
	n      int
	err    error
}

func (s *sqliteStored) Next() bool { return s.err == nil && s.rows.Next() }

func (s *sqliteStored) Values() ([]any, error) {
	if s.err != nil {
		return nil, s.err
	}
	if err := s.rows.Scan(s.dest...); err != nil {
		s.err = fmt.Errorf("stored row %d: %w", s.n, err)
		return nil, s.err
	}
	for i, f := range s.fields {
		v, err := sqliteStoredValue(f.Type, s.values[i])
		if err != nil {
			s.err = fmt.Errorf("stored row %d: column %q %w", s.n, f.Name, err) // err says "holds …"
			return nil, s.err
		}
		s.values[i] = v
	}
	s.n++
	return s.values, nil
}

func (s *sqliteStored) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.rows.Err()
}

// sqliteStoredValue converts v, a value as the driver reads it from a
// column of a field of type typ, to the field's Go type (see OutputRows),
// the inverse of sqlValue; nil is NULL. Besides what sqlValue stores, it
// takes what the affinities that Prepare accepts make of it (see
// sqliteAffinities): a whole float in an INTEGER or NUMERIC column is an
// integer, and the driver parses the text of a column declared DATE,
// DATETIME or TIMESTAMP into a time.Time.
func sqliteStoredValue(typ mapreduce.Type, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	foreign := func(err error) error {
		if err != nil {
			err = fmt.Errorf(" (%w)", err)
		} else {
			err = errors.New("")
		}
		return fmt.Errorf("holds %.40q (%T), which is no %s value as mr stores it%w: change or delete the row", fmt.Sprint(v), v, typ, err)
	}
	switch x := v.(type) {
	case int64:
		switch typ {
		case mapreduce.TypeInt64:
			return x, nil
		case mapreduce.TypeFloat64:
			return float64(x), nil
		case mapreduce.TypeBool:
			return x != 0, nil
		case mapreduce.TypeDecimal:
			return apd.New(x, 0), nil
		}
	case float64:
		if typ == mapreduce.TypeFloat64 {
			return x, nil
		}
	case bool:
		if typ == mapreduce.TypeBool {
			return x, nil
		}
	case string:
		switch typ {
		case mapreduce.TypeString:
			return x, nil
		case mapreduce.TypeDate:
			d, err := time.Parse(time.DateOnly, x)
			if err != nil {
				return nil, foreign(err)
			}
			return mapreduce.DateOf(d), nil
		case mapreduce.TypeTimestamp:
			ts, err := time.Parse(time.RFC3339Nano, x)
			if err != nil {
				return nil, foreign(err)
			}
			return ts.UTC(), nil
		case mapreduce.TypeDecimal:
			d, _, err := apd.NewFromString(x)
			if err != nil {
				return nil, foreign(err)
			}
			return d, nil
		}
	case time.Time:
		switch typ {
		case mapreduce.TypeDate:
			return mapreduce.DateOf(x), nil
		case mapreduce.TypeTimestamp:
			return x.UTC(), nil
		}
	case []byte:
		if typ == mapreduce.TypeBytes {
			if x == nil { // the driver reads an empty blob as nil; NULL is not a []byte
				x = []byte{}
			}
			return x, nil
		}
	}
	return nil, foreign(nil)
}
