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
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/mapreduce"
)

// applySQL are the statements of one Apply.
type applySQL struct {
	lock   string // lock the output table against a DROP until the end
	out    string // its name, for table_oid
	claim  string // insert the commit record if absent or of another table
	create string // create the stage
	stage  pgx.Identifier
	cols   []string // the columns, in row order
	upsert string   // stage → output table
	record string   // set the commit record's row count
}

// applyStatements writes the statements that apply bucket of commit to t.
//
// The stage is a temporary table created per transaction, ON COMMIT DROP.
// It has the field types of t and only its columns, not the output table's
// (LIKE would copy extra NOT NULL columns of a table created by someone
// else); INSERT … SELECT converts to the output columns' types. Its name
// depends on the columns and their types only: pgx caches, per connection
// and by SQL text, the column types of the COPY's target, so two tables
// whose columns have the same names but other types must not share a stage
// name.
//
// A benchmark of 100k daily_rollup rows per bucket (PostgreSQL 15, a shared
// 2-CPU machine; BenchmarkPostgres_Apply, since removed with the variants it
// compared) found no consistent difference between this temporary stage
// and an unlogged table per bucket in the output table's schema: which one
// led flipped between runs, within a noise of ±25%. COPY into either takes
// ~80-100ms and the upsert from it 0.5-1.3s. A temporary table wins on the
// rest: it is private to its session, takes no name in the user's schema,
// and vanishes with the session whatever happens. Neither a larger work_mem
// (the sort of 100k keys spills ~5MB and takes ~70ms) nor temp_buffers
// helped measurably, so Apply leaves the session's settings alone.
//
// The upsert reads the stage in key order (ORDER BY keys), so that it walks
// the primary key's index in order instead of at random: in the same
// benchmark, sort included, 1.1-1.2x the rows/s of the unordered upsert
// into an empty table and 1.2-1.3x into one that holds the keys already.
func applyStatements(t mapreduce.OutputTable, n names) applySQL {
	var defs, cols, quotedCols, keys, set []string
	sig := fnv.New64a()
	for i, f := range slices.Concat(t.Keys, t.Values) {
		q := ident(f.Name)
		fmt.Fprintf(sig, "%s %d,", q, f.Type)
		defs = append(defs, q+" "+postgresType(f))
		cols = append(cols, f.Name)
		quotedCols = append(quotedCols, q)
		if i < len(t.Keys) {
			keys = append(keys, q)
		} else {
			set = append(set, q+" = EXCLUDED."+q)
		}
	}
	name := fmt.Sprintf("mr_stage_%016x", sig.Sum64())
	q := applySQL{
		cols:   cols,
		stage:  pgx.Identifier{"pg_temp", name},
		create: fmt.Sprintf("CREATE TEMP TABLE %s (%s) ON COMMIT DROP", ident(name), strings.Join(defs, ", ")),
	}
	list := strings.Join(quotedCols, ", ")
	onConflict := "DO NOTHING"
	if len(set) > 0 {
		onConflict = "DO UPDATE SET " + strings.Join(set, ", ")
	}
	q.upsert = fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s ORDER BY %s ON CONFLICT (%s) %s",
		n.out.Sanitize(), list, list, q.stage.Sanitize(), strings.Join(keys, ", "), strings.Join(keys, ", "), onConflict)
	// The claim inserts the record, or takes over one of a table that is
	// gone (see prepareLedger): then it affects a row. It affects none
	// where the bucket went to this very table, which is what a
	// concurrent Apply of the bucket sees once the first one commits.
	q.lock = "LOCK TABLE " + n.out.Sanitize() + " IN ROW EXCLUSIVE MODE"
	q.out = n.out.Sanitize()
	q.claim = "INSERT INTO " + n.commits.Sanitize() + ` AS b (commit_key, bucket, table_oid) VALUES ($1, $2, $3::text::regclass)
		ON CONFLICT (commit_key, bucket) DO UPDATE SET table_oid = EXCLUDED.table_oid, "rows" = NULL, committed_at = now()
		WHERE b.table_oid IS DISTINCT FROM EXCLUDED.table_oid`
	q.record = "UPDATE " + n.commits.Sanitize() + ` SET "rows" = $3 WHERE commit_key = $1 AND bucket = $2`
	return q
}

