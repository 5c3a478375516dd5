package sources

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
)

// Postgres is a Source reading a table of a PostgreSQL database through a
// pgx connection pool. It is safe for concurrent use: each call takes its
// own connection from the pool. It also implements mapreduce.Splitter,
// planning partitions of about equal row counts (see Split),
// mapreduce.Streamer, reading a range with one query (see Stream), and
// mapreduce.Marker, taking the high-water mark of an incremental run from
// the cursor's sequence (see Mark).
//
// # Tables and columns
//
// A table name of the form schema.table (split at the first dot) names a
// table of that schema; any other name is resolved through the
// connection's search_path. Table and column names are matched exactly, as
// quoted identifiers: "Events" is not events.
//
// # Values
//
// ReadChunk uses the binary protocol with prepared statements and stores
// each value in the Batch as:
//
//	smallint, integer, bigint, oid        int64
//	real, double precision                float64
//	text, varchar, char(n), name          string
//	bytea                                 []byte
//	boolean                               bool
//	timestamptz, timestamp                time.Time in UTC (a timestamp without
//	                                      time zone is taken as UTC)
//	date                                  time.Time, midnight UTC
//	json, jsonb                           []byte, the JSON text
//	numeric                               string, its exact decimal text ("12.50",
//	                                      "NaN"): Row.Float64 and Row.Int64 parse it
//	any other type (uuid, interval,       string, its text form: "{1,2}" for an
//	arrays, enums, …)                     int[], "1 day 02:00:00" for an interval
//	NULL                                  nil
//
// The timestamps and dates infinity and -infinity are stored as the strings
// "infinity" and "-infinity", so that Row.Time fails the row, not the run.
//
// # Compound cursors
//
// A cursor "ts,id" pages by the pair (see postgres_compound.go): ts of
// type smallint, integer, bigint, date, timestamp or timestamptz, id a
// NOT NULL integer column, the two unique by an index on both or either
// alone. The engine's cursor is ts as an integer, a timestamp's
// microseconds since 1970 (UTC), or a date's days; partitions split on it,
// so all rows of one timestamp are one partition's. An index on (ts, id)
// serves the chunk queries.
//
// # Connection faults
//
// Describe, ReadChunk and Split retry transient faults (a refused or
// broken connection, a server shutting down or starting up) with
// exponential backoff and jitter for up to RetryBudget, so that a server
// restart or a failover only pauses a run. A server that stays away gives
// an *UnavailableError; nothing is lost, and the run resumes from its
// checkpoints when started again. Opening retries only a server that says
// it is starting up (see pg.Open): a mistake in the URL shows at once.
type Postgres struct {
	// RetryBudget bounds how long one call keeps retrying transient
	// connection faults, from the first fault; zero means no retries.
	// OpenPostgres sets DefaultRetryBudget. Set it before the first call.
	RetryBudget time.Duration

	// Logger receives Mark's note of the transactions it waits for when
	// the wait runs long; nil for slog.Default().
	Logger *slog.Logger

	db   *pg.DB
	pool *pgxpool.Pool // db.Pool
	snap snapshot      // the snapshot ranges are read at, if pinned
	// orders caches the kind of each compound cursor's order column, by
	// table and cursor (see orderKindOf), which its queries' bounds take.
	orders sync.Map

	// Sampling thresholds of Split, fields so that tests can lower them.
	fullReadMax  int64 // up to this many rows, Split reads every cursor value
	bernoulliMax int64 // up to this many rows, it samples rows, beyond that pages

	markLogDelay time.Duration // how long Mark waits before it logs; 0 for defaultMarkLogAfter
}

var (
	_ mapreduce.Source   = (*Postgres)(nil)
	_ mapreduce.Splitter = (*Postgres)(nil)
	_ mapreduce.Streamer = (*Postgres)(nil)
	_ mapreduce.Locator  = (*Postgres)(nil)

	_ mapreduce.TieSource   = (*Postgres)(nil)
	_ mapreduce.TieStreamer = (*Postgres)(nil)
)

