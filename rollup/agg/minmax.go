package agg

import (
	"encoding/binary"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/cockroachdb/apd/v3"
)

// compareValues orders two normalized values of one kind as PostgreSQL's
// btree operators do: numerics and floats with NaN above everything and
// -Infinity below, floats with -0 = 0, texts bytewise (PostgreSQL's "C"
// collation; see the package doc), numbers, dates and timestamps by
// value. Values that compare equal may still differ (1.0 and 1.00, -0 and
// 0): tiebreak orders those.
func compareValues(a, b *Value) int {
	switch a.Kind {
	case KindFloat:
		x, y := a.Float, b.Float
		switch {
		case x != x:
			if y != y {
				return 0
			}
			return 1
		case y != y:
			return -1
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case KindDecimal:
		return compareDecimals(&a.Dec, &b.Dec)
	case KindText:
		return strings.Compare(a.Str, b.Str)
	case KindBytes:
		return compareBytes(a.Bytes, b.Bytes)
	}
	switch {
	case a.Int < b.Int:
		return -1
	case a.Int > b.Int:
		return 1
	}
	return 0
}

func compareBytes(a, b []byte) int { return strings.Compare(string(a), string(b)) }

// decRank orders the forms of numerics: -Infinity, finite, Infinity, NaN.
func decRank(d *apd.Decimal) int {
	switch d.Form {
	case apd.Finite:
		return 1
	case apd.Infinite:
		if d.Negative {
			return 0
		}
		return 2
	}
	return 3
}

func compareDecimals(a, b *apd.Decimal) int {
	ra, rb := decRank(a), decRank(b)
	switch {
	case ra != rb:
		return cmpInt(ra, rb)
	case ra != 1:
		return 0
	}
	return a.Cmp(b)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// tiebreak orders values that compareValues finds equal, so that the
// value min, max and the top-n keep is a function of the input multiset,
// never of row order (PostgreSQL's numeric_larger keeps whichever came
// last): a numeric of greater display scale is greater (1.00 > 1.0), and
// 0 > -0, as IEEE 754's totalOrder has it.
func tiebreak(a, b *Value) int {
	switch a.Kind {
	case KindDecimal:
		if a.Dec.Form == apd.Finite && b.Dec.Form == apd.Finite {
			return cmpInt(-int(a.Dec.Exponent), -int(b.Dec.Exponent))
		}
	case KindFloat:
		return cmpInt(int(math.Float64bits(b.Float)>>63), int(math.Float64bits(a.Float)>>63))
	}
	return 0
}

// order is compareValues, then tiebreak: a total order on normalized values.
func order(a, b *Value) int {
	if c := compareValues(a, b); c != 0 {
		return c
	}
	return tiebreak(a, b)
}

// minMaxState is min(x) and max(x): the extreme value so far, in the total
// order (so a tie keeps the same value whatever the order of rows).
//
// Encoding: 0 for no value, or 1 and the value (see appendValue).
type minMaxState struct {
	f   *Func
	has bool
	v   Value
	tmp Value // a normalized copy of the input, reused
}

func (s *minMaxState) Add(args ...*Value) error {
	v, err := s.f.normalArg(args, &s.tmp)
	if v == nil {
		return err // NULL, or a bad argument
	}
	s.offer(v)
	return nil
}

// offer keeps v if it beats the current value.
func (s *minMaxState) offer(v *Value) {
	if s.has {
		c := order(v, &s.v)
		if s.f.op == opMin {
			c = -c
		}
		if c <= 0 {
			return
		}
	}
	s.has = true
	copyValue(&s.v, v)
}

func (s *minMaxState) Merge(other State) error {
	o, ok := other.(*minMaxState)
	if !ok || o.f.op != s.f.op || o.f.Args[0].Kind != s.f.Args[0].Kind {
		return s.f.mergeMismatch(other)
	}
	if o.has && o != s {
		s.offer(&o.v)
	}
	return nil
}

func (s *minMaxState) AppendBinary(b []byte) ([]byte, error) {
	b = appendHeader(b, tagMinMax)
	if !s.has {
		return append(b, 0), nil
	}
	return appendValue(append(b, 1), &s.v), nil
}

func (s *minMaxState) decode(d *decoder) {
	switch d.byte() {
	case 0:
	case 1:
		s.has = true
		d.value(s.f.Args[0].Kind, &s.v)
	default:
		d.failf("bad presence byte")
	}
}

func (s *minMaxState) Result() (Value, error) {
	if !s.has {
		return Null(s.f.Args[0].Kind), nil
	}
	var v Value
	copyValue(&v, &s.v)
	return v, nil
}

// topNState is max_n(x, n) and min_n(x, n): the n greatest (least) values,
// duplicates kept, best first in the total order, so the kept multiset
// and its order are functions of the input multiset alone.
//
// Encoding: the number of values, then each (see appendValue), best first.
type topNState struct {
	f    *Func
	vals []Value
	tmp  Value
}

// better reports whether a goes before b.
func (s *topNState) better(a, b *Value) bool {
	c := order(a, b)
	if s.f.op == opMinN {
		return c < 0
	}
	return c > 0
}

func (s *topNState) Add(args ...*Value) error {
	v, err := s.f.normalArg(args, &s.tmp)
	if v == nil {
		return err // NULL, or a bad argument
	}
	s.offer(v)
	return nil
}

// offer inserts v in its place, dropping the worst value beyond n.
func (s *topNState) offer(v *Value) {
	n := len(s.vals)
	if n == s.f.n && !s.better(v, &s.vals[n-1]) {
		return
	}
	i := sort.Search(n, func(j int) bool { return s.better(v, &s.vals[j]) })
	if n < s.f.n {
		if s.vals == nil {
			s.vals = make([]Value, 0, min(s.f.n, 64))
		}
		s.vals = append(s.vals, Value{})
		n++
	}
	copy(s.vals[i+1:n], s.vals[i:n-1])
	s.vals[i] = Value{}
	copyValue(&s.vals[i], v)
}

func (s *topNState) Merge(other State) error {
	o, ok := other.(*topNState)
	if !ok || o.f.op != s.f.op || o.f.n != s.f.n || o.f.Args[0].Kind != s.f.Args[0].Kind {
		return s.f.mergeMismatch(other)
	}
	vals := o.vals
	if o == s {
		vals = slices.Clone(o.vals)
	}
	for i := range vals {
		s.offer(&vals[i])
	}
	return nil
}

func (s *topNState) AppendBinary(b []byte) ([]byte, error) {
	b = appendHeader(b, tagTopN)
	b = binary.AppendUvarint(b, uint64(len(s.vals)))
	for i := range s.vals {
		b = appendValue(b, &s.vals[i])
	}
	return b, nil
}

func (s *topNState) decode(d *decoder) {
	n := d.length("value count", 1)
	if d.err == nil && n > s.f.n {
		d.failf("%d values for n = %d", n, s.f.n)
	}
	if d.err != nil || n == 0 {
		return
	}
	s.vals = make([]Value, n)
	for i := range s.vals {
		d.value(s.f.Args[0].Kind, &s.vals[i])
		if d.err == nil && i > 0 && !s.better(&s.vals[i-1], &s.vals[i]) && order(&s.vals[i-1], &s.vals[i]) != 0 {
			d.failf("values out of order")
		}
	}
}

// Result is the values as an array, best first: max_n descending, min_n
// ascending; NULL for no rows, as max is.
func (s *topNState) Result() (Value, error) {
	if len(s.vals) == 0 {
		return Null(KindArray), nil
	}
	v := Value{Kind: KindArray, Elems: make([]Value, len(s.vals))}
	for i := range s.vals {
		copyValue(&v.Elems[i], &s.vals[i])
	}
	return v, nil
}
