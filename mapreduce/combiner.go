package mapreduce

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/mrengine/mr/shuffle"
)

// combiner is a task's combine table, a Go map keyed by the job's key
// type. It is the only place where the engine touches K and V; the engine
// drives it through this interface. A combiner is owned by one task at a
// time.
type combiner interface {
	// mapRow runs Map on row and combines what it emitted. A failed
	// attempt (error or panic) leaves the combiner as it was.
	mapRow(ctx context.Context, row Row) error
	// add decodes and combines every (key, value) record of rec.
	add(rec arrow.RecordBatch)
	// len is the number of distinct keys held.
	len() int
	// entryBytes estimates the memory one key costs, to turn the memory
	// budget into a number of keys.
	entryBytes() int
	// spill appends every entry to w, in its key's bucket, and empties the
	// combiner.
	spill(w *shuffle.Writer)
	// rows empties the combiner into its finalized output rows, in key
	// order (see sortByKey) if sorted, else in no particular order.
	rows(sorted bool) OutputRows
	// keys iterates over the keys held, as the output's key columns.
	keys() OutputRows
	// peakKeys is the most keys the combiner held when it spilled or
	// yielded its rows: the size to make the next task's combiner with.
	peakKeys() int
	// adapt decides, once Map has emitted a sample of pairs from mapped
	// rows, whether a map task that expects about rows rows in all
	// should go on combining (see streamWorthIt). If not, it moves what
	// it holds into w and sends every later pair straight there, in its
	// key's bucket, until the task ends. It reports whether it has
	// decided. Only a job with Combine adapts: a map-only task keeps the
	// last pair of each key, and never calls it.
	adapt(w *shuffle.Writer, mapped, rows int64) (decided bool)
	// merge combines into the values held the stored rows of their keys
	// that a Merger read back (key columns, then Spec.Restore's).
	merge(stored OutputRows) error
	// owned reads stored keys (the output's key columns) to their end and
	// returns those that h hashes into bucket of buckets, as the map
	// tasks' spills do.
	owned(stored OutputRows, h *shuffle.KeyHash, bucket, buckets int) (OutputRows, error)
}

type pair[K comparable, V any] struct {
	k K
	v V
}

type mapCombiner[K comparable, V any] struct {
	job      *Job[K, V]
	m        map[K]V
	pending  []pair[K, V] // what the current Map attempt emitted
	emitFunc func(K, V)
	dec      shuffle.RecordDecoder
	keyBytes int // average encoded key size seen at the last spill
	// pairs counts the pairs Map emitted since the last spill. Once adapt
	// chose to stream, out is the writer that every pair goes to, and
	// streamed counts those since the last spill.
	pairs    int
	out      *shuffle.Writer
	streamed int
	peak     int // see peakKeys
}

func (j *Job[K, V]) newCombiner(keys int) combiner {
	t := &mapCombiner[K, V]{job: j, m: make(map[K]V, keys)}
	t.emitFunc = func(k K, v V) { t.pending = append(t.pending, pair[K, V]{k, v}) }
	return t
}

func (t *mapCombiner[K, V]) mapRow(ctx context.Context, row Row) error {
	if err := t.callMap(ctx, row); err != nil {
		if release := t.job.Release; release != nil {
			for _, p := range t.pending {
				release(p.v)
			}
		}
		return err
	}
	if t.out != nil {
		for _, p := range t.pending {
			t.write(t.out, p.k, p.v)
			if t.job.Release != nil {
				t.job.Release(p.v)
			}
		}
		t.streamed += len(t.pending)
		return nil
	}
	t.pairs += len(t.pending)
	// Only a successful attempt's pairs reach the combiner. A panic in Combine
	// is not the row's fault: it stops the task.
	var k K
	defer t.nameOverflow(&k)
	for _, p := range t.pending {
		k = p.k
		if t.combine(p.k, p.v) && t.job.Release != nil {
			t.job.Release(p.v)
		}
	}
	return nil
}

// callMap runs Map on row into t.pending, recovering a panic into the
// row's error.
func (t *mapCombiner[K, V]) callMap(ctx context.Context, row Row) (err error) {
	t.pending = t.pending[:0]
	defer func() {
		if r := recover(); r != nil {
			err = recovered(r)
		}
	}()
	return t.job.Map(ctx, row, t.emitFunc)
}