const (
	// DefaultRetryBudget is the RetryBudget OpenPostgres sets: long
	// enough to ride out a restart or a managed failover (typically 5 to
	// 30 seconds), short enough that a server that is really gone fails
	// the run while someone is still watching.
	DefaultRetryBudget = pg.DefaultBudget

	// spareConns are the pool's connections beyond one per worker: the
	// one that holds the run's snapshot (see Snapshot), and one for
	// Describe, Split and a progress query while every map task holds
	// one.
	spareConns = 2
)

// OpenPostgres connects to the PostgreSQL database that dsn names (a
// postgres:// URL, or key=value pairs as libpq takes them; the PG*
// environment variables and ~/.pgpass fill in the rest, as for psql) and
// checks the connection with a ping (see pg.Open). Close it when done.
//
// The pool holds at most GOMAXPROCS+2 connections: one per map task at the
// default --workers, plus spares. Set pool_max_conns in the URL to change
// it (run with --workers N and pool_max_conns=N+2, say).
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	db, err := pg.Open(ctx, dsn, pg.Options{MaxConns: int32(runtime.GOMAXPROCS(0) + spareConns)})
	if err != nil {
		return nil, fmt.Errorf("sources: %w", err)
	}
	return &Postgres{
		RetryBudget:  DefaultRetryBudget,
		db:           db,
		pool:         db.Pool,
		fullReadMax:  defaultFullReadMax,
		bernoulliMax: defaultBernoulliMax,
	}, nil
}

// Scope returns the search_path that an unqualified table name resolves
// in (see mapreduce.Scoper).
func (s *Postgres) Scope(ctx context.Context) (string, error) {
	return s.db.SearchPath(ctx, s.RetryBudget)
}

// NameRun names the source's sessions mr/<run> in pg_stat_activity (see
// mapreduce.RunNamer).
func (s *Postgres) NameRun(run string) { s.db.NameRun(run) }

// Close closes the pool's connections. It always returns nil; it returns
// an error at all so that a Postgres is an io.Closer, like the other
// backends.
func (s *Postgres) Close() error {
	s.pool.Close()
	return nil
}

// String returns the canonical name of the database (see pg.Name):
// postgres://USER@HOST:PORT/DATABASE plus search_path or options if set,
// never the password. It is part of a run's identity.
func (s *Postgres) String() string { return s.db.String() }

// retry calls op through pg's retries with RetryBudget: a server that
// stays away gives an *UnavailableError. op must be safe to repeat: every
// query of a source is a read.
func (s *Postgres) retry(ctx context.Context, op func(context.Context) error) error {
	return s.db.Retry(ctx, s.RetryBudget, op)
}

// UnavailableError reports a PostgreSQL server that stayed unreachable for
// a whole RetryBudget (see pg.UnavailableError); sinks.UnavailableError is
// the same type.
type UnavailableError = pg.UnavailableError

// tableIdent is the quoted name of table: schema.table if it has a dot
// (split at the first one), else a name resolved through search_path.
// ok is false when a part is empty, which names no table, or the name
// holds a NUL byte, which no PostgreSQL name can (and which Sanitize
// would drop, naming another table).
func tableIdent(table string) (ident string, ok bool) {
	if strings.IndexByte(table, 0) >= 0 {
		return "", false
	}
	schema, name, qualified := strings.Cut(table, ".")
	if !qualified {
		return pgx.Identifier{table}.Sanitize(), table != ""
	}
	return pgx.Identifier{schema, name}.Sanitize(), schema != "" && name != ""
}

func quotePG(name string) string { return pgx.Identifier{name}.Sanitize() }

// relation is a table as pg_class describes it.
type relation struct {
	oid       uint32
	schema    string
	name      string
	kind      string  // relkind: r table, p partitioned table, v view, m materialized view, f foreign table
	reltuples float64 // rows at the last VACUUM or ANALYZE; -1 (0 before PostgreSQL 14) if never
	relpages  int64   // pages then
	pages     int64   // pages now
}

