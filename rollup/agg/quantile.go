package agg

import (
	"encoding/binary"
	"math"
	"slices"

	"github.com/DataDog/sketches-go/ddsketch"
	enc "github.com/DataDog/sketches-go/ddsketch/encoding"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// approx_quantile and median are a DDSketch (github.com/DataDog/
// sketches-go) with a logarithmic index mapping of relative accuracy 1%:
// every value the sketch returns for a rank is within 1% (relative) of the
// value of that rank, and a bin holds the values within a factor γ =
// 1.01/0.99 of each other, so the sketch of values spanning a factor R has
// about ln(R)/0.02 bins: 1e-6 to 1e2 take 922 bins, 7 KiB. Its counts are
// integers in float64, exact below 2^53 rows per group.
const quantileAccuracy = 0.01

// quantileMapping is shared by every quantile state: a mapping is
// immutable, and states of one mapping merge.
var quantileMapping = func() *mapping.LogarithmicMapping {
	m, err := mapping.NewLogarithmicMapping(quantileAccuracy)
	if err != nil {
		panic(err)
	}
	return m
}()

// The range of bin indexes of the mapping, which a decoded state must keep
// to: it bounds the dense stores' allocations.
var (
	minQuantileIndex = quantileMapping.Index(quantileMapping.MinIndexableValue())
	maxQuantileIndex = quantileMapping.Index(quantileMapping.MaxIndexableValue())
)

// quantileState is approx_quantile(x, q) and median(x). NaNs and
// infinities, which a DDSketch cannot hold, are counted beside it and take
// the ranks PostgreSQL's ordering gives them: -Infinity first, Infinity
// then NaN last. Values too small for the mapping (below 2.2e-308) count as
// 0 and values too large (above about 1.7e308) as the largest it indexes.
//
// The library's sketch merges and encodes deterministically with dense
// stores: bins are indexed by value, counts are exact integer sums, and
// DenseStore.Encode writes the bins from the least to the greatest
// nonempty index, choosing its contiguous or sparse layout from those bins
// alone, never from the store's allocation (offset, capacity), which does
// depend on history. TestQuantile_Canonical proves it on random inputs.
//
// Encoding: the counts of -Infinity, Infinity and NaN (uvarints), then the
// library's encoding without the index mapping (the zero count, the
// positive store, the negative store, each only if nonempty).
type quantileState struct {
	f                *Func
	sk               *ddsketch.DDSketch
	ninf, pinf, nans int64
}

func newQuantile(f *Func) *quantileState {
	return &quantileState{f: f, sk: ddsketch.NewDDSketch(quantileMapping, store.NewDenseStore(), store.NewDenseStore())}
}

func (s *quantileState) Add(args ...*Value) error {
	if len(args) != 1 {
		return s.f.badArity(len(args))
	}
	v := args[0]
	if v.Null {
		return nil
	}
	var x float64
	switch {
	case v.Kind != s.f.Args[0].Kind:
		return s.f.badKind(0, v)
	case v.Kind == KindFloat:
		x = v.Float
	case v.Kind == KindInt:
		x = float64(v.Int)
	default:
		var err error
		if x, err = decimalFloat64(&v.Dec); err != nil {
			return err
		}
	}
	switch {
	case x != x:
		s.nans++
	case math.IsInf(x, 1):
		s.pinf++
	case math.IsInf(x, -1):
		s.ninf++
	default:
		lim := quantileMapping.MaxIndexableValue()
		x = max(-lim, min(x, lim))
		return s.sk.Add(x)
	}
	return nil
}

func (s *quantileState) Merge(other State) error {
	o, ok := other.(*quantileState)
	if !ok || o.f.quantile != s.f.quantile {
		return s.f.mergeMismatch(other)
	}
	sk := o.sk
	if o == s {
		sk = o.sk.Copy()
	}
	var counts [3]int64
	for i, p := range [][2]int64{{s.ninf, o.ninf}, {s.pinf, o.pinf}, {s.nans, o.nans}} {
		c, err := addCount(p[0], p[1])
		if err != nil {
			return err
		}
		counts[i] = c
	}
	if err := s.sk.MergeWith(sk); err != nil {
		return err
	}
	s.ninf, s.pinf, s.nans = counts[0], counts[1], counts[2]
	return nil
}

func (s *quantileState) AppendBinary(b []byte) ([]byte, error) {
	b = appendHeader(b, tagQuantile)
	b = binary.AppendUvarint(b, uint64(s.ninf))
	b = binary.AppendUvarint(b, uint64(s.pinf))
	b = binary.AppendUvarint(b, uint64(s.nans))
	s.sk.Encode(&b, true)
	return b, nil
}

// maxExactCount is the largest count a float64 holds exactly.
const maxExactCount = 1 << 53

func (s *quantileState) decode(d *decoder) {
	s.ninf, s.pinf, s.nans = d.count("-Infinity count"), d.count("Infinity count"), d.count("NaN count")
	if d.err != nil {
		return
	}
	// The library's DecodeAndMergeWith ignores errors of the stores and
	// would size a dense store from any index it reads; decode into sparse
	// stores, check every bin, then fill the dense ones.
	rest := d.rest()
	pos, neg := store.NewSparseStore(), store.NewSparseStore()
	var zero float64
	for len(rest) > 0 {
		flag, err := enc.DecodeFlag(&rest)
		if err == nil {
			switch {
			case flag == enc.FlagZeroCountVarFloat:
				var zc float64
				zc, err = enc.DecodeVarfloat64(&rest)
				zero += zc
			case flag.Type() == enc.FlagTypePositiveStore:
				err = store.DecodeAndMergeWith(pos, &rest, flag.SubFlag())
			case flag.Type() == enc.FlagTypeNegativeStore:
				err = store.DecodeAndMergeWith(neg, &rest, flag.SubFlag())
			default:
				d.failf("DDSketch flag %v", flag)
				return
			}
		}
		if err != nil {
			d.failf("DDSketch: %v", err)
			return
		}
	}
	d.off = len(d.b)
	if !validCount(zero) {
		d.failf("DDSketch zero count %v", zero)
		return
	}
	for _, st := range []struct {
		from *store.SparseStore
		to   store.Store
	}{{pos, s.sk.GetPositiveValueStore()}, {neg, s.sk.GetNegativeValueStore()}} {
		type bin struct {
			i int
			c float64
		}
		var bins []bin
		st.from.ForEach(func(i int, c float64) bool {
			bins = append(bins, bin{i, c})
			return false
		})
		slices.SortFunc(bins, func(a, b bin) int { return a.i - b.i })
		for _, b := range bins {
			if b.i < minQuantileIndex || b.i > maxQuantileIndex || !validCount(b.c) {
				d.failf("DDSketch bin %d of count %v", b.i, b.c)
				return
			}
			st.to.AddWithCount(b.i, b.c)
		}
	}
	if zero > 0 {
		_ = s.sk.AddWithCount(0, zero)
	}
	if s.sk.GetCount() > maxExactCount {
		d.failf("DDSketch of %v values", s.sk.GetCount())
	}
}

// validCount: a count of values, as DDSketch stores it.
func validCount(c float64) bool { return c >= 0 && c <= maxExactCount && c == math.Trunc(c) }

// Result is percentile_cont(q) WITHIN GROUP (ORDER BY x), as PostgreSQL
// computes it from the two values of ranks floor and ceil of q·(N−1),
// with the sketch's values for those ranks.
func (s *quantileState) Result() (Value, error) {
	total := s.ninf + int64(s.sk.GetCount()) + s.pinf + s.nans
	if total == 0 {
		return Null(KindFloat), nil
	}
	r := s.f.quantile * float64(total-1)
	lo, hi := math.Floor(r), math.Ceil(r)
	first := s.valueAtRank(int64(lo))
	if lo == hi {
		return FloatValue(first), nil
	}
	second := s.valueAtRank(int64(hi))
	return FloatValue(first + (second-first)*(r-lo)), nil // float8_lerp
}

// valueAtRank returns the sketch's value of rank k (0-based, ascending).
func (s *quantileState) valueAtRank(k int64) float64 {
	if k < s.ninf {
		return math.Inf(-1)
	}
	k -= s.ninf
	negs := s.sk.GetNegativeValueStore()
	if n := int64(negs.TotalCount()); k < n {
		return -s.sk.Value(negs.KeyAtRank(float64(n - 1 - k)))
	} else {
		k -= n
	}
	if z := int64(s.sk.GetZeroCount()); k < z {
		return 0
	} else {
		k -= z
	}
	poss := s.sk.GetPositiveValueStore()
	if n := int64(poss.TotalCount()); k < n {
		return s.sk.Value(poss.KeyAtRank(float64(k)))
	} else {
		k -= n
	}
	if k < s.pinf {
		return math.Inf(1)
	}
	return math.NaN()
}
