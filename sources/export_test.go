package sources

import (
	"context"

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
