package sources

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mrengine/mr/mapreduce"
)

// Split methods, as SplitMethod names them.
const (
	SplitHistogram  = splitHistogram
	SplitFullRead   = splitFullRead
	SplitBernoulli  = splitBernoulli
	SplitSystem     = splitSystem
	SplitEqualWidth = splitEqualWidth
)

// SplitMethod is Split without retries, also naming the method it used.
func SplitMethod(ctx context.Context, s *Postgres, in mapreduce.Input, info mapreduce.TableInfo, n int) ([]mapreduce.Partition, string, error) {
	return s.split(ctx, in, info, n)
}

// SetSampleThresholds sets the table sizes up to which Split reads every
// cursor value, and samples rows rather than pages.
func SetSampleThresholds(s *Postgres, fullReadMax, bernoulliMax int64) {
	s.fullReadMax, s.bernoulliMax = fullReadMax, bernoulliMax
}

// DistinctCuts is distinctCuts.
var DistinctCuts = distinctCuts

// NewRowDecoder returns the decode function of a decoder of one query's
// rows, as ReadChunk and Stream make one per query: it appends a row to
// b and returns its cursor.
func NewRowDecoder(fields []pgconn.FieldDescription, m *pgtype.Map) (func(raw [][]byte, b *mapreduce.Batch) (int64, error), error) {
	d, err := newRowDecoder(fields, m)
	if err != nil {
		return nil, err
	}
	return d.decode, nil
}

// SetMarkLogDelay sets how long Mark waits before it logs the
// transactions it waits for.
func SetMarkLogDelay(s *Postgres, d time.Duration) { s.markLogDelay = d }

// NewTieDecoder is NewRowDecoder for a compound cursor's query: its
// order column as the engine's cursor and its tie-breaker.
func NewTieDecoder(fields []pgconn.FieldDescription, m *pgtype.Map) (func(raw [][]byte, b *mapreduce.Batch) (int64, int64, error), error) {
	d, err := newCursorDecoder(fields, m, true)
	if err != nil {
		return nil, err
	}
	return d.decodeTie, nil
}
