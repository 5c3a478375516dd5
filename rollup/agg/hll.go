package agg

import (
	"github.com/axiomhq/hyperloglog"
)

// approx_count_distinct is a HyperLogLog sketch (github.com/axiomhq/
// hyperloglog) of precision 14: 2^14 registers, a relative standard error
// of 1.04/√2^14 ≈ 0.81%, exact-looking for small counts (its sparse
// representation is linear counting over 2^25 buckets). The sketch is
// sparse (a few bytes per distinct value) until its sorted list of hashed
// values outgrows 2^14 bytes, then dense (16 KiB).
const (
	hllPrecision = 14
	hllStdError  = 1.04 / 128 // 1.04/√(2^hllPrecision)
)

// hllState is approx_count_distinct(x). Values are hashed by their
// distinctness key (appendKey), so 1.0 and 1.00, or -0 and 0, count once,
// as they do for count(DISTINCT x).
//
// The library's encoding is not canonical (its doc says so): a sparse
// sketch holds a hash set of fresh hashes (tmpSet) whose iteration order
// depends on the insertion history, beside its sorted list, and whether
// the list was compacted depends on when Estimate last ran. AppendBinary
// therefore compacts a sparse sketch first (Estimate merges the set into
// the sorted list and turns the sketch dense when the list outgrows 2^14
// bytes, as insertion would have), after which its encoding is a function
// of its value alone:
//
//   - sparse: the sorted list of distinct sparse keys, which is the union
//     of all inputs' keys whatever the grouping;
//   - dense: the registers, each the maximum over the inputs; the sketch
//     is dense exactly when the list of the union outgrows 2^14 bytes
//     (the list's size only grows with the set, so any part that went
//     dense implies the whole would have), and converting a sparse key
//     gives the register a dense insertion of the same hash gives.
//
// TestHLL_Canonical proves both properties on random inputs.
//
// Encoding: 0 for the empty state, else 1 and the library's encoding
// (version 2) of the compacted sketch.
type hllState struct {
	f   *Func
	has bool
	sk  hyperloglog.Sketch
	key []byte
	tmp Value
}

func (s *hllState) Add(args ...*Value) error {
	v, err := s.f.normalArg(args, &s.tmp)
	if v == nil {
		return err // NULL, or a bad argument
	}
	s.key = appendKey(s.key[:0], v)
	s.sk.Insert(s.key)
	s.has = true
	return nil
}

func (s *hllState) Merge(other State) error {
	o, ok := other.(*hllState)
	if !ok {
		return s.f.mergeMismatch(other)
	}
	if !o.has || o == s {
		return nil // a sketch merged with itself is itself
	}
	if err := s.sk.Merge(&o.sk); err != nil {
		return err
	}
	s.has = true
	return nil
}

func (s *hllState) AppendBinary(b []byte) ([]byte, error) {
	b = appendHeader(b, tagHLL)
	if !s.has {
		return append(b, 0), nil
	}
	b = append(b, 1)
	start := len(b)
	out, err := s.sk.AppendBinary(b)
	if err != nil {
		return b, err
	}
	if out[start+3] == 1 { // sparse: compact, then encode again
		s.sk.Estimate()
		return s.sk.AppendBinary(b)
	}
	return out, nil
}

func (s *hllState) decode(d *decoder) {
	switch d.byte() {
	case 0:
		return
	case 1:
	default:
		d.failf("bad presence byte")
		return
	}
	rest := d.rest()
	if len(rest) >= 2 && rest[1] != hllPrecision {
		d.failf("HyperLogLog precision %d, want %d", rest[1], hllPrecision)
		return
	}
	if err := s.sk.UnmarshalBinary(rest); err != nil {
		d.failf("%v", err)
		return
	}
	d.off = len(d.b)
	s.has = true
}

func (s *hllState) Result() (Value, error) {
	if !s.has {
		return IntValue(0), nil
	}
	return IntValue(int64(s.sk.Estimate())), nil
}