// resolve finds table; ok is false if there is no such table (or view).
func (s *Postgres) resolve(ctx context.Context, table string) (rel relation, ok bool, err error) {
	ident, ok := tableIdent(table)
	if !ok {
		return rel, false, nil
	}
	// to_regclass returns NULL for a missing table or schema, where a
	// ::regclass cast would fail.
	err = s.pool.QueryRow(ctx, `SELECT c.oid, n.nspname, c.relname, c.relkind::text, c.reltuples::float8, c.relpages::int8,
			coalesce(pg_relation_size(c.oid) / current_setting('block_size')::int8, 0)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`, ident).
		Scan(&rel.oid, &rel.schema, &rel.name, &rel.kind, &rel.reltuples, &rel.relpages, &rel.pages)
	if errors.Is(err, pgx.ErrNoRows) {
		return rel, false, nil
	}
	return rel, err == nil, err
}

// pgColumn is a column of a table as pg_attribute describes it.
type pgColumn struct {
	num     int16
	name    string
	typ     string // as format_type prints it: "bigint", "numeric(10,2)"
	integer bool   // smallint, integer or bigint, or a domain over one
	notNull bool
	base    string // the type, or a domain's base type, as format_type prints it without a modifier
}

func (s *Postgres) columns(ctx context.Context, rel relation) ([]pgColumn, error) {
	rows, err := s.pool.Query(ctx, `SELECT a.attnum, a.attname::text, format_type(a.atttypid, a.atttypmod), 
			(CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END) IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype),
			a.attnotnull, format_type(CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END, NULL)
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, rel.oid)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (c pgColumn, err error) {
		err = row.Scan(&c.num, &c.name, &c.typ, &c.integer, &c.notNull, &c.base)
		return c, err
	})
}

// Describe checks in against the table and returns the cursor's bounds
// (min and max, which an index answers at once) and its row count: an
// estimate from the statistics of the last VACUUM or ANALYZE, scaled by
// how the table grew since, or count(*) for a table never analyzed.
func (s *Postgres) Describe(ctx context.Context, in mapreduce.Input) (mapreduce.TableInfo, error) {
	var info mapreduce.TableInfo
	err := s.retry(ctx, func(ctx context.Context) (err error) {
		info, err = s.describe(ctx, in)
		return err
	})
	var schemaErr *SchemaError
	if err != nil && !errors.As(err, &schemaErr) {
		err = s.db.Scrub(fmt.Errorf("sources: describe table %q in %s: %w", in.Table, s, err))
	}
	return info, err
}

func (s *Postgres) describe(ctx context.Context, in mapreduce.Input) (mapreduce.TableInfo, error) {
	var info mapreduce.TableInfo
	rel, ok, err := s.resolve(ctx, in.Table)
	if err != nil {
		return info, err
	}
	if !ok {
		return info, errNoTable(s, in.Table)
	}
	cols, err := s.columns(ctx, rel)
	if err != nil {
		return info, err
	}
	cursor, err := findColumns(s, in, cols, func(c pgColumn) string { return c.name }, func(a, b string) bool { return a == b })
	if err != nil {
		return info, err
	}
	if in.Compound() {
		return s.describeCompound(ctx, in, rel, cols, cursor)
	}
	if !cursor.integer {
		return info, errCursorType(s, in.Table, in.Cursor, cursor.typ)
	}
	// A unique index of the cursor alone: not partial (rows outside its
	// predicate are unconstrained), not on an expression, and valid (a
	// failed CREATE UNIQUE INDEX CONCURRENTLY leaves an invalid one, often
	// because of duplicates). INCLUDE columns do not matter.
	var unique bool
	err = s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_index
		WHERE indrelid = $1 AND indisunique AND indisvalid AND indpred IS NULL AND indexprs IS NULL
		AND indnkeyatts = 1 AND indkey[0] = $2)`, rel.oid, cursor.num).Scan(&unique)
	if err != nil {
		return info, err
	}
	if !unique {
		return info, errCursorNotUnique(s, in.Table, in.Cursor)
	}

	t, _ := tableIdent(in.Table)
	c := quotePG(in.Cursor)
	if !cursor.notNull {
		var nulls int64
		if err := s.pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s IS NULL`, t, c)).Scan(&nulls); err != nil {
			return info, err
		}
		if nulls > 0 {
			return info, errCursorNulls(s, in.Table, in.Cursor, nulls)
		}
	}
	var lo, hi *int64
	if err := s.pool.QueryRow(ctx, fmt.Sprintf(`SELECT min(%[1]s)::int8, max(%[1]s)::int8 FROM %[2]s`, c, t)).Scan(&lo, &hi); err != nil {
		return info, err
	}
	if lo == nil {
		info.Types, err = s.exprTypes(ctx, t, in)
		return info, err // empty
	}
	if info.Types, err = s.exprTypes(ctx, t, in); err != nil {
		return info, err
	}
	info.Min, info.Max = *lo, *hi
	info.Rows = rel.estimate()
	if info.Rows < 1 { // never analyzed, or analyzed while (nearly) empty
		if err := s.pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s`, t)).Scan(&info.Rows); err != nil {
			return info, err
		}
	}
	return info, nil
}

