package sinks

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/cockroachdb/apd/v3"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mrengine/mr/mapreduce"
)

var _ mapreduce.Merger = (*Postgres)(nil)

// mergeSQL are the statements that read the stored rows of a part's keys.
type mergeSQL struct {
	create   string // create the keys table
	keys     pgx.Identifier
	keyCols  []string
	truncate string // empty the keys table for the next part
	read     string // the stored rows of the keys: keys, then cols
	window   string // the keys of the window's stored rows, from $1 on
	delete   string // delete the rows of the keys
}

// mergeStatements writes the statements with which Merge reads the stored
// rows of the parts' keys from the output table out (quoted).
//
// A part's keys are copied (COPY) into a temporary table, ON COMMIT DROP
// and emptied for each part, that the output table is joined with. Its
// name depends on the key columns and their types only, for the reason
// the stage's does (see applyStatements). The keys are read back from it,
// not from the output table, so that they are the very values the engine
// gave, whatever the output column's type.
//
// The alternative, the keys as one array parameter per key column joined
// through unnest($1::bigint[], …), was measured against it (PostgreSQL 15,
// a shared 2-CPU machine; a throwaway test, not kept: daily_rollup-shaped
// keys, 200k stored rows, half of each part's keys stored, COPY and CREATE
// included, median of 5): 2k keys 22ms here against 11ms with unnest, 20k
// 177ms against 94ms, 100k 314ms against 463ms, where the planner picks
// a hash join for the temporary table. The table wins where parts are big,
// as a memory budget makes them, and streams the keys through the same
// conversions as Apply's rows, where unnest needs a second copy of the
// part's keys in client memory, as arrays. ANALYZE of the keys table did
// not pay (127ms against 177ms at 20k keys, 569ms against 314ms at 100k):
// without it the planner still knows the table's size from its pages,
// which is what chooses between index probes and a hash join.
//
// With a lookback window, the keys table first holds the window's stored
// keys that the bucket owns, for the DELETE that joins it. The window's
// keys are read from the output table itself, and its column is compared
// with $1 as the column's own type (the parameter takes it), so that an
// index on the column serves the read.
//
// Every column is read as the type mr creates for its field (a column of
// a wider type that Prepare accepts, numeric for an int64 say, holds only
// such values), except decimals, which are read as text: pgx's binary
// numeric drops the scale of a zero (0.00 reads as 0) and writes integers
// with an exponent (100 as 1E+2), where the text keeps the digits the
// database holds.
func mergeStatements(t mapreduce.OutputTable, cols []mapreduce.Field, out string, w *mapreduce.Window) mergeSQL {
	var defs, keyCols, on, read, windowKeys []string
	sig := fnv.New64a()
	for _, f := range t.Keys {
		q := ident(f.Name)
		fmt.Fprintf(sig, "%s %s,", q, postgresType(f))
		defs = append(defs, q+" "+postgresType(f))
		keyCols = append(keyCols, f.Name)
		on = append(on, "o."+q+" = k."+q)
		read = append(read, readExpr("k", f))
		windowKeys = append(windowKeys, readExpr("o", f))
	}
	for _, f := range cols {
		read = append(read, readExpr("o", f))
	}
	name := fmt.Sprintf("mr_keys_%016x", sig.Sum64())
	keys := pgx.Identifier{"pg_temp", name}
	q := mergeSQL{
		create:   fmt.Sprintf("CREATE TEMP TABLE %s (%s) ON COMMIT DROP", ident(name), strings.Join(defs, ", ")),
		keys:     keys,
		keyCols:  keyCols,
		truncate: "TRUNCATE " + keys.Sanitize(),
		read: fmt.Sprintf("SELECT %s FROM %s AS o JOIN %s AS k ON %s",
			strings.Join(read, ", "), out, keys.Sanitize(), strings.Join(on, " AND ")),
	}
	if w != nil {
		q.window = fmt.Sprintf("SELECT %s FROM %s AS o WHERE o.%s >= $1", strings.Join(windowKeys, ", "), out, ident(w.Column))
		q.delete = fmt.Sprintf("DELETE FROM %s AS o USING %s AS k WHERE %s", out, keys.Sanitize(), strings.Join(on, " AND "))
	}
	return q
}

// readExpr is the column name of the table alias as Merge reads it (see
// mergeStatements).
func readExpr(alias string, f mapreduce.Field) string {
	typ := postgresTypes[f.Type]
	if f.Type == mapreduce.TypeDecimal {
		typ = "text"
	}
	return fmt.Sprintf("CAST(%s.%s AS %s)", alias, ident(f.Name), typ)
}

