package sources

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/mrengine/mr/internal/sqlname"
	"github.com/mrengine/mr/mapreduce"
)

var _ mapreduce.Marker = (*SQLite)(nil)

// Mark returns a safe high-water mark of in.Cursor (see mapreduce.Marker):
// max(cursor), or math.MinInt64 for an empty table.
//
// max is safe here, where it is not in PostgreSQL, because SQLite has one
// writer at a time: a write transaction holds the database's write lock
// from its first write to its end, and in WAL mode it can begin only on
// the latest committed state (one that read an older snapshot fails with
// SQLITE_BUSY_SNAPSHOT). Mark's one SELECT is its own read transaction and
// sees one committed state. A writer still open then has committed
// nothing yet and writes after that state, so its rows take cursors as
// every later one does, from a table whose largest cursor is at least
// the mark: a rowid (INTEGER PRIMARY KEY) is one above the largest, an
// application numbering rows in its write transaction sees the latest
// ones. Nothing commits out of order.
//
// What Mark cannot see are rows written later with a cursor chosen at or
// below the mark: explicit values, and a rowid that SQLite hands out again
// once the row with the largest one is deleted, as it does for tables
// without AUTOINCREMENT (AUTOINCREMENT never reuses one). An empty
// table's mark lies below every cursor but math.MinInt64 itself.
func (s *SQLite) Mark(ctx context.Context, in mapreduce.Input) (int64, error) {
	cols, err := s.columns(ctx, in.Table)
	if err != nil {
		return 0, err
	}
	if len(cols) == 0 {
		return 0, errNoTable(s, in.Table)
	}
	cursor, err := findColumns(s, mapreduce.Input{Table: in.Table, Cursor: in.Cursor}, cols,
		func(c column) string { return c.name }, strings.EqualFold)
	if err != nil {
		return 0, err
	}
	var hi any
	err = s.db.QueryRowContext(ctx, fmt.Sprintf(`SELECT max(%s) FROM %s`, sqlname.Quote(cursor.name), sqlname.Quote(in.Table))).Scan(&hi)
	if err != nil {
		return 0, fmt.Errorf("sources: mark table %q in %s: %w", in.Table, s, err)
	}
	switch v := hi.(type) {
	case nil: // empty
		return math.MinInt64, nil
	case int64:
		return v, nil
	default: // a real above every integer, or any text or blob, which sort above numbers
		return 0, errCursorValue(s, in.Table, in.Cursor, v)
	}
}
