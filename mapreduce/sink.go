package mapreduce

import "context"

// Sink receives the reduced rows, one transaction per bucket. The bucket's
// commit record is written in the same transaction, so a bucket is either
// applied and recorded or neither, whatever the moment of a crash.
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

// OutputRows iterates over output rows: key values then value values, in the
// order of the Table's fields, as int64, float64, string, bool, Date or
// time.Time. It has the shape of pgx.CopyFromSource. The slice Values
// returns is valid until the next call to Next.
type OutputRows interface {
	Next() bool
	Values() ([]any, error)
	Err() error
}
