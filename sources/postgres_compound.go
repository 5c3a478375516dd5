package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
)

// A compound cursor (mapreduce.Input.CursorColumns, "ts,id") on
// PostgreSQL: the order column is an integer, date, timestamp or
// timestamptz column, the tie-breaker a NOT NULL integer column, and the
// pair must be unique by a valid, non-partial unique index whose key
// columns are both of them (in either order), or either alone: each of
// those makes the pair unique, and nothing short of an index guarantees
// it for rows written later. Queries order by (ts, id), so an index on
// (ts, id) serves them; without one each chunk sorts its range.

// orderKind is the type of a compound cursor's order column, which says
// how its values map to the engine's int64 cursor.
type orderKind uint8

const (
	orderInteger     orderKind = iota // the value itself
	orderTimestamptz                  // microseconds since 1970-01-01 00:00 UTC
	orderTimestamp                    // the same, taking the timestamp as UTC
	orderDate                         // days since 1970-01-01
)

// orderKindOf returns the kind of an order column of base type base, as
// format_type prints it, and false for a type a compound cursor does not
// take.
func orderKindOf(base string) (orderKind, bool) {
	switch base {
	case "smallint", "integer", "bigint":
		return orderInteger, true
	case "timestamp with time zone":
		return orderTimestamptz, true
	case "timestamp without time zone":
		return orderTimestamp, true
	case "date":
		return orderDate, true
	}
	return 0, false
}

// cast is the SQL type a query's bounds on the order column take.
func (k orderKind) cast() string {
	return [...]string{"int8", "timestamptz", "timestamp", "date"}[k]
}

// param is the bound value v of the engine's cursor as a query parameter
// of type cast: the inverse of rowDecoder.orderInt64.
func (k orderKind) param(v int64) any {
	switch k {
	case orderTimestamptz, orderTimestamp: // pgx sends a timestamp's UTC wall time
		return time.UnixMicro(v).UTC()
	case orderDate:
		return time.Unix(v*86400, 0).UTC()
	}
	return v
}

// int64SQL is the SQL of the engine's cursor of the order column's value
// e, as orderInt64 decodes it. It is exact on every PostgreSQL version:
// the whole seconds of epoch are an integral float8, and microseconds
// (the seconds field times 10⁶) an integer.
func (k orderKind) int64SQL(e string) string {
	switch k {
	case orderTimestamptz, orderTimestamp:
		return fmt.Sprintf("(extract(epoch FROM date_trunc('second', %[1]s))::int8 * 1000000 + extract(microseconds FROM %[1]s)::int8 %% 1000000)", e)
	case orderDate:
		return fmt.Sprintf("((%s) - DATE '1970-01-01')::int8", e)
	}
	return fmt.Sprintf("(%s)::int8", e)
}