// Apply upserts rows into t and records bucket under commit, in one
// transaction; if the bucket is already recorded for this very table (see
// prepareLedger) it does nothing, also when another Apply of the same
// bucket runs at the same time (it waits for that one's transaction, then
// sees its record). A record for a table that was dropped is taken over. The rows are copied (COPY) into
// a stage, then upserted with INSERT … SELECT … ON CONFLICT (keys) DO
// UPDATE. Any error, including one from rows, rolls everything back. See
// Postgres for what happens on connection faults.
//
// Into the staging table of commit (see Stage), the rows are copied
// straight into t instead: the table began empty with the commit, every
// key of the run is in one bucket, the ledger applies each bucket once,
// and a bucket's rows hold each key once, so no row can meet a stored
// one. (Were one to, the key's index, which Swap builds once the table is
// filled, would fail to build, and the swap with it: the old table would
// stay.) Measured with BenchmarkCompare's shape=high at 1M rows: the
// reduce phase took 2.4 s instead of 2.9 s, and PostgreSQL 3.5
// CPU-seconds instead of 4.5, measured when the staging table still kept
// its key up to date row by row.
func (s *Postgres) Apply(ctx context.Context, t mapreduce.OutputTable, commit string, bucket int, rows mapreduce.OutputRows) error {
	src := newCopySource(rows, len(t.Keys)+len(t.Values))
	staged, _ := s.staged.Load(t.Name)
	direct := staged == commit
	if r, ok := rows.(mapreduce.AnyOrder); ok && direct {
		r.InAnyOrder() // the staging table has no index yet (see buildIndexes)
	}
	return s.applyBucket(ctx, "apply", t, commit, bucket, direct, func() bool { return src.started },
		func(ctx context.Context, tx pgx.Tx, q applySQL) (int64, error) {
			return copyRows(ctx, tx, q.stage, q.cols, src)
		})
}

// stageFunc copies the rows of a bucket into the stage q.stage (the
// output table itself, for a direct bucket), in tx, which has claimed the
// bucket, and returns how many it copied.
type stageFunc func(ctx context.Context, tx pgx.Tx, q applySQL) (int64, error)

// applyBucket is the one way a bucket reaches t, for Apply and Merge: in
// one transaction it claims the bucket (or does nothing if it is recorded
// already), creates the stage, lets stage fill it, upserts the stage into
// t and records the bucket's row count. It retries the transaction after
// a connection fault until started reports that stage has read rows that
// cannot be read again; then the error wraps mapreduce.ErrNotApplied. A
// COMMIT whose reply was lost is resolved as Postgres says. what names the
// operation in errors ("apply", "merge"); direct copies the rows into t
// itself, with no stage and no upsert (see Apply).
func (s *Postgres) applyBucket(ctx context.Context, what string, t mapreduce.OutputTable, commit string, bucket int, direct bool,
	started func() bool, stage stageFunc) error {
	if err := checkTable(t); err != nil {
		return s.bucketError(what, t, commit, bucket, err)
	}
	n, err := s.names(ctx, t)
	if err != nil {
		return s.bucketError(what, t, commit, bucket, err)
	}
	q := applyStatements(t, n)
	if direct {
		q.create, q.stage, q.upsert = "", n.out, ""
	}
	var lost error // a COMMIT whose reply was lost
	err = s.retry(ctx, func(ctx context.Context) error {
		err := s.applyOnce(ctx, q, commit, bucket, stage)
		var c *commitError
		switch {
		case errors.As(err, &c):
			lost = c.err
			return nil
		case err != nil && started() && ctx.Err() == nil && pg.Transient(err):
			return pg.Stop(fmt.Errorf("the connection failed after the bucket's rows were read, which cannot be read again, "+
				"so %w: %w", mapreduce.ErrNotApplied, err))
		}
		return err
	})
	if err == nil && lost != nil {
		err = s.resolveCommit(ctx, q, commit, bucket, lost)
	}
	if err != nil {
		return s.bucketError(what, t, commit, bucket, err)
	}
	return nil
}

