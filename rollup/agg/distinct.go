package agg

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
)

// distinctState is an aggregate over DISTINCT values: count(DISTINCT x)
// exactly, and sum(DISTINCT x), avg(DISTINCT x) and the others, which
// fold the set into their plain state at Result. It holds the set of
// values, one per distinctness key (appendKey: PostgreSQL's equality);
// of values with one key (1.0, 1.00) it keeps the greatest in the total
// order (1.00), whatever the order they came in.
//
// Encoding: the number of values, then each (see appendValue) in the
// order of their keys' bytes.
type distinctState struct {
	f    *Func
	idx  map[string]int // key → index in vals
	vals []Value
	key  []byte // scratch
	tmp  Value
}

func newDistinct(f *Func) *distinctState { return &distinctState{f: f} }

func (s *distinctState) Add(args ...*Value) error {
	v, err := s.f.normalArg(args, &s.tmp)
	if v == nil {
		return err // NULL, or a bad argument
	}
	s.insert(v)
	return nil
}

// insert adds v to the set, copying it if it is new or a better
// representative of its key.
func (s *distinctState) insert(v *Value) {
	s.key = appendKey(s.key[:0], v)
	if i, ok := s.idx[string(s.key)]; ok {
		if tiebreak(v, &s.vals[i]) > 0 {
			s.vals[i] = Value{}
			copyValue(&s.vals[i], v)
		}
		return
	}
	if s.idx == nil {
		s.idx = make(map[string]int)
	}
	s.idx[string(s.key)] = len(s.vals)
	s.vals = append(s.vals, Value{})
	copyValue(&s.vals[len(s.vals)-1], v)
}

func (s *distinctState) Merge(other State) error {
	o, ok := other.(*distinctState)
	if !ok || o.f.op != s.f.op || o.f.Args[0].Kind != s.f.Args[0].Kind || (o.f.inner == nil) != (s.f.inner == nil) ||
		s.f.inner != nil && (o.f.inner.op != s.f.inner.op || o.f.inner.n != s.f.inner.n || o.f.inner.quantile != s.f.inner.quantile) {
		return s.f.mergeMismatch(other)
	}
	if o == s {
		return nil // a set merged with itself is itself
	}
	for i := range o.vals {
		s.insert(&o.vals[i])
	}
	return nil
}

// sorted returns the values in the order of their keys.
func (s *distinctState) sorted() []*Value {
	type kv struct {
		k string
		v *Value
	}
	kvs := make([]kv, 0, len(s.vals))
	for k, i := range s.idx {
		kvs = append(kvs, kv{k, &s.vals[i]})
	}
	slices.SortFunc(kvs, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	out := make([]*Value, len(kvs))
	for i, e := range kvs {
		out[i] = e.v
	}
	return out
}

func (s *distinctState) AppendBinary(b []byte) ([]byte, error) {
	b = appendHeader(b, tagDistinct)
	b = binary.AppendUvarint(b, uint64(len(s.vals)))
	for _, v := range s.sorted() {
		b = appendValue(b, v)
	}
	return b, nil
}

func (s *distinctState) decode(d *decoder) {
	n := d.length("value count", 1)
	var prev []byte
	for i := 0; i < n && d.err == nil; i++ {
		var v Value
		d.value(s.f.Args[0].Kind, &v)
		if d.err != nil {
			return
		}
		s.key = appendKey(s.key[:0], &v)
		if i > 0 && bytes.Compare(prev, s.key) >= 0 {
			d.failf("values out of order or repeated")
			return
		}
		prev = append(prev[:0], s.key...)
		s.insert(&v)
	}
}

func (s *distinctState) Result() (Value, error) {
	if s.f.inner == nil {
		return IntValue(int64(len(s.vals))), nil
	}
	in := s.f.inner.newState()
	for i := range s.vals {
		if err := in.Add(&s.vals[i]); err != nil {
			return Value{}, err
		}
	}
	return in.Result()
}