// Locate returns the first and last cursor in r of the rows that in.Where
// holds for, and their count (see mapreduce.Locator): a batch with a
// lookback reads its window's rows where they lie. An index on the
// columns of the condition serves it; without one it scans the range.
func (s *Postgres) Locate(ctx context.Context, in mapreduce.Input, r partition.Range) (first, last, rows int64, err error) {
	t, ok := tableIdent(in.Table)
	if !ok {
		return 0, 0, 0, errNoTable(s, in.Table)
	}
	c := quotePG(in.Cursor)
	q := fmt.Sprintf("SELECT min(%[1]s)::int8, max(%[1]s)::int8, count(*)%[2]s WHERE %[1]s >= $1::int8 AND %[1]s <= $2::int8%[3]s",
		c, fromClause(quotePG, t, in), andWhere(in))
	end, ok := r.Last()
	if !ok {
		return 0, 0, 0, nil
	}
	err = s.retry(ctx, func(ctx context.Context) error {
		return s.readOnly(ctx, func(tx pgx.Tx) error {
			var lo, hi *int64
			if err := tx.QueryRow(ctx, q, r.Lo, end).Scan(&lo, &hi, &rows); err != nil {
				return err
			}
			if lo != nil {
				first, last = *lo, *hi
			}
			return nil
		})
	})
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && !pg.Transient(err):
		err = errUserSQL(s, in.Table, pgErr.Message)
	case err != nil:
		err = s.db.Scrub(fmt.Errorf("sources: locate rows of table %q in %s: %w", in.Table, s, err))
	}
	return first, last, rows, err
}

// exprTypes checks in's expressions and condition by planning the range
// query over no rows, and returns the expressions' types as format_type
// spells them. A mistake in them is a *SchemaError quoting PostgreSQL.
func (s *Postgres) exprTypes(ctx context.Context, t string, in mapreduce.Input) ([]string, error) {
	return s.exprTypesOf(ctx, in, chunkQueryPG(t, in), 1, 0, 0, 0)
}

// exprTypesOf is exprTypes over the range query q, whose first skip
// columns are the cursor's, with args.
func (s *Postgres) exprTypesOf(ctx context.Context, in mapreduce.Input, q string, skip int, args ...any) ([]string, error) {
	if !userSQL(in) {
		return nil, nil
	}
	var types []string
	err := s.readOnly(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		fields := rows.FieldDescriptions()[skip+len(in.Columns):]
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		oids, mods := make([]uint32, len(fields)), make([]int32, len(fields))
		for i, f := range fields {
			oids[i], mods[i] = f.DataTypeOID, f.TypeModifier
		}
		rows, err = tx.Query(ctx, `SELECT format_type(o, m) FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS f(o, m, n) ORDER BY n`, oids, mods)
		if err != nil {
			return err
		}
		types, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !pg.Transient(err) {
		return nil, errUserSQL(s, in.Table, pgErr.Message)
	}
	return types, err
}

// EstimateGroups returns PostgreSQL's estimate of the number of groups
// of in.Exprs[:in.GroupBy] over the rows of the table that in.Where holds
// for: the row estimate of the planner's top node for that GROUP BY, from
// the columns' statistics (pg_stats n_distinct). A rollup weighs it
// against the table's rows to choose whether to push its partial
// aggregation down.
func (s *Postgres) EstimateGroups(ctx context.Context, in mapreduce.Input) (int64, error) {
	t, ok := tableIdent(in.Table)
	if !ok || in.GroupBy < 1 || in.GroupBy > len(in.Exprs) {
		return 0, fmt.Errorf("sources: estimate groups of table %q: no table or no GROUP BY", in.Table)
	}
	q := "EXPLAIN (FORMAT JSON) SELECT 1" + fromClause(quotePG, t, in)
	if in.Where != "" {
		q += " WHERE (" + in.Where + ")"
	}
	q += " GROUP BY (" + strings.Join(in.Exprs[:in.GroupBy], "), (") + ")"
	var plan []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		}
	}
	err := s.retry(ctx, func(ctx context.Context) error {
		return s.readOnly(ctx, func(tx pgx.Tx) error {
			var js []byte
			if err := tx.QueryRow(ctx, q).Scan(&js); err != nil {
				return err
			}
			return json.Unmarshal(js, &plan)
		})
	})
	if err != nil {
		return 0, s.db.Scrub(fmt.Errorf("sources: estimate groups of table %q in %s: %w", in.Table, s, err))
	}
	if len(plan) == 0 {
		return 0, fmt.Errorf("sources: estimate groups of table %q in %s: EXPLAIN gave no plan", in.Table, s)
	}
	return int64(plan[0].Plan.Rows), nil
}