// bucketError says which bucket of which commit failed to reach which
// table, and how, with any password scrubbed.
func (s *Postgres) bucketError(what string, t mapreduce.OutputTable, commit string, bucket int, err error) error {
	return s.db.Scrub(fmt.Errorf("sinks: %s bucket %d of commit %q to table %q in %s: %w", what, bucket, commit, t.Name, s, err))
}

// commitError is a COMMIT that failed without a reply from the server, so
// that its outcome is unknown.
type commitError struct{ err error }

func (e *commitError) Error() string { return e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

func (s *Postgres) applyOnce(ctx context.Context, q applySQL, commit string, bucket int, stage stageFunc) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) // a no-op once committed
	claimed, err := claim(ctx, tx, q, commit, bucket)
	if err != nil || !claimed {
		return err // nil if already applied; the deferred Rollback ends the transaction
	}
	if q.create != "" {
		if _, err := tx.Exec(ctx, q.create); err != nil {
			return err
		}
	}
	staged, err := stage(ctx, tx, q)
	if err != nil {
		return err
	}
	if q.upsert != "" {
		if _, err := tx.Exec(ctx, q.upsert); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, q.record, commit, bucket, staged); err != nil {
		return err
	}
	if err := runHook(ctx, tx); err != nil {
		return err
	}
	if err := s.commitFunc(ctx, tx); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return err // the server answered: rolled back
		}
		return &commitError{err}
	}
	return nil
}

// runHook runs the pg.TxHook that ctx carries, if any, in tx when it
// belongs to the database tx is in, so that its work commits with the
// bucket: a worker's task completes with the bucket it applied.
func runHook(ctx context.Context, tx pgx.Tx) error {
	h := pg.TxHookFrom(ctx)
	if h == nil {
		return nil
	}
	db, err := pg.Namespace(ctx, tx)
	if err != nil || db != h.Namespace {
		return err
	}
	return h.Run(ctx, tx)
}

// copyRows copies the rows of src into the columns cols of table, in tx,
// and returns how many it copied.
func copyRows(ctx context.Context, tx pgx.Tx, table pgx.Identifier, cols []string, src *copySource) (int64, error) {
	if rows, ok := src.rows.(mapreduce.RowEncoder); ok {
		copied, encoded, err := copyEncoded(ctx, tx, table, cols, src, rows)
		if srcErr := src.Err(); srcErr != nil {
			return 0, srcErr
		}
		if encoded || err != nil {
			return copied, err
		}
	}
	copied, err := tx.CopyFrom(ctx, table, cols, src)
	// CopyFrom reports a failing row source as the server's "COPY from
	// stdin failed"; the source's own error says more.
	if srcErr := src.Err(); srcErr != nil {
		return 0, srcErr
	}
	return copied, err
}

// claim locks the table of q and inserts the commit record of bucket for
// it, unless the bucket is recorded for that table already: then it
// returns false. A table that is missing (dropped since Prepare) is an
// error that says to run again, which creates it and applies again the
// buckets that were lost with it.
func claim(ctx context.Context, tx pgx.Tx, q applySQL, commit string, bucket int) (bool, error) {
	if _, err := tx.Exec(ctx, q.lock); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined table
			return false, fmt.Errorf("table %s was dropped during the run, so the bucket was not applied; "+
				"run the same command again: it creates the table anew and applies every bucket lost with it: %w", q.out, err)
		}
		return false, err
	}
	tag, err := tx.Exec(ctx, q.claim, commit, bucket, q.out)
	return tag.RowsAffected() > 0, err
}