// checkMergeColumns checks what Merge needs of cols before any SQL is
// written: known scalar types, and names that fit an identifier.
func checkMergeColumns(t mapreduce.OutputTable, cols []mapreduce.Field) error {
	for _, f := range cols {
		if f.Array {
			return fmt.Errorf("column %q of table %q is an array, which Merge cannot read back", f.Name, t.Name)
		}
	}
	return checkTable(mapreduce.OutputTable{Name: t.Name, Keys: t.Keys, Values: cols})
}

// Merge applies bucket of an incremental run to t and records it under
// commit, in one transaction (see mapreduce.Merger). With a lookback
// window, it first deletes the window's stored rows that m.Owned says are
// the bucket's (see deleteOwned). Then, for each part, it
// copies the part's keys into a temporary table, streams the rows of t
// that join them (keys, then cols, in no particular order) to m.Merge, and
// copies the rows that returns into the stage; once all parts are staged
// it upserts the stage into t, as Apply does, and records the bucket.
// A bucket recorded for this very table already is left alone: m is not
// read. Any error, including one of m, rolls everything back. Connection
// faults are retried as for Apply until m yields its first part; after
// that the error wraps mapreduce.ErrNotApplied. A retry calls m.Owned
// again, on the stored keys that the new transaction reads: it only
// filters what it is handed, and consumes nothing of the parts.
func (s *Postgres) Merge(ctx context.Context, t mapreduce.OutputTable, cols []mapreduce.Field, commit string, bucket int, m mapreduce.MergeParts) error {
	if err := checkMergeColumns(t, cols); err != nil {
		return s.bucketError("merge", t, commit, bucket, err)
	}
	w := m.Window()
	if w != nil {
		if err := checkWindow(t, w); err != nil {
			return s.bucketError("merge", t, commit, bucket, err)
		}
	}
	parts := &oneShotParts{MergeParts: m}
	width := len(t.Keys) + len(t.Values)
	return s.applyBucket(ctx, "merge", t, commit, bucket, false, func() bool { return parts.started },
		func(ctx context.Context, tx pgx.Tx, q applySQL) (int64, error) {
			mq := mergeStatements(t, cols, q.out, w)
			if _, err := tx.Exec(ctx, mq.create); err != nil {
				return 0, err
			}
			if w != nil {
				if err := deleteOwned(ctx, tx, mq, t.Keys, pgValue(w.From), parts); err != nil {
					return 0, fmt.Errorf("the lookback window from %v: %w", w.From, err)
				}
			}
			var staged int64
			for part := 0; parts.Next(); part++ {
				if part > 0 {
					if _, err := tx.Exec(ctx, mq.truncate); err != nil {
						return 0, err
					}
				}
				if _, err := copyRows(ctx, tx, mq.keys, mq.keyCols, newCopySource(parts.Keys(), len(t.Keys))); err != nil {
					return 0, fmt.Errorf("part %d: the keys: %w", part, err)
				}
				merged, err := readStored(ctx, tx, slices.Concat(t.Keys, cols), parts.Merge, mq.read)
				if err != nil {
					return 0, fmt.Errorf("part %d: %w", part, err)
				}
				n, err := copyRows(ctx, tx, q.stage, q.cols, newCopySource(merged, width))
				if err != nil {
					return 0, fmt.Errorf("part %d: the merged rows: %w", part, err)
				}
				staged += n
			}
			return staged, parts.Err()
		})
}

// deleteOwned deletes the rows of the window's stored keys, those whose
// window column holds from (a pgValue) or later, that m.Owned returns,
// and leaves the keys table empty for the first part.
func deleteOwned(ctx context.Context, tx pgx.Tx, mq mergeSQL, keys []mapreduce.Field, from any, m mapreduce.MergeParts) error {
	owned, err := readStored(ctx, tx, keys, m.Owned, mq.window, from)
	if err != nil {
		return err
	}
	if _, err := copyRows(ctx, tx, mq.keys, mq.keyCols, newCopySource(owned, len(keys))); err != nil {
		return fmt.Errorf("the owned keys: %w", err)
	}
	for _, stmt := range []string{mq.delete, mq.truncate} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// readStored runs the query of stored rows, whose columns are fields,
// and hands them to the engine by take (m.Merge, m.Owned), returning the
// rows that take returns. The stored rows are closed when take returns,
// so that the connection is free for the next statement; an error
// reading them comes first, as take may have wrapped it without %w.
func readStored(ctx context.Context, tx pgx.Tx, fields []mapreduce.Field, take func(mapreduce.OutputRows) (mapreduce.OutputRows, error),
	query string, args ...any) (mapreduce.OutputRows, error) {
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read the stored rows: %w", err)
	}
	stored := newPGStored(rows, fields)
	taken, err := take(stored)
	rows.Close()
	if storedErr := stored.Err(); storedErr != nil {
		return nil, fmt.Errorf("read the stored rows: %w", storedErr)
	}
	if err != nil {
		return nil, err
	}
	return taken, nil
}

