package shuffle_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/mrengine/mr/shuffle"
)

func TestBucket_Uniform(t *testing.T) {
	t.Parallel()
	const n, keys = 16, 160_000
	h := shuffle.NewKeyHash(42)
	counts := make([]int, n)
	for i := range keys {
		h.Reset()
		h.String(fmt.Sprintf("key-%d", i))
		counts[shuffle.Bucket(h.Sum64(), n)]++
	}
	for b, c := range counts {
		if c < keys/n*9/10 || c > keys/n*11/10 {
			t.Errorf("bucket %d got %d keys, want about %d", b, c, keys/n)
		}
	}
}

func TestKeyHash_Seeds(t *testing.T) {
	t.Parallel()
	sum := func(seed uint64) uint64 {
		h := shuffle.NewKeyHash(seed)
		h.Int64(7)
		h.Date(shuffle.DateOf(time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)))
		return h.Sum64()
	}
	if sum(1) == sum(2) {
		t.Error("different seeds gave the same hash")
	}
	if a, b := sum(1), sum(1); a != b {
		t.Error("the same seed gave different hashes")
	}
}

// Keys that Go's map counts as one must hash alike, and framing must keep
// field boundaries.
func TestKeyHash_Framing(t *testing.T) {
	t.Parallel()
	h := shuffle.NewKeyHash(0)
	hash := func(enc func(shuffle.Encoder)) uint64 {
		h.Reset()
		enc(h)
		return h.Sum64()
	}
	if hash(func(e shuffle.Encoder) { e.Float64(0) }) != hash(func(e shuffle.Encoder) { e.Float64(math.Copysign(0, -1)) }) {
		t.Error("+0 and -0 hash differently")
	}
	if hash(func(e shuffle.Encoder) { e.String("ab"); e.String("c") }) == hash(func(e shuffle.Encoder) { e.String("a"); e.String("bc") }) {
		t.Error(`("ab", "c") and ("a", "bc") hash alike`)
	}
	if hash(func(e shuffle.Encoder) { e.Bool(true) }) == hash(func(e shuffle.Encoder) { e.Bool(false) }) {
		t.Error("true and false hash alike")
	}
}
