package sources

import (
	"fmt"
	"strings"

	"github.com/mrengine/mr/mapreduce"
)

// SchemaError reports a source table that cannot be read as asked: a
// missing table or column, a cursor column that is not a unique integer
// column free of NULLs, or (for Postgres.Mark) one that no sequence fills
// in a way a high-water mark can stand on. Retrying does not help: its message says what to
// change. Every backend builds it with the constructors below, so the
// messages read the same for every database.
type SchemaError struct {
	Table  string // the table as the job or --table names it
	Column string // the column at fault; empty when the table is missing
	msg    string
}

// Error returns the message, which names the thing at fault and what to do.
func (e *SchemaError) Error() string { return "sources: " + e.msg }

func errNoTable(src fmt.Stringer, table string) error {
	return &SchemaError{Table: table,
		msg: fmt.Sprintf("table %q not found in %s (check --table)", table, src)}
}

// errNoColumn reports a missing input column, listing the columns the
// table has. cursor tells which flag to point the user to.
func errNoColumn(src fmt.Stringer, table, column string, have []string, cursor bool) error {
	hint := "check --table, or the job's Input.Columns"
	if cursor {
		hint = "check --cursor"
	}
	return &SchemaError{Table: table, Column: column,
		msg: fmt.Sprintf("column %q not found in table %q of %s; it has columns %s (%s)",
			column, table, src, strings.Join(have, ", "), hint)}
}

func errCursor(src fmt.Stringer, table, column, format string, args ...any) error {
	return &SchemaError{Table: table, Column: column,
		msg: fmt.Sprintf("cursor column %q of table %q in %s ", column, table, src) + fmt.Sprintf(format, args...)}
}

// errCursorType reports a cursor column of another type than integer. The
// type is in lower case, as PostgreSQL spells it; SQLite reports it upper.
func errCursorType(src fmt.Stringer, table, column, typ string) error {
	return errCursor(src, table, column, "has type %q; it must be an integer column (pick another --cursor)", strings.ToLower(typ))
}

func errCursorNotUnique(src fmt.Stringer, table, column string) error {
	return errCursor(src, table, column, "must be unique: add a unique index or pick another --cursor")
}

func errCursorNulls(src fmt.Stringer, table, column string, n int64) error {
	return errCursor(src, table, column, "has %d NULL values: fill them or pick another --cursor", n)
}

// errCursorValue reports a cursor value that is not an integer, which a
// dynamically typed database such as SQLite lets a row hold.
func errCursorValue(src fmt.Stringer, table, column string, v any) error {
	return errCursor(src, table, column, "holds the non-integer value %#v: store integers only or pick another --cursor", v)
}

// findColumns looks up the cursor and every column of in among a table's
// columns cols, where name gives a column's name and equal compares names
// the way the database does. It returns the cursor's column, or the error
// of the first one missing, which lists the table's columns.
func findColumns[C any](src fmt.Stringer, in mapreduce.Input, cols []C, name func(C) string, equal func(a, b string) bool) (C, error) {
	find := func(want string) (C, bool) {
		for _, c := range cols {
			if equal(name(c), want) {
				return c, true
			}
		}
		var zero C
		return zero, false
	}
	missing := func(want string, cursor bool) error {
		names := make([]string, len(cols))
		for i, c := range cols {
			names[i] = name(c)
		}
		return errNoColumn(src, in.Table, want, names, cursor)
	}
	order, _ := in.CursorColumns() // a compound cursor's tie-breaker is its caller's to find
	cursor, ok := find(order)
	if !ok {
		return cursor, missing(order, true)
	}
	for _, col := range in.Columns {
		if _, ok := find(col); !ok {
			return cursor, missing(col, false)
		}
	}
	return cursor, nil
}

// errUserSQL reports expressions or a condition of in (user SQL) that the
// database refused, with its own message, which names the culprit.
func errUserSQL(src fmt.Stringer, table, dbMsg string) error {
	return &SchemaError{Table: table,
		msg: fmt.Sprintf("reading table %q in %s: %s (in the query's expressions or WHERE condition)", table, src, dbMsg)}
}
