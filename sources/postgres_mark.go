package sources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mrengine/mr/internal/sqlname"
	"github.com/mrengine/mr/mapreduce"
)

var _ mapreduce.Marker = (*Postgres)(nil)

const (
	// markFirstPoll and markMaxPoll bound the pauses between two looks
	// at pg_locks while Mark waits for writers. PostgreSQL has no SQL to
	// sleep until another transaction ends, so Mark polls: the first
	// look comes soon, since most writers hold their transaction for
	// milliseconds, and the pauses double up to half a second, so that a
	// long wait costs the server two pg_locks scans a second (each one
	// briefly takes every lock partition) and returns within half a
	// second of the last writer's end.
	markFirstPoll = 5 * time.Millisecond
	markMaxPoll   = 500 * time.Millisecond

	// defaultMarkLogAfter is how long Mark waits before it logs the
	// writers it waits for (see Postgres.Logger): longer than any
	// healthy insert transaction, short enough that whoever runs mr
	// learns why it stalls while it still does. defaultMarkLogEvery
	// repeats the note while the wait goes on.
	defaultMarkLogAfter = 5 * time.Second
	defaultMarkLogEvery = 30 * time.Second
)

// writerModes are the table lock modes of the transactions Mark waits for:
// the modes that conflict with SHARE, as the writers pg_incremental waits
// for (WaitForLockers with ShareLock), less SHARE UPDATE EXCLUSIVE. That
// one is VACUUM's, ANALYZE's and CREATE INDEX CONCURRENTLY's, none of
// which writes a row, and waiting for an autovacuum of a large table
// would stall every mark for its length. A transaction that writes rows
// holds ROW EXCLUSIVE whatever else it holds: PostgreSQL records every
// mode a transaction takes, the weaker beside the stronger.
const writerModes = `'RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock'`

// Mark returns a safe high-water mark of in.Cursor (see mapreduce.Marker):
// the last value that the sequence filling the cursor has handed out,
// once every transaction that could still commit a row at or below it
// has ended. It is CrunchyData's pg_incremental's sequence pipeline done
// from a client:
//
//  1. Find the sequence: an identity column's (pg_get_serial_sequence), or
//     the one a DEFAULT nextval('seq') calls, which covers serial columns
//     and sequences of one's own. A cursor that no sequence fills is a
//     *SchemaError: rows written with explicit values at or below a mark
//     would be skipped for good.
//  2. Read the sequence's last value L (pg_incremental calls
//     pg_sequence_last_value; Mark reads last_value and is_called from the
//     sequence itself, since that function hides where a sequence that
//     RESTART or setval(…, false) left uncalled stands). Sequences are not
//     transactional: L counts values of transactions still open.
//  3. Then list the transactions that hold a writer's lock (writerModes)
//     on the table or any of its partitions or inheritance children, as
//     pg_incremental's WaitForLockers does, and also those that hold one
//     on the sequence, which every nextval takes (ROW EXCLUSIVE, to the
//     end of the transaction, cached value or not). An INSERT locks its
//     table before its defaults call nextval, so any transaction that
//     holds a value at or below L holds these locks from before step 2
//     on, and is listed. The sequence's lock also covers a transaction
//     that calls nextval before it locks the table, the one case
//     pg_incremental's notes leave out.
//  4. Wait until every listed transaction has ended, and return L. A
//     transaction leaves the set of running ones (for every snapshot
//     taken after) before it releases its locks, so every row at or below
//     L that ever commits is visible by then; any transaction that starts
//     later draws values above L.
//
// Mark takes no lock on the table, as pg_incremental does not (it waits
// for lockers without joining the lock queue): readers and writers go on
// while it waits, and writers that start meanwhile are not waited for.
// It polls pg_locks (see markMaxPoll) and returns ctx's error as soon as
// ctx ends. After five seconds it logs the transactions it still waits
// for to Logger, with their backends' pid, application_name, state and
// xact_start from pg_stat_activity, and again every thirty seconds.
//
// A sequence that was never called (or was reset to hand out its value
// next) has handed out nothing since: the mark is one below the value it
// hands out next, its START for a new one, so that the next run reads its
// first row. The table's rows do not matter: an empty table marks where
// its sequence stands.
//
// Mark refuses what it cannot be sure of, with a *SchemaError that says
// what to change: a sequence with a negative INCREMENT (it counts down,
// below any mark), one that CYCLEs (it starts over below the mark), and
// one with CACHE above 1 (a session hands out values it cached before a
// mark after the mark, with no lock to wait for). It also refuses a hot
// standby, whose pg_locks does not show the primary's writers.
func (s *Postgres) Mark(ctx context.Context, in mapreduce.Input) (int64, error) {
	var mark int64
	err := s.retry(ctx, func(ctx context.Context) (err error) {
		mark, err = s.mark(ctx, in)
		return err
	})
	var schemaErr *SchemaError
	if err != nil && !errors.As(err, &schemaErr) {
		err = s.db.Scrub(fmt.Errorf("sources: mark table %q in %s: %w", in.Table, s, err))
	}
	return mark, err
}