// describeCompound is describe for a compound cursor, whose order column
// is cursor.
func (s *Postgres) describeCompound(ctx context.Context, in mapreduce.Input, rel relation, cols []pgColumn, cursor pgColumn) (mapreduce.TableInfo, error) {
	var info mapreduce.TableInfo
	order, tieName := in.CursorColumns()
	if tieName == "" || strings.Contains(tieName, ",") {
		return info, errCursor(s, in.Table, in.Cursor, "names %d columns; a compound cursor names two, order and tie-breaker, as in --cursor ts,id", strings.Count(in.Cursor, ",")+1)
	}
	kind, ok := orderKindOf(cursor.base)
	if !ok {
		return info, errCursor(s, in.Table, order, "has type %q; the order column of a compound cursor must be an integer, date, timestamp or timestamptz column (pick another --cursor)", cursor.typ)
	}
	tie, err := findColumns(s, mapreduce.Input{Table: in.Table, Cursor: tieName}, cols, func(c pgColumn) string { return c.name }, func(a, b string) bool { return a == b })
	if err != nil {
		return info, err
	}
	if !tie.integer || !tie.notNull {
		return info, errCursor(s, in.Table, tieName, "is the tie-breaker of the compound cursor %q, which must be a NOT NULL integer column; it is %s%s (pick another --cursor)",
			in.Cursor, tie.typ, map[bool]string{true: " NOT NULL", false: ""}[tie.notNull])
	}
	var unique bool
	err = s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_index
		WHERE indrelid = $1 AND indisunique AND indisvalid AND indpred IS NULL AND indexprs IS NULL
		AND (indkey::int2[])[0:indnkeyatts-1] <@ ARRAY[$2, $3]::int2[])`, rel.oid, cursor.num, tie.num).Scan(&unique)
	if err != nil {
		return info, err
	}
	if !unique {
		return info, errCursor(s, in.Table, in.Cursor, "must be unique: add a unique index on (%s, %s), or on %s alone, or pick another --cursor",
			quotePG(order), quotePG(tieName), quotePG(tieName))
	}
	t, _ := tableIdent(in.Table)
	o := quotePG(order)
	if !cursor.notNull {
		var nulls int64
		if err := s.pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s IS NULL`, t, o)).Scan(&nulls); err != nil {
			return info, err
		}
		if nulls > 0 {
			return info, errCursorNulls(s, in.Table, order, nulls)
		}
	}
	finite := "true"
	if kind != orderInteger {
		finite = "coalesce(isfinite(min(" + o + ")) AND isfinite(max(" + o + ")), true)"
	}
	var lo, hi *int64
	var ok2 bool
	err = s.pool.QueryRow(ctx, fmt.Sprintf(`SELECT CASE WHEN f THEN %s END, CASE WHEN f THEN %s END, f
		FROM (SELECT min(%s) AS lo, max(%s) AS hi, %s AS f FROM %s) AS m`,
		kind.int64SQL("lo"), kind.int64SQL("hi"), o, o, finite, t)).Scan(&lo, &hi, &ok2)
	if err != nil {
		return info, err
	}
	if !ok2 {
		return info, errCursor(s, in.Table, order, "holds infinity, which has no place in the order of a compound cursor: delete or change those rows, or pick another --cursor")
	}
	s.orders.Store(orderKey(in), kind)
	q := compoundQueryPG(t, in, kind, false)
	if info.Types, err = s.exprTypesOf(ctx, in, q, 2, kind.param(0), kind.param(0), 0); err != nil || lo == nil {
		return info, err // or empty
	}
	info.Min, info.Max = *lo, *hi
	info.Rows = rel.estimate()
	if info.Rows < 1 {
		if err := s.pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s`, t)).Scan(&info.Rows); err != nil {
			return info, err
		}
	}
	return info, nil
}

func orderKey(in mapreduce.Input) string { return in.Table + "\x00" + in.Cursor }

// orderKind returns the kind of in's order column: Describe's, or looked
// up once in the catalog (a resumed run does not describe its table).
func (s *Postgres) orderKind(ctx context.Context, in mapreduce.Input) (orderKind, error) {
	if k, ok := s.orders.Load(orderKey(in)); ok {
		return k.(orderKind), nil
	}
	var kind orderKind
	err := s.retry(ctx, func(ctx context.Context) error {
		rel, ok, err := s.resolve(ctx, in.Table)
		if err != nil {
			return err
		}
		if !ok {
			return errNoTable(s, in.Table)
		}
		cols, err := s.columns(ctx, rel)
		if err != nil {
			return err
		}
		cursor, err := findColumns(s, mapreduce.Input{Table: in.Table, Cursor: in.Cursor}, cols, func(c pgColumn) string { return c.name }, func(a, b string) bool { return a == b })
		if err != nil {
			return err
		}
		if kind, ok = orderKindOf(cursor.base); !ok {
			order, _ := in.CursorColumns()
			return errCursor(s, in.Table, order, "has type %q; the order column of a compound cursor must be an integer, date, timestamp or timestamptz column", cursor.typ)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.orders.Store(orderKey(in), kind)
	return kind, nil
}

// compoundQueryPG is the keyset query of a compound cursor on the quoted
// table t: the order column, the tie-breaker, in's columns and
// expressions. Its parameters are the range's first and last cursor
// values ($1, $2, both included, as cast), the limit ($3, NULL for none)
// and, when after is set, the tie-breaker after which the rows at $1
// begin ($4).
func compoundQueryPG(t string, in mapreduce.Input, kind orderKind, after bool) string {
	order, tie := in.CursorColumns()
	o, id, c := quotePG(order), quotePG(tie), kind.cast()
	var q strings.Builder
	q.WriteString("SELECT " + o + ", " + id + selectList(quotePG, in) + fromClause(quotePG, t, in))
	if after {
		fmt.Fprintf(&q, " WHERE (%s, %s) > ($1::%s, $4::int8) AND %s <= $2::%s", o, id, c, o, c)
	} else {
		fmt.Fprintf(&q, " WHERE %s >= $1::%s AND %s <= $2::%s", o, c, o, c)
	}
	fmt.Fprintf(&q, "%s ORDER BY %s, %s LIMIT $3::int8", andWhere(in), o, id)
	return q.String()
}

// compoundRange checks the arguments of ReadChunkAfter and StreamAfter
// and returns the quoted table and the order column's kind.
func (s *Postgres) compoundRange(ctx context.Context, in mapreduce.Input, r partition.Range, limit int) (string, orderKind, error) {
	if in.GroupBy > 0 {
		return "", 0, fmt.Errorf("sources: read %s of table %q: a range aggregated at the source (Input.GroupBy) has no compound cursor", r, in.Table)
	}
	if _, err := s.rangeQuery(in, r, limit); err != nil {
		return "", 0, err
	}
	t, _ := tableIdent(in.Table)
	kind, err := s.orderKind(ctx, in)
	return t, kind, err
}

// queryAfter runs the compound query over the rows of [lo, last] past
// (lo, *after), at most limit of them (nil: all).
func (s *Postgres) queryAfter(ctx context.Context, in mapreduce.Input, t string, kind orderKind, lo int64, after *int64, last int64, limit any) (rows pgx.Rows, done func(), err error) {
	args := []any{kind.param(lo), kind.param(last), limit}
	if after != nil {
		args = append(args, *after)
	}
	return s.query(ctx, in, compoundQueryPG(t, in, kind, after != nil), args...)
}

// ReadChunkAfter appends the rows of one keyset chunk of a compound
// cursor to b (see mapreduce.TieSource), values as for ReadChunk. A
// connection fault while rows arrive loses and repeats none: the retry
// asks for the rest of the chunk after the last pair appended.
func (s *Postgres) ReadChunkAfter(ctx context.Context, in mapreduce.Input, r partition.Range, after *int64, limit int, b *mapreduce.Batch) error {
	t, kind, err := s.compoundRange(ctx, in, r, limit)
	if err != nil {
		return err
	}
	last, ok := r.Last()
	if !ok {
		return io.EOF
	}
	got, lo := 0, r.Lo
	var lastTie int64 // where after points once a row arrived
	err = s.retry(ctx, func(ctx context.Context) error {
		if got == limit { // a fault after the chunk's last row
			return nil
		}
		rows, done, err := s.queryAfter(ctx, in, t, kind, lo, after, last, limit-got)
		if err != nil {
			return err
		}
		defer done()
		return appendRows(rows, true, b, func(cursor, tie int64) error {
			got++
			lo, lastTie, after = cursor, tie, &lastTie
			return nil
		})
	})
	if err != nil {
		return s.compoundErr(in, r, err)
	}
	if got == 0 {
		return io.EOF
	}
	return nil
}

// StreamAfter reads the rows of r past (r.Lo, *after) with one query and
// hands them to fn in chunks of limit rows (see mapreduce.TieStreamer). A
// connection fault mid-stream is retried from the pair after the last
// chunk fn accepted; a query the server cancels (statement_timeout) is
// issued again from there while each delivers chunks, and one cancelled
// before its first chunk leaves the rest to keyset chunks, as in Stream.
func (s *Postgres) StreamAfter(ctx context.Context, in mapreduce.Input, r partition.Range, after *int64, limit int, b *mapreduce.Batch, fn func(*mapreduce.Batch) error) error {
	t, kind, err := s.compoundRange(ctx, in, r, limit)
	if err != nil {
		return err
	}
	last, ok := r.Last()
	if !ok {
		return nil
	}
	lo := r.Lo // with after, what fn has not taken yet: a new after on each chunk
	deliver := func() error {
		if err := fn(b); err != nil {
			return &callbackError{err}
		}
		tie := b.LastTie()
		lo, after = b.Last(), &tie
		b.Reset()
		return nil
	}
	for {
		issued := after
		err = s.retry(ctx, func(ctx context.Context) error {
			start := after
			err := s.streamAfterOnce(ctx, in, t, kind, lo, after, last, limit, b, deliver)
			if err != nil && after != start {
				return pg.Progressed(err) // a fault after rows arrived is a new one
			}
			return err
		})
		if !cancelled(err) {
			break
		}
		if after == issued {
			rest := r
			rest.Lo = lo
			return mapreduce.ReadChunksAfter(ctx, s, in, rest, after, limit, b, fn)
		}
	}
	if cb, ok := err.(*callbackError); ok {
		return cb.err
	}
	if err != nil {
		return s.compoundErr(in, r, err)
	}
	return nil
}

// streamAfterOnce is streamOnce for a compound cursor.
func (s *Postgres) streamAfterOnce(ctx context.Context, in mapreduce.Input, t string, kind orderKind, lo int64, after *int64, last int64, limit int, b *mapreduce.Batch, deliver func() error) error {
	b.Reset() // rows of a chunk cut short by a fault are read again
	rows, done, err := s.queryAfter(ctx, in, t, kind, lo, after, last, nil)
	if err != nil {
		return err
	}
	defer done()
	return streamRows(rows, true, limit, b, deliver)
}

// compoundErr wraps an error of reading r by a compound cursor.
func (s *Postgres) compoundErr(in mapreduce.Input, r partition.Range, err error) error {
	var pgErr *pgconn.PgError
	var schemaErr *SchemaError
	switch {
	case errors.As(err, &schemaErr):
		return err
	case errors.As(err, &pgErr) && pgErr.Code == "42P01": // undefined_table
		return errNoTable(s, in.Table)
	}
	return s.db.Scrub(fmt.Errorf("sources: read %s of table %q in %s: %w", r, in.Table, s, err))
}

// orderKindIf is orderKind for a compound cursor, and orderInteger for a
// cursor of one column, which is an integer.
func (s *Postgres) orderKindIf(ctx context.Context, in mapreduce.Input) (orderKind, error) {
	if !in.Compound() {
		return orderInteger, nil
	}
	return s.orderKind(ctx, in)
}
