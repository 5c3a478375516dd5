package agg_test

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
	"github.com/axiomhq/hyperloglog"

	"github.com/mrengine/mr/rollup/agg"
)

// distinctInts returns n distinct integers in random order, as rows.
func distinctInts(r *rand.Rand, n int) [][]agg.Value {
	seen := make(map[int64]bool, n)
	rows := make([][]agg.Value, 0, n)
	for len(rows) < n {
		x := r.Int64()
		if !seen[x] {
			seen[x] = true
			rows = append(rows, []agg.Value{agg.IntValue(x)})
		}
	}
	return rows
}

// TestHLL_LibraryNotCanonical shows why hllState canonicalizes: the
// library's own encoding of one set of values differs with the order they
// were inserted in and with whether Estimate ran.
func TestHLL_LibraryNotCanonical(t *testing.T) {
	t.Parallel()
	hashes := make([]uint64, 150)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range hashes {
		hashes[i] = r.Uint64()
	}
	enc := func(order []uint64, estimate bool) []byte {
		sk := hyperloglog.New14()
		for _, h := range order {
			sk.InsertHash(h)
		}
		if estimate {
			sk.Estimate()
		}
		b, err := sk.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	reversed := slices.Clone(hashes)
	slices.Reverse(reversed)
	a, b, c := enc(hashes, false), enc(reversed, false), enc(hashes, true)
	if bytes.Equal(a, b) && bytes.Equal(a, c) {
		t.Fatal("the library's encoding is canonical after all: hllState's compaction could go")
	}
	if d := enc(reversed, true); !bytes.Equal(c, d) {
		t.Fatal("compacted sparse sketches of one set encode differently")
	}
}

// TestHLL_Canonical proves what hllState's canonical encoding rests on, on
// sets around and far beyond the sparse-to-dense switch (about 7300
// values): the state of a set has one encoding whatever the partitions
// and merge orders, including merges of dense partials with sparse ones
// and of sparse partials whose union is dense; and a sketch that went
// dense through its sparse form has the registers of one dense from the
// start.
func TestHLL_Canonical(t *testing.T) {
	t.Parallel()
	f := resolve(t, "approx_count_distinct", false, []string{"bigint"})
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 3000, 7000, 7300, 7600, 8000, 30000} {
		rows := distinctInts(r, n)
		// Each value twice: duplicates must change nothing.
		rows = append(rows, rows...)
		want := encode(t, fold(t, f, rows))
		for try := range 6 {
			if got := encode(t, mergeRandomly(t, f, rows, r)); !bytes.Equal(got, want) {
				t.Fatalf("%d values, try %d: the merged sketch encodes differently", n, try)
			}
		}
		// Uneven partitions: a dense part and many sparse ones.
		big := fold(t, f, rows[:n*3/4])
		for i := n * 3 / 4; i < len(rows); i += 97 {
			part := fold(t, f, rows[i:min(i+97, len(rows))])
			if err := big.Merge(part); err != nil {
				t.Fatal(err)
			}
		}
		if got := encode(t, big); !bytes.Equal(got, want) {
			t.Fatalf("%d values: dense ⊕ sparse parts encode differently", n)
		}
		if n > 0 {
			t.Logf("%d distinct values: %s state of %d bytes", n, map[bool]string{true: "sparse", false: "dense"}[want[6] == 1], len(want))
		}
	}

	// Sparse-then-dense registers equal dense-from-the-start ones.
	for _, n := range []int{8000, 50000} {
		sparse, dense := hyperloglog.New14(), hyperloglog.NewNoSparse()
		for range n {
			h := r.Uint64()
			sparse.InsertHash(h)
			dense.InsertHash(h)
		}
		sparse.Estimate()
		a, _ := sparse.MarshalBinary()
		b, _ := dense.MarshalBinary()
		if a[3] != 0 {
			t.Fatalf("%d hashes: still sparse", n)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("%d hashes: a sketch that went dense has other registers than one dense from the start", n)
		}
	}
}