// markSequence is the sequence that fills a cursor, as pg_sequence
// describes it.
type markSequence struct {
	oid          uint32
	schema, name string
	ident        string // quoted schema.name, for SQL
	regclass     string // the name as regclass prints it in this session, for messages
	increment    int64
	cache        int64
	cycle        bool
	// relations are the ones whose writers Mark waits for: the table,
	// its partitions and inheritance children, and the sequence.
	relations []uint32

	lastValue int64 // read in step 2
	called    bool  // is_called: lastValue was handed out
}

func (s *Postgres) mark(ctx context.Context, in mapreduce.Input) (int64, error) {
	seq, err := s.markSequence(ctx, in)
	if err != nil {
		return 0, err
	}
	// Step 2, then step 3: the order is the point (see Mark).
	err = s.pool.QueryRow(ctx, "SELECT last_value, is_called FROM "+seq.ident).Scan(&seq.lastValue, &seq.called)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" { // insufficient_privilege
		return 0, fmt.Errorf("%w (mr reads the sequence %s of cursor column %q to take the mark: GRANT SELECT ON SEQUENCE %s TO %s)",
			err, seq.regclass, in.Cursor, seq.ident, quotePG(s.pool.Config().ConnConfig.User))
	}
	if err != nil {
		return 0, err
	}
	writers, err := s.writers(ctx, seq.relations, nil)
	if err != nil {
		return 0, err
	}
	if err := s.waitWriters(ctx, in, seq, writers); err != nil {
		return 0, err
	}
	if seq.called {
		return seq.lastValue, nil
	}
	if seq.lastValue == math.MinInt64 { // no int64 lies below it
		return 0, errCursor(s, in.Table, in.Cursor,
			"is filled by the sequence %s, which hands out %d next, the least bigint, and no mark lies below it: "+
				"ALTER SEQUENCE %s RESTART WITH %d", seq.regclass, seq.lastValue, seq.ident, int64(math.MinInt64+1))
	}
	return seq.lastValue - 1, nil
}

