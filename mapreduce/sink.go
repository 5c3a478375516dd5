package mapreduce

import (
	"context"
	"errors"
)

// ErrNotApplied is wrapped by an Apply error after which the bucket is
// surely not applied, and would be if applied again: the connection broke
// once the rows had been streamed (they cannot be read twice), or a COMMIT
// failed without effect. The engine then reads the bucket's committed
// files anew and applies it again, so a database restart in the reduce
// phase only pauses a run.
var ErrNotApplied = errors.New("the bucket was not applied")

// Sink receives the reduced rows, one transaction per bucket. The bucket's
// commit record is written in the same transaction, so a bucket is either
// applied and recorded or neither, whatever the moment of a crash.
//
// A Sink that is also a Replacer lets a run replace its output table
// rather than merge into it; see Replacer.
type Sink interface {
	// String names the sink with any password redacted.
	String() string

	// Prepare creates the output table if it is missing (primary key on
	// t.Keys) and checks that an existing one has the needed columns.
	Prepare(ctx context.Context, t OutputTable) error

	// Committed returns the buckets already applied under commit.
	Committed(ctx context.Context, commit string) ([]int, error)

	// Apply upserts rows into t and records bucket as committed under
	// commit, in one transaction: INSERT … ON CONFLICT (keys) DO UPDATE
	// SET v = excluded.v, so that applying the same rows twice leaves the
	// table as applying them once.
	Apply(ctx context.Context, t OutputTable, commit string, bucket int, rows OutputRows) error
}

// Replacer is a Sink that can build a run's output in a staging table and
// swap it in for the output table at the end, so that a full run leaves
// exactly the groups it computed (none of a deleted source row survives)
// and readers never see a half-built table: they read the old table until
// the swap commits, then the new one. A run over a sink that is not a
// Replacer upserts into the output table, keeping the groups it did not
// write.
//
// Both methods are idempotent per commit, which makes a resumed run exact
// after a crash at any point. Schematically, a run does
//
//	Prepare(t); Claim(t, run, commit); staged := Stage(t, run, commit)
//	Apply(staged, commit, b, rows) for every bucket b not yet Committed(commit)
//	Swap(t, run, commit)
type Replacer interface {
	Sink

	// Claim makes run, with its plan's commit, the owner of t's table
	// until Swap, or fails if another unfinished run owns it: two runs
	// that replace one table would leave a mix of both. The engine calls
	// it right after Prepare, so that a second run is refused before it
	// reads a row. The same run is never refused (a resume, or a fresh
	// plan of it, takes its claim over), and a commit already swapped in
	// claims nothing. t must be prepared.
	Claim(ctx context.Context, t OutputTable, run, commit string) error

	// Stage returns the table into which Apply builds the output of
	// commit: a staging table next to t (same columns and, where the
	// backend can copy them, defaults and constraints; a backend may give
	// it t's keys and indexes only at Swap, once it is filled), whose name
	// derives from run, so that every plan of a run uses the same one.
	// It creates the table for a commit that has none yet, dropping a
	// staging table left by an earlier plan of the run, and finds it again
	// for a resumed one. Once commit is swapped it returns t and creates
	// nothing. t must be prepared.
	Stage(ctx context.Context, t OutputTable, run, commit string) (OutputTable, error)

	// Swap replaces t with the staging table of run, in one transaction
	// that also records the swap under commit (a backend may build the
	// staging table's indexes before it, in a transaction of their own);
	// a commit already swapped is left alone. It fails, leaving t as it
	// was, where the database keeps the old table from being dropped (a
	// view that depends on it, say) or the output breaks one of t's unique
	// indexes, with an error that says what to do before running again.
	Swap(ctx context.Context, t OutputTable, run, commit string) error
}

// Merger is a Sink that an incremental run merges into (see
// Config.Incremental): it reads back the groups an earlier run stored, so
// that the engine can Combine the new rows' values into them, and writes
// the merged groups, all in the bucket's one transaction.
type Merger interface {
	Sink

	// Merge applies bucket of an incremental run to t and records it as
	// committed under commit, in one transaction. For each part that m
	// yields (Next), it reads the rows of t whose keys are among m.Keys()
	// and hands them to m.Merge, then upserts the rows that returns, as
	// Apply does. A stored row holds t's key columns, then the columns of
	// cols, as OutputRows values (nil for NULL); a key that t does not
	// hold has no row. Keys of one bucket are in no other bucket, and no
	// two parts hold one key.
	//
	// If m.Window() is not nil, Merge first, before the first part, reads
	// the keys of every row of t whose key column Column holds From or a
	// later value (the values of t's key columns, in no particular
	// order), hands them to m.Owned and deletes the rows of the keys that
	// returns, in the same transaction: the window's groups of this bucket
	// are then recomputed whole from the parts, and the ones that no row
	// holds any more are gone.
	Merge(ctx context.Context, t OutputTable, cols []Field, commit string, bucket int, m MergeParts) error
}

// Window is the groups that an incremental batch with a lookback (see
// Lookback) recomputes from all of their rows and replaces, instead of
// merging its new rows into them: those whose key column Column holds
// From or a later value. From is an OutputRows value of the column's
// type.
type Window struct {
	Column string
	From   any
}

// MergeParts yields the new groups of one bucket in parts that fit the
// memory budget, for a Merger.
type MergeParts interface {
	// Next loads the next part; it returns false at the end and on an
	// error, which Err then returns.
	Next() bool
	// Keys iterates over the part's keys: the values of t's key columns.
	Keys() OutputRows
	// Merge reads the stored rows of the part's keys, to their end, and
	// returns the part's rows to upsert: every key of the part, its stored
	// value merged with its new one.
	Merge(stored OutputRows) (OutputRows, error)
	Err() error
	// Window is the window of groups that the batch replaces, nil for a
	// batch that only merges (see Merger).
	Window() *Window
	// Owned reads stored keys of the window to their end and returns
	// those of the bucket, whose rows the Merger deletes.
	Owned(stored OutputRows) (OutputRows, error)
}

// OutputRows iterates over output rows: key values then value values, in the
// order of the Table's fields, as int64, float64, string, bool, Date,
// time.Time, *apd.Decimal or []byte (nil for NULL), or a slice of one of
// them for an array field. It has the shape of pgx.CopyFromSource. The slice Values
// returns is valid until the next call to Next.
type OutputRows interface {
	Next() bool
	Values() ([]any, error)
	Err() error
}

// RowEncoder is implemented by the OutputRows of a bucket, which Apply
// and MergeParts.Merge hand to a sink: besides Values, EncodeRow writes
// the current row through e, field by field (with Array for an array
// field), in the same order and with the same values. It lets a sink
// that writes a wire format, like PostgreSQL's binary COPY, encode each
// value straight from the job's key and value, with no []any in between.
// A row is read once, by Values or by EncodeRow.
type RowEncoder interface {
	EncodeRow(e Encoder) error
}

// AnyOrder is implemented by the OutputRows of a bucket that Apply hands
// to a sink. They come in the order of their keys' columns (see
// sortByKey), which spares an index on them random writes; a sink that
// writes them where no index is kept up to date, as into a table whose
// indexes it builds later, calls InAnyOrder before the first Next to get
// them unsorted, without the sort's cost.
type AnyOrder interface {
	InAnyOrder()
}