// userSQL reports whether in holds SQL that a user wrote, which the source
// runs only inside a read-only transaction.
func userSQL(in mapreduce.Input) bool { return len(in.Exprs) > 0 || in.Where != "" }

// readOnly runs fn in a read-only transaction, which it then rolls back:
// whatever the user's SQL calls cannot write.
func (s *Postgres) readOnly(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.beginAt(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a read-only transaction has nothing to keep
	return fn(tx)
}

// query runs the range query q with args: in the pool, or inside a
// read-only transaction when in holds user SQL or a snapshot is pinned
// (see Snapshot). done closes the rows and ends the transaction.
func (s *Postgres) query(ctx context.Context, in mapreduce.Input, q string, args ...any) (rows pgx.Rows, done func(), err error) {
	if !userSQL(in) && s.snap.current() == "" {
		rows, err := s.pool.Query(ctx, q, args...)
		if err != nil {
			return nil, nil, err
		}
		return rows, rows.Close, nil
	}
	tx, err := s.beginAt(ctx)
	if err != nil {
		return nil, nil, err
	}
	end := func() { tx.Rollback(context.WithoutCancel(ctx)) } //nolint:errcheck // see readOnly
	if rows, err = tx.Query(ctx, q, args...); err != nil {
		end()
		return nil, nil, err
	}
	return rows, func() { rows.Close(); end() }, nil
}

// estimate returns the table's row count the way the planner estimates
// it: the rows per page of the last VACUUM or ANALYZE times the pages the
// table has now. It returns 0 if the table was never vacuumed or analyzed.
func (rel relation) estimate() int64 {
	switch {
	case rel.reltuples <= 0:
		return 0
	case rel.relpages > 0 && rel.pages > 0:
		return int64(rel.reltuples/float64(rel.relpages)*float64(rel.pages) + 0.5)
	default:
		return int64(rel.reltuples + 0.5)
	}
}

// ReadChunk appends the rows of one keyset chunk to b, values as the type
// doc of Postgres lists them, and returns io.EOF when r holds no rows.
//
// A connection fault while rows arrive does not lose or repeat any: the
// rows already appended stay, and the retry asks for the rest of the chunk
// from the cursor after the last of them.
func (s *Postgres) ReadChunk(ctx context.Context, in mapreduce.Input, r partition.Range, limit int, b *mapreduce.Batch) error {
	if in.Compound() {
		return s.ReadChunkAfter(ctx, in, r, nil, limit, b)
	}
	if in.GroupBy > 0 {
		return fmt.Errorf("sources: read %s of table %q: a range aggregated at the source (Input.GroupBy) is read with Stream", r, in.Table)
	}
	q, err := s.rangeQuery(in, r, limit)
	last, ok := r.Last()
	if err != nil || !ok {
		return cmp.Or(err, io.EOF)
	}
	got, rest := 0, r
	err = s.retry(ctx, func(ctx context.Context) error {
		if rest.Empty() { // a fault after the range's last row: nothing is left to ask for
			return nil
		}
		rows, done, err := s.query(ctx, in, q, rest.Lo, last, limit-got)
		if err != nil {
			return err
		}
		defer done()
		return appendRows(rows, false, b, func(cursor, _ int64) error {
			got++
			rest = rest.After(cursor)
			return nil
		})
	})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
			return errNoTable(s, in.Table)
		}
		return s.db.Scrub(fmt.Errorf("sources: read %s of table %q in %s: %w", r, in.Table, s, err))
	}
	if got == 0 {
		return io.EOF
	}
	return nil
}