// markSequence finds the sequence that fills in's cursor (step 1 of
// Mark) and checks that a mark can stand on it.
func (s *Postgres) markSequence(ctx context.Context, in mapreduce.Input) (markSequence, error) {
	var seq markSequence
	rel, ok, err := s.resolve(ctx, in.Table)
	if err != nil {
		return seq, err
	}
	if !ok {
		return seq, errNoTable(s, in.Table)
	}
	if rel.kind != "r" && rel.kind != "p" {
		return seq, &SchemaError{Table: in.Table, msg: fmt.Sprintf(
			"table %q in %s is a %s: --incremental needs a table, whose writers Mark can wait for (name the table itself with --table)",
			in.Table, s, relkindName(rel.kind))}
	}
	cols, err := s.columns(ctx, rel)
	if err != nil {
		return seq, err
	}
	cursor, err := findColumns(s, mapreduce.Input{Table: in.Table, Cursor: in.Cursor}, cols,
		func(c pgColumn) string { return c.name }, func(a, b string) bool { return a == b })
	if err != nil {
		return seq, err
	}
	if !cursor.integer {
		return seq, errCursorType(s, in.Table, in.Cursor, cursor.typ)
	}
	var standby bool
	var identitySeq *uint32
	var defaultExpr *string
	var defaultSeqs []uint32
	// The identity's sequence, and the default and the sequences it
	// refers to (pg_depend records every regclass constant in it).
	err = s.pool.QueryRow(ctx, `SELECT pg_is_in_recovery(),
			CASE WHEN a.attidentity <> '' THEN pg_get_serial_sequence($1::oid::regclass::text, a.attname)::regclass::oid END,
			pg_get_expr(d.adbin, d.adrelid),
			ARRAY(SELECT p.refobjid FROM pg_depend p JOIN pg_class c ON c.oid = p.refobjid AND c.relkind = 'S'
				WHERE p.classid = 'pg_attrdef'::regclass AND p.objid = d.oid AND p.refclassid = 'pg_class'::regclass)
		FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = $1 AND a.attnum = $2`, rel.oid, cursor.num).
		Scan(&standby, &identitySeq, &defaultExpr, &defaultSeqs)
	if err != nil {
		return seq, err
	}
	if standby {
		return seq, errors.New("the server is a hot standby, whose pg_locks does not show the primary's writers, " +
			"so no mark taken there is safe: point --source at the primary")
	}
	switch {
	case identitySeq != nil:
		seq.oid = *identitySeq
	case len(defaultSeqs) == 1:
		seq.oid = defaultSeqs[0] // checked below, once its name is known
	case defaultExpr != nil:
		return seq, errNoSequence(s, in.Table, in.Cursor, fmt.Sprintf("its DEFAULT %s calls no one sequence's nextval", *defaultExpr))
	default:
		return seq, errNoSequence(s, in.Table, in.Cursor, "it has no DEFAULT and is no identity column")
	}

	err = s.pool.QueryRow(ctx, `SELECT n.nspname, c.relname, c.oid::regclass::text,
			s.seqincrement, s.seqcache, s.seqcycle,
			(WITH RECURSIVE tree(oid) AS (SELECT $2::oid UNION SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid)
				SELECT array_agg(oid) FROM tree)
		FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE s.seqrelid = $1`, seq.oid, rel.oid).
		Scan(&seq.schema, &seq.name, &seq.regclass, &seq.increment, &seq.cache, &seq.cycle, &seq.relations)
	if err != nil {
		return seq, err
	}
	if identitySeq == nil && !nextvalDefault(*defaultExpr, seq.regclass) {
		return seq, errNoSequence(s, in.Table, in.Cursor, fmt.Sprintf("its DEFAULT %s does more than call nextval", *defaultExpr))
	}
	seq.ident = pgx.Identifier{seq.schema, seq.name}.Sanitize()
	seq.relations = append(seq.relations, seq.oid)
	switch {
	case seq.increment < 0:
		return seq, errCursor(s, in.Table, in.Cursor,
			"is filled by the sequence %s, which counts down (INCREMENT %d): its next values lie below any mark, "+
				"and --incremental reads only rows above the last one (use a sequence that counts up)", seq.regclass, seq.increment)
	case seq.cycle:
		return seq, errCursor(s, in.Table, in.Cursor,
			"is filled by the sequence %s, which CYCLEs: past its MAXVALUE it starts over below the mark, "+
				"and --incremental would skip those rows: ALTER SEQUENCE %s NO CYCLE", seq.regclass, seq.ident)
	case seq.cache > 1:
		return seq, errCursor(s, in.Table, in.Cursor,
			"is filled by the sequence %s, which has CACHE %d: a session can write a value it cached before a mark "+
				"after the mark, below it, and --incremental would skip that row: ALTER SEQUENCE %s CACHE 1",
			seq.regclass, seq.cache, seq.ident)
	}
	return seq, nil
}

// nextvalDefault reports whether expr, a default as pg_get_expr prints
// it, is a call of nextval on the sequence that regclass names (as
// regclass prints it in the same session), alone or cast to the column's
// type: nextval('s'::regclass), or (nextval('s'::regclass))::integer.
// pg_get_expr puts an operator's expression in parentheses, so nothing
// can follow the cast's type but more of its name (double precision).
func nextvalDefault(expr, regclass string) bool {
	call := "nextval(" + sqlname.Literal(regclass) + "::regclass)"
	if expr == call {
		return true
	}
	rest, ok := strings.CutPrefix(expr, "("+call+")::")
	return ok && rest != "" && !strings.ContainsAny(rest, "()+-*/|&<>=")
}