// combine merges v into the value of k, or makes it k's first; merged
// reports the former, after which the combiner holds v no more. A
// map-only job has no Combine: v replaces the value held, so that of one
// chunk's pairs of a key the one emitted last wins.
func (t *mapCombiner[K, V]) combine(k K, v V) (merged bool) {
	if t.job.Combine == nil {
		t.m[k] = v
		return false
	}
	if old, ok := t.m[k]; ok {
		v, merged = t.job.Combine(old, v), true
	}
	t.m[k] = v
	return merged
}

func (t *mapCombiner[K, V]) add(rec arrow.RecordBatch) {
	var k K
	defer t.nameOverflow(&k)
	t.dec.Reset(rec)
	for range rec.NumRows() {
		k = t.job.Key.Decode(&t.dec)
		t.combine(k, t.job.Value.Decode(&t.dec))
	}
}

// nameOverflow, deferred around calls of Combine, adds the key *k to an
// overflow that Combine panics with (see AddInt64) and panics again. An
// overflow stops the run, wherever the values meet: which row would
// overflow depends on the order in which partial values merge, so
// failing a row would make the sink depend on the partitioning.
func (t *mapCombiner[K, V]) nameOverflow(k *K) {
	if p := recover(); p != nil {
		if err := overflowed(p); err != nil {
			panic(fmt.Errorf("the values of key %v overflow as they combine (%w): change the rows, or make the job's value wider", *k, err))
		}
		panic(p)
	}
}

// len counts the records streamed since the last spill too: they take
// memory in w's builders until the spill flushes them.
func (t *mapCombiner[K, V]) len() int { return len(t.m) + t.streamed }

// entryBytes counts the key and value twice (a Go map keeps spare slots,
// and a spill copies every entry into Arrow builders) plus the string bytes
// the last spill measured and what the job says a value points to, which
// unsafe.Sizeof cannot see.
func (t *mapCombiner[K, V]) entryBytes() int {
	var k K
	var v V
	return 2*int(unsafe.Sizeof(k)+unsafe.Sizeof(v)) + 2*t.keyBytes + t.job.ValueBytes + 16
}

func (t *mapCombiner[K, V]) peakKeys() int { return t.peak }

func (t *mapCombiner[K, V]) spill(w *shuffle.Writer) {
	t.peak = max(t.peak, len(t.m))
	var keyBytes int
	for k, v := range t.m {
		keyBytes += t.write(w, k, v)
	}
	if len(t.m) > 0 {
		t.keyBytes = keyBytes / len(t.m)
	}
	clear(t.m)
	t.pairs, t.streamed = 0, 0
}

// write appends the record of k and v to w, in k's bucket, and returns
// the size of k's encoding.
func (t *mapCombiner[K, V]) write(w *shuffle.Writer, k K, v V) int {
	h := w.Hash()
	t.job.Key.Encode(k, h)
	e := w.Record(h)
	t.job.Key.Encode(k, e)
	t.job.Value.Encode(v, e)
	return h.Len()
}

func (t *mapCombiner[K, V]) adapt(w *shuffle.Writer, mapped, rows int64) bool {
	switch {
	case int64(t.pairs) < streamSample(rows) || mapped == 0:
		return false
	case !streamWorthIt(len(t.m), t.pairs, rows*int64(t.pairs)/mapped):
		return true
	}
	moved := len(t.m)
	t.spill(w)
	t.out, t.streamed = w, moved
	return true
}

func (t *mapCombiner[K, V]) rows(sorted bool) OutputRows {
	t.peak = max(t.peak, len(t.m))
	entries := make([]pair[K, V], 0, len(t.m))
	for k, v := range t.m {
		entries = append(entries, pair[K, V]{k, v})
	}
	// A fresh map lets the old one, sized for every key, be collected
	// while the sink drains the entries, and the sort's copy of them.
	t.m = make(map[K]V)
	if sorted {
		entries = sortByKey(entries, t.job.Key)
	}
	return &combinerRows[K, V]{job: t.job, entries: entries}
}

// combinerRows yields a combiner's entries as output rows, each encoded
// when it is read (Values or EncodeRow).
type combinerRows[K comparable, V any] struct {
	job     *Job[K, V]
	entries []pair[K, V]
	cur     pair[K, V]
	enc     valuesEncoder
	err     error // of Finalize, which ends the rows
}