// Stream reads the rows of r with one query and hands them to fn in chunks
// of limit rows (see mapreduce.Streamer): one round trip per range instead
// of one per chunk. A connection fault mid-stream is retried from the row
// after the last chunk fn accepted; an error of fn ends the stream as it is.
//
// A query that the server cancels, as statement_timeout does to any query
// that runs longer, is issued again from the row after the last chunk
// while each one delivers chunks; one cancelled before its first chunk
// leaves the rest of the range to keyset chunks (ReadChunk), each a short
// query of its own.
func (s *Postgres) Stream(ctx context.Context, in mapreduce.Input, r partition.Range, limit int, b *mapreduce.Batch, fn func(*mapreduce.Batch) error) error {
	if in.Compound() {
		return s.StreamAfter(ctx, in, r, nil, limit, b, fn)
	}
	q, err := s.rangeQuery(in, r, limit)
	if err != nil || r.Empty() {
		return err
	}
	// rest is what fn has not taken yet. Progress is a change of rest as
	// a whole, not of rest.Lo: taking the row at math.MaxInt64 leaves Lo
	// where it was and clears ToMax.
	rest := r
	deliver := func() error {
		if err := fn(b); err != nil {
			return &callbackError{err}
		}
		rest = rest.After(b.Last())
		b.Reset()
		return nil
	}
	for {
		issued := rest
		err = s.retry(ctx, func(ctx context.Context) error {
			start := rest
			err := s.streamOnce(ctx, in, q, rest, limit, b, deliver)
			switch {
			case err != nil && rest != start && in.GroupBy > 0:
				// Groups come in no order: no query reads "the rest" of a
				// range, and fn has taken some. The engine redoes the range.
				return pg.Stop(err)
			case err != nil && rest != start:
				return pg.Progressed(err) // a fault after rows arrived is a new one
			}
			return err
		})
		if !cancelled(err) || in.GroupBy > 0 {
			break
		}
		if rest == issued {
			return mapreduce.ReadChunks(ctx, s, in, rest, limit, b, fn)
		}
	}
	if cb, ok := err.(*callbackError); ok {
		return cb.err
	}
	if err != nil {
		var pgErr *pgconn.PgError
		switch {
		case errors.As(err, &pgErr) && pgErr.Code == "42P01": // undefined_table
			return errNoTable(s, in.Table)
		case cancelled(err): // a grouped range cannot be read in parts
			err = fmt.Errorf("%w (the range's GROUP BY query ran past statement_timeout? raise it for mr's role, use more --partitions, or --push-down off)", err)
		}
		return s.db.Scrub(fmt.Errorf("sources: read %s of table %q in %s: %w", r, in.Table, s, err))
	}
	return nil
}

// cancelled reports whether err is the server's cancel of a query
// (SQLSTATE 57014, query_canceled): statement_timeout's, or an operator's
// pg_cancel_backend, which ends the query and not the session.
func cancelled(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "57014"
}

// streamOnce runs Stream's query over r once, delivering a chunk whenever
// limit rows have arrived and the rest at the end. An empty r, all that
// is left after a fault that followed the last row, asks for nothing.
func (s *Postgres) streamOnce(ctx context.Context, in mapreduce.Input, q string, r partition.Range, limit int, b *mapreduce.Batch, deliver func() error) error {
	b.Reset() // rows of a chunk cut short by a fault are read again
	last, ok := r.Last()
	if !ok {
		return nil
	}
	rows, done, err := s.query(ctx, in, q, r.Lo, last, nil) // LIMIT NULL: the whole range
	if err != nil {
		return err
	}
	defer done()
	return streamRows(rows, false, limit, b, deliver)
}

