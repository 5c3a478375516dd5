package shuffle

import (
	"encoding/binary"
	"math"
	"math/bits"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/apd/v3"
)

// KeyHash is an Encoder that hashes one key: it frames the key's fields
// into bytes (fixed width, or length-prefixed for strings and bytes, so
// ("ab", "c") and ("a", "bc") differ; each field after a tag byte that
// tells NULL from a value) and hashes them with xxhash under a seed.
// Different seeds give independent bucketings: the map side uses the
// plan's seed, and a reducer whose bucket outgrows memory re-partitions it
// under a derived one. A KeyHash is not safe for concurrent use.
type KeyHash struct {
	seed   uint64
	digest *xxhash.Digest
	buf    []byte
}

// NewKeyHash returns a KeyHash for seed.
func NewKeyHash(seed uint64) *KeyHash {
	return &KeyHash{seed: seed, digest: xxhash.NewWithSeed(seed)}
}

// Reset starts a new key.
func (h *KeyHash) Reset() { h.buf = h.buf[:0] }

// Sum64 returns the hash of the key encoded since Reset.
func (h *KeyHash) Sum64() uint64 {
	h.digest.ResetWithSeed(h.seed)
	h.digest.Write(h.buf)
	return h.digest.Sum64()
}

// Len returns the size of the framed key, which estimates its memory.
func (h *KeyHash) Len() int { return len(h.buf) }

// The tag bytes before each field.
const (
	tagNull  = 0
	tagValue = 1
)

func (h *KeyHash) value() { h.buf = append(h.buf, tagValue) }

func (h *KeyHash) Int64(v int64) {
	h.value()
	h.buf = binary.LittleEndian.AppendUint64(h.buf, uint64(v))
}

// Float64 hashes -0 as +0, since Go's map, and SQL, count them as one key.
// A NaN key never equals itself: a job must not emit one.
func (h *KeyHash) Float64(v float64) {
	if v == 0 {
		v = 0
	}
	h.value()
	h.buf = binary.LittleEndian.AppendUint64(h.buf, math.Float64bits(v))
}

func (h *KeyHash) String(v string) {
	h.value()
	h.buf = binary.AppendUvarint(h.buf, uint64(len(v)))
	h.buf = append(h.buf, v...)
}

func (h *KeyHash) Bool(v bool) {
	b := byte(0)
	if v {
		b = 1
	}
	h.value()
	h.buf = append(h.buf, b)
}

func (h *KeyHash) Date(v Date) {
	h.value()
	h.buf = binary.LittleEndian.AppendUint32(h.buf, uint32(v))
}

func (h *KeyHash) Time(v time.Time) { h.Int64(v.UnixMicro()) }

// Decimal hashes the decimal's value, so that 1.5 and 1.50 are one key,
// as they are to SQL's GROUP BY.
func (h *KeyHash) Decimal(v *apd.Decimal) {
	var r apd.Decimal
	r.Reduce(v)
	h.String(r.Text('E'))
}

func (h *KeyHash) Bytes(v []byte) {
	h.value()
	h.buf = binary.AppendUvarint(h.buf, uint64(len(v)))
	h.buf = append(h.buf, v...)
}

func (h *KeyHash) Null() { h.buf = append(h.buf, tagNull) }

// Bucket maps a hash to one of n buckets with Lemire's multiply-shift (the
// high word of hash*n): as uniform as a modulo for a good hash, without a
// division on the hot path.
func Bucket(hash uint64, n int) int {
	hi, _ := bits.Mul64(hash, uint64(n))
	return int(hi)
}
