// Package partition splits the cursor space of a source into contiguous
// ranges, the unit of a map task. (The key space of map output is split
// into hash buckets by package shuffle.)
package partition

import (
	"fmt"
	"math"
)

// Range is a half-open interval [Lo, Hi) of cursor values.
type Range struct {
	Lo int64 `json:"lo"`
	Hi int64 `json:"hi"`
}

// Empty reports whether the range holds no cursor value.
func (r Range) Empty() bool { return r.Hi <= r.Lo }

// Contains reports whether c lies in [Lo, Hi).
func (r Range) Contains(c int64) bool { return r.Lo <= c && c < r.Hi }

func (r Range) String() string { return fmt.Sprintf("[%d, %d)", r.Lo, r.Hi) }

// Split cuts [min, max] (both inclusive, as a source reports them) into n
// ranges of equal width that together cover it exactly, in order. Ranges may
// be empty when the span is smaller than n; the engine runs them anyway
// (cheaply) so that the number of partitions is what the plan says.
func Split(min, max int64, n int) ([]Range, error) {
	if n < 1 {
		return nil, fmt.Errorf("partition: need at least 1 partition, got %d", n)
	}
	if max < min {
		return nil, fmt.Errorf("partition: max %d below min %d", max, min)
	}
	if max == math.MaxInt64 {
		return nil, fmt.Errorf("partition: cursor value %d leaves no room for an exclusive upper bound", max)
	}
	hi := max + 1
	// Work in float64-free integer arithmetic: span may exceed int64 when
	// min is very negative, so split the width as uint64.
	span := uint64(hi - min)
	ranges := make([]Range, n)
	lo := min
	for i := range n {
		next := hi
		if i < n-1 {
			next = min + int64(span/uint64(n)*uint64(i+1)+span%uint64(n)*uint64(i+1)/uint64(n))
		}
		ranges[i] = Range{Lo: lo, Hi: next}
		lo = next
	}
	return ranges, nil
}