// streamRows appends the rows of a range's query to b (see appendRows),
// handing b to deliver whenever it holds limit rows, and the rest at the
// end.
func streamRows(rows pgx.Rows, compound bool, limit int, b *mapreduce.Batch, deliver func() error) error {
	err := appendRows(rows, compound, b, func(int64, int64) error {
		if b.Len() == limit {
			return deliver()
		}
		return nil
	})
	if err != nil || b.Len() == 0 {
		return err
	}
	return deliver()
}

// appendRows decodes each row of rows into b, with its tie-breaker if
// the cursor is compound (see decodeTie), and then calls each with the
// row's cursor and tie-breaker. The decoder is made at the first row,
// when the result's columns are known.
func appendRows(rows pgx.Rows, compound bool, b *mapreduce.Batch, each func(cursor, tie int64) error) error {
	var dec *rowDecoder
	for rows.Next() {
		var err error
		if dec == nil {
			if dec, err = newCursorDecoder(rows.FieldDescriptions(), rows.Conn().TypeMap(), compound); err != nil {
				return err
			}
		}
		var cursor, tie int64
		if compound {
			cursor, tie, err = dec.decodeTie(rows.RawValues(), b)
		} else {
			cursor, err = dec.decode(rows.RawValues(), b)
		}
		if err != nil {
			return err
		}
		if err := each(cursor, tie); err != nil {
			return err
		}
	}
	return rows.Err()
}

// callbackError carries an error of Stream's fn through the retry loop.
// It deliberately does not unwrap: whatever fn failed with is the
// engine's, never a connection fault to retry.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }

// rangeQuery checks the arguments of ReadChunk and Stream and returns
// their query (see chunkQueryPG).
func (s *Postgres) rangeQuery(in mapreduce.Input, r partition.Range, limit int) (string, error) {
	if limit < 1 {
		return "", fmt.Errorf("sources: read %s of table %q: limit must be at least 1, got %d", r, in.Table, limit)
	}
	t, ok := tableIdent(in.Table)
	if !ok {
		return "", errNoTable(s, in.Table)
	}
	for _, name := range append([]string{in.Cursor}, in.Columns...) {
		if strings.IndexByte(name, 0) >= 0 { // see tableIdent
			return "", fmt.Errorf("sources: read %s of table %q: column name %q holds a NUL byte", r, in.Table, name)
		}
	}
	return chunkQueryPG(t, in), nil
}

// chunkQueryPG is the keyset query of ReadChunk on the quoted table t,
// with in's expressions after its columns and its condition after the
// range (both parenthesized: each is one expression as the user wrote
// it); its parameters are the range's first and last cursor values (both
// included: a range that runs to math.MaxInt64 has no exclusive bound an
// int8 can hold) and the limit (NULL for none). They are cast to bigint so that a
// smallint or integer cursor takes bounds beyond its own range; integer
// types compare across widths with the same btree operators, so the
// cursor's index still serves the range and the order.
func chunkQueryPG(t string, in mapreduce.Input) string {
	c := quotePG(in.Cursor)
	var q strings.Builder
	if in.GroupBy > 0 {
		// Groups have no cursor of their own: each gets the range's last.
		q.WriteString("SELECT $2::int8")
	} else {
		q.WriteString("SELECT " + c)
	}
	q.WriteString(selectList(quotePG, in) + fromClause(quotePG, t, in))
	fmt.Fprintf(&q, " WHERE %s >= $1::int8 AND %s <= $2::int8%s", c, c, andWhere(in))
	if in.GroupBy > 0 {
		q.WriteString(" GROUP BY ")
		for i := range in.GroupBy {
			if i > 0 {
				q.WriteString(", ")
			}
			fmt.Fprint(&q, 2+len(in.Columns)+i)
		}
		q.WriteString(" LIMIT $3::int8")
		return q.String()
	}
	fmt.Fprintf(&q, " ORDER BY %s LIMIT $3::int8", c)
	return q.String()
}