// errNoSequence reports a cursor that no sequence fills, which a mark
// cannot stand on; why says what the column has instead.
func errNoSequence(src fmt.Stringer, table, column, why string) error {
	return errCursor(src, table, column, "is filled by no sequence (%s): --incremental needs a cursor numbered by a sequence "+
		"(an identity or serial column, or a DEFAULT nextval('seq')), since rows written with explicit values "+
		"at or below the mark would be skipped (pick another --cursor, or run without --incremental)", why)
}

func relkindName(kind string) string {
	switch kind {
	case "v":
		return "view"
	case "m":
		return "materialized view"
	case "f":
		return "foreign table"
	}
	return "relation of kind " + kind
}

// markWriter is a transaction that Mark waits for, as pg_locks and
// pg_stat_activity show it; a prepared transaction has no backend.
type markWriter struct {
	vxid      string
	pid       *int32
	app       *string
	state     *string
	xactStart *time.Time
}

// LogValue shows the writer as pg_stat_activity would.
func (w markWriter) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("virtualtransaction", w.vxid)}
	if w.pid == nil {
		attrs = append(attrs, slog.String("backend", "none (a prepared transaction: COMMIT PREPARED or ROLLBACK PREPARED it)"))
	} else {
		attrs = append(attrs, slog.Int("pid", int(*w.pid)))
	}
	if w.app != nil {
		attrs = append(attrs, slog.String("application_name", *w.app))
	}
	if w.state != nil {
		attrs = append(attrs, slog.String("state", *w.state))
	}
	if w.xactStart != nil {
		attrs = append(attrs, slog.Time("xact_start", *w.xactStart))
	}
	return slog.GroupValue(attrs...)
}

// writers lists the transactions other than this session's own that hold
// a writer's lock (writerModes) on one of rels, once each; of only the
// transactions among among, if among is not nil.
func (s *Postgres) writers(ctx context.Context, rels []uint32, among []string) ([]markWriter, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (l.virtualtransaction) l.virtualtransaction, l.pid,
			a.application_name, a.state, a.xact_start
		FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'relation' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND l.relation = ANY($1::oid[]) AND l.granted AND l.mode IN (`+writerModes+`)
		AND l.pid IS DISTINCT FROM pg_backend_pid()
		AND ($2::text[] IS NULL OR l.virtualtransaction = ANY($2::text[]))
		ORDER BY l.virtualtransaction`, rels, among)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (w markWriter, err error) {
		err = row.Scan(&w.vxid, &w.pid, &w.app, &w.state, &w.xactStart)
		return w, err
	})
}

// waitWriters waits until every transaction of writers has ended (step 4
// of Mark), logging the ones left after markLogAfter() and then every
// defaultMarkLogEvery.
func (s *Postgres) waitWriters(ctx context.Context, in mapreduce.Input, seq markSequence, writers []markWriter) error {
	start := time.Now()
	logAt := start.Add(s.markLogAfter())
	pause := markFirstPoll
	for len(writers) > 0 {
		if now := time.Now(); !now.Before(logAt) {
			args := []any{slog.String("table", in.Table), slog.String("sequence", seq.regclass),
				slog.Duration("waited", now.Sub(start).Round(time.Millisecond)), slog.Int("writers", len(writers))}
			for _, w := range writers {
				args = append(args, slog.Any("writer", w))
			}
			s.logger().InfoContext(ctx, "sources: the incremental mark waits for transactions that may still write rows below it to end", args...)
			logAt = now.Add(defaultMarkLogEvery)
		}
		timer := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("waiting for %d transactions that may still write rows at or below %d: %w",
				len(writers), seq.lastValue, context.Cause(ctx))
		case <-timer.C:
		}
		pause = min(2*pause, markMaxPoll)
		among := make([]string, len(writers))
		for i, w := range writers {
			among[i] = w.vxid
		}
		var err error
		if writers, err = s.writers(ctx, seq.relations, among); err != nil {
			return err
		}
	}
	return nil
}

// logger returns Logger, or slog.Default() if it is nil.
func (s *Postgres) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// markLogAfter returns how long Mark waits before it logs the writers it
// waits for.
func (s *Postgres) markLogAfter() time.Duration {
	if s.markLogDelay > 0 {
		return s.markLogDelay
	}
	return defaultMarkLogAfter
}
