package shuffle

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mrengine/mr/internal/blobs"
	"github.com/mrengine/mr/spill"
)

// File is a committed shuffle file: a spill file and the bucket it belongs
// to. Checkpoint manifests list them; readers find their inputs there and
// nowhere else.
type File struct {
	Bucket int `json:"bucket"`
	spill.File
}

// Writer buffers records for a fixed number of buckets, each key's record
// in the bucket its hash picks. It is not safe for concurrent use; each
// task has its own.
//
// To add a (key, value) record:
//
//	h := w.Hash()             // a KeyHash, reset
//	keyCodec.Encode(k, h)
//	e := w.Record(h)          // the Encoder of a new record in k's bucket
//	keyCodec.Encode(k, e)
//	valueCodec.Encode(v, e)
type Writer struct {
	schema   *arrow.Schema
	mem      memory.Allocator
	hash     *KeyHash
	builders []*array.RecordBuilder // created on first use of a bucket
	encoders []recordEncoder
}

// NewWriter returns a Writer for records of schema spread over buckets by
// their key's hash under seed.
func NewWriter(schema *arrow.Schema, buckets int, seed uint64, mem memory.Allocator) *Writer {
	return &Writer{
		schema:   schema,
		mem:      mem,
		hash:     NewKeyHash(seed),
		builders: make([]*array.RecordBuilder, buckets),
		encoders: make([]recordEncoder, buckets),
	}
}

// Hash returns the Writer's KeyHash, reset for the next key.
func (w *Writer) Hash() *KeyHash {
	w.hash.Reset()
	return w.hash
}

// Record returns the Encoder of a new record in the bucket of the key h
// hashed. The key's fields and then the value's must be encoded into it
// before the next Record or Flush.
func (w *Writer) Record(h *KeyHash) Encoder {
	b := Bucket(h.Sum64(), len(w.builders))
	if w.builders[b] == nil {
		w.builders[b] = array.NewRecordBuilder(w.mem, w.schema)
		w.encoders[b] = recordEncoder{cols: w.builders[b].Fields()}
	}
	return &w.encoders[b]
}

// Flush writes each non-empty bucket as one spill file, key(bucket) in
// bucket b, and empties the builders. It returns the committed files in
// bucket order. On error none of them may be named in a checkpoint: they
// are garbage that the next attempt of the task removes.
func (w *Writer) Flush(ctx context.Context, b *blobs.Bucket, key func(bucket int) string, opts ...spill.Option) ([]File, error) {
	var files []File
	for bucket, bld := range w.builders {
		if bld == nil || bld.Field(0).Len() == 0 {
			continue
		}
		f, err := writeRecord(ctx, b, key(bucket), w.schema, bld, opts)
		if err != nil {
			return nil, fmt.Errorf("shuffle: bucket %d: %w", bucket, err)
		}
		files = append(files, File{Bucket: bucket, File: f})
	}
	return files, nil
}

func writeRecord(ctx context.Context, b *blobs.Bucket, key string, schema *arrow.Schema, bld *array.RecordBuilder, opts []spill.Option) (spill.File, error) {
	rec := bld.NewRecordBatch()
	defer rec.Release()
	w, err := spill.Create(ctx, b, key, schema, opts...)
	if err != nil {
		return spill.File{}, err
	}
	if err := w.Write(rec); err != nil {
		w.Abort()
		return spill.File{}, err
	}
	f, err := w.Commit()
	if err != nil {
		w.Abort()
	}
	return f, err
}

// Release frees the builders' memory.
func (w *Writer) Release() {
	for i, b := range w.builders {
		if b != nil {
			b.Release()
			w.builders[i] = nil
		}
	}
}