// resolveCommit finds out whether the COMMIT of bucket, whose reply was
// lost with err, took effect. It claims the bucket (see claim) in a
// transaction that it rolls back: the insert waits for any transaction
// still holding that record, then inserts nothing if the record is there.
func (s *Postgres) resolveCommit(ctx context.Context, q applySQL, commit string, bucket int, lost error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w while COMMIT was in flight (%w); the next run learns from mr_bucket_commits whether to apply the bucket again",
			ErrOutcomeUnknown, context.Cause(ctx), lost)
	}
	probeCtx := ctx
	if s.RetryBudget > 0 {
		var cancel context.CancelFunc
		probeCtx, cancel = context.WithTimeout(ctx, s.RetryBudget)
		defer cancel()
	}
	var recorded bool
	err := s.retry(probeCtx, func(ctx context.Context) error {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		claimed, err := claim(ctx, tx, q, commit, bucket)
		recorded = !claimed
		return err
	})
	switch {
	case err != nil:
		return fmt.Errorf("%w: the connection failed during COMMIT (%w) and the database could not be asked since (%w); "+
			"the next run learns from mr_bucket_commits whether to apply the bucket again", ErrOutcomeUnknown, lost, err)
	case recorded:
		return nil
	default:
		return fmt.Errorf("the connection failed during COMMIT, which did not take effect, so %w: %w", mapreduce.ErrNotApplied, lost)
	}
}

// copySource feeds a bucket's rows to CopyFrom: it converts each value
// (see pgValue), checks the width of every row, keeps the first error it
// met, and notes whether rows was touched at all, after which Apply
// cannot be retried.
//
// Its values slice is overwritten by each Values call, like the one rows
// returns: CopyFrom encodes a row before it calls Next again.
type copySource struct {
	rows    mapreduce.OutputRows
	width   int
	buf     []any
	n       int
	started bool // Next was called: rows cannot be read again
	err     error
}

// newCopySource returns a copySource of rows, each width values wide.
func newCopySource(rows mapreduce.OutputRows, width int) *copySource {
	return &copySource{rows: rows, width: width, buf: make([]any, width)}
}

func (c *copySource) Next() bool {
	c.started = true
	return c.err == nil && c.rows.Next()
}

func (c *copySource) Values() ([]any, error) {
	values, err := c.rows.Values()
	switch {
	case err != nil:
		c.err = err
	case len(values) != c.width:
		c.err = fmt.Errorf("row %d has %d values for %d columns", c.n, len(values), c.width)
	}
	if c.err != nil {
		return nil, c.err
	}
	for i, v := range values {
		c.buf[i] = pgValue(v)
	}
	c.n++
	return c.buf, nil
}

// pgValue converts an OutputRows value to one that pgx writes as its
// column's type: a Date, an int32 to pgx, as a pgtype.Date, and a decimal
// exactly, as a pgtype.Numeric; other values pass unchanged.
func pgValue(v any) any {
	switch x := v.(type) {
	case mapreduce.Date:
		return pgtype.Date{Time: x.Time(), Valid: true}
	case *apd.Decimal:
		return numeric(x)
	case []*apd.Decimal:
		return convertAll(x, numeric)
	case []mapreduce.Date:
		return convertAll(x, func(d mapreduce.Date) pgtype.Date { return pgtype.Date{Time: d.Time(), Valid: true} })
	}
	return v
}

// convertAll converts the elements of an array value.
func convertAll[T, U any](xs []T, conv func(T) U) []U {
	us := make([]U, len(xs))
	for i, x := range xs {
		us[i] = conv(x)
	}
	return us
}

// numeric is d as pgx writes numeric: exactly, coefficient and exponent.
func numeric(d *apd.Decimal) pgtype.Numeric {
	switch d.Form {
	case apd.NaN, apd.NaNSignaling:
		return pgtype.Numeric{NaN: true, Valid: true}
	case apd.Infinite:
		if d.Negative {
			return pgtype.Numeric{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
		}
		return pgtype.Numeric{InfinityModifier: pgtype.Infinity, Valid: true}
	}
	n := d.Coeff.MathBigInt()
	if d.Negative {
		n.Neg(n)
	}
	return pgtype.Numeric{Int: n, Exp: d.Exponent, Valid: true}
}

func (c *copySource) Err() error {
	if c.err != nil {
		return c.err
	}
	return c.rows.Err()
}