// oneShotParts notes whether the parts were touched at all, after which a
// Merge cannot be retried.
type oneShotParts struct {
	mapreduce.MergeParts
	started bool
}

func (p *oneShotParts) Next() bool {
	p.started = true
	return p.MergeParts.Next()
}

// pgStored is the stored rows of a part as mapreduce.OutputRows: it scans
// each row into typed targets, one per field, and converts them to the Go
// types of OutputRows (see mergeStatements for how they are read).
type pgStored struct {
	rows   pgx.Rows
	fields []mapreduce.Field
	dest   []any
	values []any
	n      int
	err    error
}

func newPGStored(rows pgx.Rows, fields []mapreduce.Field) *pgStored {
	dest := make([]any, len(fields))
	for i, f := range fields {
		switch f.Type {
		case mapreduce.TypeInt64:
			dest[i] = new(pgtype.Int8)
		case mapreduce.TypeFloat64:
			dest[i] = new(pgtype.Float8)
		case mapreduce.TypeString, mapreduce.TypeDecimal:
			dest[i] = new(pgtype.Text)
		case mapreduce.TypeBool:
			dest[i] = new(pgtype.Bool)
		case mapreduce.TypeDate:
			dest[i] = new(pgtype.Date)
		case mapreduce.TypeTimestamp:
			dest[i] = new(pgtype.Timestamptz)
		case mapreduce.TypeBytes:
			dest[i] = new([]byte)
		}
	}
	return &pgStored{rows: rows, fields: fields, dest: dest, values: make([]any, len(fields))}
}

func (s *pgStored) Next() bool { return s.err == nil && s.rows.Next() }

func (s *pgStored) Values() ([]any, error) {
	if s.err != nil {
		return nil, s.err
	}
	if err := s.rows.Scan(s.dest...); err != nil {
		s.err = fmt.Errorf("stored row %d: %w", s.n, err)
		return nil, s.err
	}
	for i, d := range s.dest {
		v, err := storedValue(d)
		if err == nil && v != nil && s.fields[i].Type == mapreduce.TypeDecimal {
			v, err = parseDecimal(v.(string))
		}
		if err != nil {
			s.err = fmt.Errorf("stored row %d: column %q %w", s.n, s.fields[i].Name, err) // err says "holds …"
			return nil, s.err
		}
		s.values[i] = v
	}
	s.n++
	return s.values, nil
}

func (s *pgStored) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.rows.Err()
}

// errInfinite is a stored date or timestamp of infinity, which no field
// value is.
var errInfinite = errors.New("holds an infinite value, which no field of the job can: change or delete the row")

// storedValue is the Go value of a scan target of newPGStored, nil for
// NULL; a decimal is still its text.
func storedValue(dest any) (any, error) {
	switch d := dest.(type) {
	case *pgtype.Int8:
		if d.Valid {
			return d.Int64, nil
		}
	case *pgtype.Float8:
		if d.Valid {
			return d.Float64, nil
		}
	case *pgtype.Text:
		if d.Valid {
			return d.String, nil
		}
	case *pgtype.Bool:
		if d.Valid {
			return d.Bool, nil
		}
	case *pgtype.Date:
		if d.Valid && d.InfinityModifier != pgtype.Finite {
			return nil, errInfinite
		}
		if d.Valid {
			return mapreduce.DateOf(d.Time), nil
		}
	case *pgtype.Timestamptz:
		if d.Valid && d.InfinityModifier != pgtype.Finite {
			return nil, errInfinite
		}
		if d.Valid {
			return d.Time.UTC(), nil
		}
	case *[]byte:
		if *d != nil { // pgx scans NULL as nil, an empty bytea as an empty slice
			return *d, nil
		}
	}
	return nil, nil
}

// parseDecimal reads the exact decimal text, keeping its scale: 1.50 has
// the coefficient 150 and the exponent -2.
func parseDecimal(text string) (*apd.Decimal, error) {
	d, _, err := apd.NewFromString(text)
	if err != nil {
		return nil, fmt.Errorf("holds %.40q, which is no decimal (%w)", text, err)
	}
	return d, nil
}
