// Package partition splits the cursor space of a source into contiguous
// ranges, the unit of a map task. (The key space of map output is split
// into hash buckets by package shuffle.)
package partition

import (
	"fmt"
	"math"
)

// Range is a half-open interval [Lo, Hi) of cursor values, or, when ToMax
// is set, the closed interval [Lo, math.MaxInt64], with Hi then
// math.MaxInt64. An int64 Hi cannot lie past math.MaxInt64, so without
// ToMax no range could hold the largest cursor; with it every set of
// consecutive int64 values has one Range, including the empty one at the
// top ([MaxInt64, MaxInt64) without ToMax). Only the last range of a span
// that reaches math.MaxInt64 has ToMax, so a range saved before ToMax
// existed reads as what it always meant.
//
// Code that reads a range asks it, rather than computing with Hi: Contains,
// Empty, Last for an inclusive upper bound, After to move past a cursor.
type Range struct {
	Lo    int64 `json:"lo"`
	Hi    int64 `json:"hi"`
	ToMax bool  `json:"to_max,omitempty"`
}

// Through returns the range of lo through last, both included: [lo,
// last+1), or [lo, math.MaxInt64] with ToMax when last is math.MaxInt64.
// It is empty when last is below lo.
func Through(lo, last int64) Range {
	if last == math.MaxInt64 {
		return Range{Lo: lo, Hi: math.MaxInt64, ToMax: true}
	}
	return Range{Lo: lo, Hi: last + 1}
}

// Empty reports whether the range holds no cursor value.
func (r Range) Empty() bool { return !r.ToMax && r.Hi <= r.Lo }

// Contains reports whether c lies in r.
func (r Range) Contains(c int64) bool { return r.Lo <= c && (c < r.Hi || r.ToMax) }

// Last returns the largest cursor value in r, the inclusive upper bound a
// range query takes, and false if r is empty: an empty range has no such
// bound when it lies at math.MinInt64, so it must not be queried at all.
func (r Range) Last() (int64, bool) {
	switch {
	case r.ToMax:
		return math.MaxInt64, true
	case r.Empty():
		return 0, false
	}
	return r.Hi - 1, true
}

// After returns what is left of r to read once every cursor up to c is
// read: r from c+1 on, or, when c is r's last value or beyond it, the
// empty range at r's end (so that no caller computes math.MaxInt64+1). A
// c below r leaves r whole.
func (r Range) After(c int64) Range {
	switch {
	case c < r.Lo:
		return r
	case c == math.MaxInt64 || !r.ToMax && c+1 >= r.Hi:
		return Range{Lo: r.Hi, Hi: r.Hi}
	}
	r.Lo = c + 1
	return r
}

// Width returns how many cursor values r holds, for estimates: a float64,
// since the whole of int64 holds 2^64 of them.
func (r Range) Width() float64 {
	last, ok := r.Last()
	if !ok {
		return 0
	}
	return float64(uint64(last-r.Lo)) + 1
}

func (r Range) String() string {
	if r.ToMax {
		return fmt.Sprintf("[%d, %d]", r.Lo, int64(math.MaxInt64))
	}
	return fmt.Sprintf("[%d, %d)", r.Lo, r.Hi)
}

// Split cuts [min, max] (both inclusive, as a source reports them) into n
// ranges of equal width that together cover it exactly, in order; the
// last has ToMax when max is math.MaxInt64. Ranges may be empty when the
// span is smaller than n; the engine runs them anyway (cheaply) so that
// the number of partitions is what the plan says.
func Split(min, max int64, n int) ([]Range, error) {
	if n < 1 {
		return nil, fmt.Errorf("partition: need at least 1 partition, got %d", n)
	}
	if max < min {
		return nil, fmt.Errorf("partition: max %d below min %d", max, min)
	}
	// The span holds max-min+1 values, up to 2^64, which fits neither
	// int64 nor uint64: split it as w+1 with w = max-min as a uint64, the
	// i-th cut being min + floor((w+1)*i/n) = min + q*i + rem*i/n.
	w, k := uint64(max-min), uint64(n)
	q, rem := w/k, w%k+1
	if rem == k {
		q, rem = q+1, 0
	}
	ranges := make([]Range, n)
	lo := min
	for i := range n - 1 {
		c := uint64(i + 1)
		next := min + int64(q*c+rem*c/k)
		ranges[i] = Range{Lo: lo, Hi: next}
		lo = next
	}
	ranges[n-1] = Through(lo, max)
	return ranges, nil
}
