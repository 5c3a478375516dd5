package partition

import (
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// Hasher hashes encoded keys with a seeded xxhash. Different seeds give
// independent bucketings: the map side uses the plan's seed, and a reducer
// whose bucket outgrows memory re-partitions it under a derived seed.
// A Hasher is not safe for concurrent use; keep one per task.
type Hasher struct {
	seed   uint64
	digest *xxhash.Digest
}

// NewHasher returns a Hasher for seed.
func NewHasher(seed uint64) *Hasher {
	return &Hasher{seed: seed, digest: xxhash.NewWithSeed(seed)}
}

// Sum64 returns the hash of an encoded key.
func (h *Hasher) Sum64(key []byte) uint64 {
	h.digest.ResetWithSeed(h.seed)
	h.digest.Write(key)
	return h.digest.Sum64()
}

// Bucket maps a hash to one of n buckets with Lemire's multiply-shift (the
// high word of hash*n): as uniform as a modulo for a good hash, without a
// division on the hot path.
func Bucket(hash uint64, n int) int {
	hi, _ := bits.Mul64(hash, uint64(n))
	return int(hi)
}
