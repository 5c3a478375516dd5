package mapreduce

import (
	"bytes"
	"cmp"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestKeyOrder checks that keyOrder's bytes compare as the values do, for
// each kind of field and for a key of several fields, over random values
// with the edges mixed in.
func TestKeyOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	enc := func(fill func(*keyOrder)) []byte {
		var e keyOrder
		fill(&e)
		return e.buf
	}
	check := func(what string, a, b any, want int, ea, eb []byte) {
		t.Helper()
		if got := bytes.Compare(ea, eb); got != want {
			t.Errorf("%s: %v against %v compares %d, want %d", what, a, b, got, want)
		}
	}
	ints := []int64{math.MinInt64, -1, 0, 1, math.MaxInt64}
	floats := []float64{math.Inf(-1), -1e300, -1, -1e-300, 0, 1e-300, 1, 1e300, math.Inf(1)}
	strs := []string{"", "\x00", "\x00\x00", "a", "a\x00", "a\x00b", "ab", "b", "\xff"}
	for range 2000 {
		ints = append(ints, r.Int64()-r.Int64())
		floats = append(floats, r.NormFloat64()*math.Pow(10, float64(r.IntN(40)-20)))
		s := make([]byte, r.IntN(4))
		for i := range s {
			s[i] = "a\x00b\xff"[r.IntN(4)]
		}
		strs = append(strs, string(s))
	}
	for range 5000 {
		a, b := ints[r.IntN(len(ints))], ints[r.IntN(len(ints))]
		check("int64", a, b, cmp.Compare(a, b), enc(func(e *keyOrder) { e.Int64(a) }), enc(func(e *keyOrder) { e.Int64(b) }))
		da, db := Date(int32(a>>40)), Date(int32(b>>40))
		check("date", da, db, cmp.Compare(da, db), enc(func(e *keyOrder) { e.Date(da) }), enc(func(e *keyOrder) { e.Date(db) }))
		ta, tb := time.UnixMicro(a>>10), time.UnixMicro(b>>10)
		check("time", ta, tb, ta.Compare(tb), enc(func(e *keyOrder) { e.Time(ta) }), enc(func(e *keyOrder) { e.Time(tb) }))
		fa, fb := floats[r.IntN(len(floats))], floats[r.IntN(len(floats))]
		check("float64", fa, fb, cmp.Compare(fa, fb), enc(func(e *keyOrder) { e.Float64(fa) }), enc(func(e *keyOrder) { e.Float64(fb) }))
		sa, sb := strs[r.IntN(len(strs))], strs[r.IntN(len(strs))]
		check("string", sa, sb, strings.Compare(sa, sb), enc(func(e *keyOrder) { e.String(sa) }), enc(func(e *keyOrder) { e.String(sb) }))
		// A key of a string, then an integer: the string decides first,
		// whatever its length.
		want := cmp.Or(strings.Compare(sa, sb), cmp.Compare(a, b))
		check("(string, int64)", []any{sa, a}, []any{sb, b}, want,
			enc(func(e *keyOrder) { e.String(sa); e.Int64(a) }), enc(func(e *keyOrder) { e.String(sb); e.Int64(b) }))
	}
	check("NULL last", "NULL", int64(math.MaxInt64), 1, enc(func(e *keyOrder) { e.Null() }), enc(func(e *keyOrder) { e.Int64(math.MaxInt64) }))
}