// TestHLL_Accuracy checks the stated error: within four standard errors
// (4 × 0.81%) for sets from 10 to a million values, and nearly exact while
// the sketch is sparse.
func TestHLL_Accuracy(t *testing.T) {
	t.Parallel()
	f := resolve(t, "approx_count_distinct", false, []string{"bigint"})
	r := rand.New(rand.NewPCG(5, 6))
	sizes := []int{10, 100, 1000, 4000, 10000, 100000, 1000000}
	if testing.Short() {
		sizes = sizes[:6]
	}
	for _, n := range sizes {
		s := f.New()
		var v agg.Value
		for range n {
			v.SetInt(r.Int64())
			if err := s.Add(&v); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Result()
		if err != nil {
			t.Fatal(err)
		}
		rel := math.Abs(float64(got.Int)-float64(n)) / float64(n)
		limit := 4 * f.RelativeError()
		if n <= 4000 {
			limit = 0.005 // sparse: linear counting over 2^25 buckets
		}
		if rel > limit {
			t.Errorf("%d distinct values: estimate %d, off by %.2f%% > %.2f%%", n, got.Int, 100*rel, 100*limit)
		}
		t.Logf("%7d distinct values: estimate %7d (%+.2f%%)", n, got.Int, 100*(float64(got.Int)-float64(n))/float64(n))
	}
}

// TestQuantile_LibraryStoresDependOnHistory shows what the dense stores'
// encoding has to be independent of: their allocation (offset and length)
// differs with insertion order, while their encoding does not.
func TestQuantile_LibraryStoresDependOnHistory(t *testing.T) {
	t.Parallel()
	m, err := mapping.NewLogarithmicMapping(0.01)
	if err != nil {
		t.Fatal(err)
	}
	xs := []float64{1, 1e6, 3, 1e-3, 42}
	build := func(order []float64) *ddsketch.DDSketch {
		sk := ddsketch.NewDDSketch(m, store.NewDenseStore(), store.NewDenseStore())
		for _, x := range order {
			if err := sk.Add(x); err != nil {
				t.Fatal(err)
			}
		}
		return sk
	}
	rev := slices.Clone(xs)
	slices.Reverse(rev)
	a, b := build(xs), build(rev)
	var ea, eb []byte
	a.Encode(&ea, true)
	b.Encode(&eb, true)
	if !bytes.Equal(ea, eb) {
		t.Fatal("dense stores of one multiset encode differently")
	}
	if pa, pb := a.GetPositiveValueStore().(*store.DenseStore), b.GetPositiveValueStore().(*store.DenseStore); pa.ToProto().ContiguousBinIndexOffset != pb.ToProto().ContiguousBinIndexOffset {
		t.Fatal("the encodings' bins start at different indexes")
	}
}

// TestQuantile_Canonical: the quantile state of a multiset has one
// encoding whatever the insertion order (ascending, descending, random)
// and merge tree, for data of every sign and a wide range.
func TestQuantile_Canonical(t *testing.T) {
	t.Parallel()
	f := resolve(t, "approx_quantile", false, []string{"double precision"}, agg.FloatValue(0.99))
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{1, 10, 1000, 20000} {
		rows := make([][]agg.Value, n)
		for i := range rows {
			x := math.Exp(r.NormFloat64()*8) * float64(r.IntN(3)-1) // negative, zero and positive
			rows[i] = []agg.Value{agg.FloatValue(x)}
		}
		want := encode(t, fold(t, f, rows))
		sorted := slices.Clone(rows)
		slices.SortFunc(sorted, func(a, b []agg.Value) int { return cmpFloat(a[0].Float, b[0].Float) })
		if got := encode(t, fold(t, f, sorted)); !bytes.Equal(got, want) {
			t.Fatalf("%d values: sorted input encodes differently", n)
		}
		slices.Reverse(sorted)
		if got := encode(t, fold(t, f, sorted)); !bytes.Equal(got, want) {
			t.Fatalf("%d values: reversed input encodes differently", n)
		}
		for try := range 6 {
			if got := encode(t, mergeRandomly(t, f, rows, r)); !bytes.Equal(got, want) {
				t.Fatalf("%d values, try %d: the merged sketch encodes differently", n, try)
			}
		}
		t.Logf("%5d values: state of %d bytes", n, len(want))
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestQuantile_Accuracy checks the stated error on large samples of
// several shapes, for quantiles from 0 to 1, against the exact
// percentile_cont.
func TestQuantile_Accuracy(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(9, 10))
	shapes := map[string]func() float64{
		"uniform":   func() float64 { return r.Float64() * 100 },
		"lognormal": func() float64 { return math.Exp(r.NormFloat64() * 4) },
		"normal":    func() float64 { return r.NormFloat64() * 1000 },
		"integers":  func() float64 { return float64(r.IntN(10)) },
	}
	for name, draw := range shapes {
		xs := make([]float64, 100000)
		for i := range xs {
			xs[i] = draw()
		}
		for _, q := range []float64{0, 0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 1} {
			var f *agg.Func
			if q == 0.5 {
				f = resolve(t, "median", false, []string{"double precision"})
			} else {
				f = resolve(t, "approx_quantile", false, []string{"double precision"}, agg.FloatValue(q))
			}
			s := f.New()
			var v agg.Value
			for _, x := range xs {
				v.SetFloat(x)
				if err := s.Add(&v); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.Result()
			if err != nil {
				t.Fatal(err)
			}
			want, lo, hi, w := percentileCont(slices.Clone(xs), q)
			bound := f.RelativeError() * ((1-w)*math.Abs(lo) + w*math.Abs(hi))
			if math.Abs(got.Float-want) > bound*(1+1e-9) {
				t.Errorf("%s, q = %v: %v, exact %v, off by more than %v", name, q, got.Float, want, bound)
			}
		}
	}
}

// TestQuantile_Specials: NaNs and infinities take PostgreSQL's ranks, and
// interpolate as PostgreSQL's percentile_cont does (confirmed on 15).
func TestQuantile_Specials(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		q    float64
		in   []float64
		want float64
	}{
		{0, []float64{math.Inf(-1), 1, 2}, math.Inf(-1)},
		{1, []float64{math.NaN(), 1, math.Inf(1)}, math.NaN()},
		{0.5, []float64{math.NaN(), 1, math.Inf(1)}, math.Inf(1)},
		{0.25, []float64{math.Inf(-1), 1, 2}, math.NaN()}, // −Inf + (1 − −Inf)·0.5, as PostgreSQL's float8_lerp
		{0.75, []float64{math.NaN(), 1, math.Inf(1)}, math.NaN()},
		{0.5, []float64{0, 0, 0}, 0},
	} {
		f := resolve(t, "approx_quantile", false, []string{"double precision"}, agg.FloatValue(c.q))
		rows := make([][]agg.Value, len(c.in))
		for i, x := range c.in {
			rows[i] = []agg.Value{agg.FloatValue(x)}
		}
		got, err := roundTrip(t, f, fold(t, f, rows)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if !(math.IsNaN(c.want) && math.IsNaN(got.Float)) && got.Float != c.want {
			t.Errorf("%s over %v = %v, want %v", f, c.in, got.Float, c.want)
		}
	}
}
