package sources

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/mrengine/mr/internal/sqlname"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
)

// A compound cursor (mapreduce.Input.CursorColumns) on SQLite takes an
// integer order column only, and a NOT NULL integer tie-breaker, unique
// together by the primary key or a unique index on both or either alone.
// SQLite keeps timestamps as text (or reals), whose order is that of
// their spelling: a keyset bound turned back from the engine's int64
// into text would have to match each row's spelling to compare right,
// so a table paged by time stores it as an integer (unixepoch() or
// milliseconds), which SQLite compares as it should.

// describeCompound is Describe for a compound cursor, whose order column
// is cursor.
func (s *SQLite) describeCompound(ctx context.Context, in mapreduce.Input, cols []column, cursor column) (mapreduce.TableInfo, error) {
	var info mapreduce.TableInfo
	order, tieName := in.CursorColumns()
	if tieName == "" || strings.Contains(tieName, ",") {
		return info, errCursor(s, in.Table, in.Cursor, "names %d columns; a compound cursor names two, order and tie-breaker, as in --cursor ts,id", strings.Count(in.Cursor, ",")+1)
	}
	if !strings.Contains(strings.ToUpper(cursor.typ), "INT") {
		return info, errCursor(s, in.Table, order, "has type %q; on SQLite the order column of a compound cursor must be an integer column, "+
			"since SQLite orders text timestamps by their spelling (store the time as an integer, such as unixepoch(), or pick another --cursor)", strings.ToLower(cursor.typ))
	}
	tie, err := findColumns(s, mapreduce.Input{Table: in.Table, Cursor: tieName}, cols, func(c column) string { return c.name }, strings.EqualFold)
	if err != nil {
		return info, err
	}
	rowid := tie.pk == 1 && strings.EqualFold(tie.typ, "INTEGER") // an INTEGER PRIMARY KEY is the rowid, never NULL
	if !strings.Contains(strings.ToUpper(tie.typ), "INT") || !tie.notNull && !rowid {
		return info, errCursor(s, in.Table, tieName, "is the tie-breaker of the compound cursor %q, which must be a NOT NULL integer column; it is %q%s (pick another --cursor)",
			in.Cursor, strings.ToLower(tie.typ), map[bool]string{true: " NOT NULL", false: ""}[tie.notNull])
	}
	unique, err := s.uniquePair(ctx, in.Table, cursor, tie, cols)
	if err != nil {
		return info, err
	}
	if !unique {
		return info, errCursor(s, in.Table, in.Cursor, "must be unique: add a unique index on (%s, %s), or on %s alone, or pick another --cursor",
			sqlname.Quote(order), sqlname.Quote(tieName), sqlname.Quote(tieName))
	}
	o, id, t := sqlname.Quote(cursor.name), sqlname.Quote(tie.name), sqlname.Quote(in.Table)
	var lo, hi any
	var nulls, odd int64
	err = s.db.QueryRowContext(ctx, fmt.Sprintf(`SELECT min(%[1]s), max(%[1]s), count(*), count(*) - count(%[1]s),
		count(*) FILTER (WHERE typeof(%[1]s) NOT IN ('integer', 'null') OR typeof(%[3]s) <> 'integer') FROM %[2]s`, o, t, id)).
		Scan(&lo, &hi, &info.Rows, &nulls, &odd)
	if err != nil {
		return info, s.describeErr(in.Table, err)
	}
	if nulls > 0 {
		return info, errCursorNulls(s, in.Table, order, nulls)
	}
	if odd > 0 {
		return info, errCursor(s, in.Table, in.Cursor, "has %d rows whose order column or tie-breaker is not an integer: store integers only or pick another --cursor", odd)
	}
	if info.Rows > 0 {
		info.Min, info.Max = lo.(int64), hi.(int64)
	}
	if len(in.Exprs) > 0 || in.Where != "" {
		rows, err := s.db.QueryContext(ctx, compoundQuery(in, false), 0, 0, 0)
		if err != nil {
			return info, errUserSQL(s, in.Table, err.Error())
		}
		defer rows.Close()
		types, err := rows.ColumnTypes()
		if err != nil {
			return info, s.describeErr(in.Table, err)
		}
		info.Types = make([]string, len(in.Exprs))
		for i, c := range types[2+len(in.Columns):] {
			info.Types[i] = sqliteTypePG(c.DatabaseTypeName())
		}
	}
	return info, nil
}

// uniquePair reports whether the pair (order, tie) is unique: by the
// primary key, or a unique, non-partial index, whose columns are among
// the two.
func (s *SQLite) uniquePair(ctx context.Context, table string, order, tie column, cols []column) (bool, error) {
	among := func(name string) bool {
		return strings.EqualFold(name, order.name) || strings.EqualFold(name, tie.name)
	}
	pk := false
	for _, c := range cols {
		if c.pk > 0 {
			if !among(c.name) {
				pk = false
				break
			}
			pk = true
		}
	}
	if pk {
		return true, nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_index_list(?1) AS l
		WHERE l."unique" AND NOT l.partial
		AND NOT EXISTS (SELECT 1 FROM pragma_index_info(l.name) AS i
			WHERE i.name IS NULL OR (lower(i.name) <> lower(?2) AND lower(i.name) <> lower(?3)))`, table, order.name, tie.name).Scan(&n)
	if err != nil {
		return false, s.describeErr(table, err)
	}
	return n > 0, nil
}

// ReadChunkAfter appends the rows of one keyset chunk of a compound
// cursor to b (see mapreduce.TieSource), values as ReadChunk gives them.
func (s *SQLite) ReadChunkAfter(ctx context.Context, in mapreduce.Input, r partition.Range, after *int64, limit int, b *mapreduce.Batch) error {
	last, ok := r.Last()
	if !ok {
		return io.EOF
	}
	args := []any{r.Lo, last, limit}
	if after != nil {
		args = append(args, *after)
	}
	rows, err := s.db.QueryContext(ctx, compoundQuery(in, after != nil), args...)
	if err != nil {
		return s.readErr(in.Table, r, err)
	}
	defer rows.Close()
	return s.appendRows(rows, in, r, b)
}

// compoundQuery is the keyset query of ReadChunkAfter, as compoundQueryPG
// has it, with the parameters ?1 first cursor, ?2 last, ?3 limit and,
// when after is set, ?4 the tie-breaker after which the rows at ?1 begin.
// SQLite compares row values since 3.15 and serves (ts, id) > (?, ?) from
// an index on (ts, id).
func compoundQuery(in mapreduce.Input, after bool) string {
	order, tie := in.CursorColumns()
	o, id := sqlname.Quote(order), sqlname.Quote(tie)
	var q strings.Builder
	q.WriteString("SELECT " + o + ", " + id + selectList(sqlname.Quote, in) + fromClause(sqlname.Quote, sqlname.Quote(in.Table), in))
	if after {
		fmt.Fprintf(&q, " WHERE (%s, %s) > (?1, ?4) AND %s <= ?2", o, id, o)
	} else {
		fmt.Fprintf(&q, " WHERE %s >= ?1 AND %s <= ?2", o, o)
	}
	fmt.Fprintf(&q, "%s ORDER BY %s, %s LIMIT ?3", andWhere(in), o, id)
	return q.String()
}