func (r *combinerRows[K, V]) Next() bool {
	if len(r.entries) == 0 || r.err != nil {
		r.entries = nil
		return false
	}
	r.cur, r.entries = r.entries[0], r.entries[1:]
	return true
}

func (r *combinerRows[K, V]) Values() ([]any, error) {
	r.enc.values = r.enc.values[:0]
	if err := r.EncodeRow(&r.enc); err != nil {
		return nil, err
	}
	return r.enc.values, nil
}

func (r *combinerRows[K, V]) EncodeRow(e Encoder) error {
	r.job.Key.Encode(r.cur.k, e)
	if r.job.Finalize == nil {
		r.job.Value.Encode(r.cur.v, e)
		return nil
	}
	if err := r.job.Finalize(r.cur.v, e); err != nil {
		r.err = err
		return err
	}
	return nil
}

func (r *combinerRows[K, V]) Err() error { return r.err }

func (t *mapCombiner[K, V]) keys() OutputRows {
	keys := make([]K, 0, len(t.m))
	for k := range t.m {
		keys = append(keys, k)
	}
	return &keyRows[K]{codec: t.job.Key, keys: keys}
}

// keyRows yields keys as output rows of the key columns.
type keyRows[K any] struct {
	codec Codec[K]
	keys  []K
	enc   valuesEncoder
}

func (r *keyRows[K]) Next() bool {
	if len(r.keys) == 0 {
		return false
	}
	r.enc.values = r.enc.values[:0]
	r.codec.Encode(r.keys[0], &r.enc)
	r.keys = r.keys[1:]
	return true
}

func (r *keyRows[K]) Values() ([]any, error) { return r.enc.values, nil }
func (r *keyRows[K]) Err() error             { return nil }

// merge folds each stored value into the new value of its key: the
// stored one is Combine's first argument, as the older of the two. A row
// that cannot be read back, or whose key the combiner does not hold,
// stops the merge: the table holds a row the job did not write, or the
// sink read one it was not asked for.
func (t *mapCombiner[K, V]) merge(stored OutputRows) (err error) {
	var k K
	defer t.nameOverflow(&k)
	nkeys := len(t.job.Key.Fields)
	for stored.Next() {
		values, err := stored.Values()
		if err != nil {
			return err
		}
		v, err := t.restore(values, nkeys, &k)
		if err != nil {
			return fmt.Errorf("the stored row of key %v in table %s cannot be read back (%w): did something other than this job write it? Recompute the table with --fresh",
				k, t.job.Output.Table, err)
		}
		nv, ok := t.m[k]
		if !ok {
			return fmt.Errorf("the sink read back key %v, which the bucket does not hold", k)
		}
		t.m[k] = t.job.Combine(v, nv)
	}
	return stored.Err()
}

// restore decodes a stored row's key into *k and its value, turning a
// codec's panic into an error.
func (t *mapCombiner[K, V]) restore(values []any, nkeys int, k *K) (v V, err error) {
	if len(values) < nkeys {
		return v, fmt.Errorf("the row has %d columns, the key %d", len(values), nkeys)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	*k = t.job.Key.Decode(&valuesDecoder{values: values[:nkeys]})
	d := &valuesDecoder{values: values[nkeys:]}
	if t.job.Restore != nil {
		return t.job.Restore(d)
	}
	return t.job.Value.Decode(d), nil
}

func (t *mapCombiner[K, V]) owned(stored OutputRows, h *shuffle.KeyHash, bucket, buckets int) (OutputRows, error) {
	var keys []K
	for stored.Next() {
		values, err := stored.Values()
		if err != nil {
			return nil, err
		}
		k, err := t.decodeKey(values)
		if err != nil {
			return nil, fmt.Errorf("the stored key %v cannot be read back (%w): did something other than this job write it? Recompute the table with --fresh", values, err)
		}
		h.Reset()
		t.job.Key.Encode(k, h)
		if shuffle.Bucket(h.Sum64(), buckets) == bucket {
			keys = append(keys, k)
		}
	}
	if err := stored.Err(); err != nil {
		return nil, err
	}
	return &keyRows[K]{codec: t.job.Key, keys: keys}, nil
}

// decodeKey decodes a stored row's key columns, turning a codec's panic
// into an error.
func (t *mapCombiner[K, V]) decodeKey(values []any) (k K, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	return t.job.Key.Decode(&valuesDecoder{values: values}), nil
}
