// Package shuffle moves map output to the reducers. The map side buffers
// records for R buckets in Arrow builders and, on Flush, writes one spill
// file per non-empty bucket; the reduce side reads back the files a
// checkpoint manifest names, never a directory listing.
//
// Combining values of equal keys happens in the engine (package mapreduce)
// before records reach a Writer and after a Reader yields them, where the key
// and value types are known.
package shuffle

import (
	"fmt"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mrengine/mr/spill"
)

// File is a committed shuffle file: a spill file and the bucket it belongs to.
type File struct {
	Bucket int `json:"bucket"`
	spill.File
}

// Writer buffers records for a fixed number of buckets. It is not safe for
// concurrent use; each map task has its own.
type Writer struct {
	schema   *arrow.Schema
	mem      memory.Allocator
	builders []*array.RecordBuilder // created on first use of a bucket
}

// NewWriter returns a Writer for records of schema spread over buckets.
func NewWriter(schema *arrow.Schema, buckets int, mem memory.Allocator) *Writer {
	return &Writer{schema: schema, mem: mem, builders: make([]*array.RecordBuilder, buckets)}
}

// Bucket returns the builder that collects bucket b's records. Appends to it
// must complete whole rows before the next Flush.
func (w *Writer) Bucket(b int) *array.RecordBuilder {
	if w.builders[b] == nil {
		w.builders[b] = array.NewRecordBuilder(w.mem, w.schema)
	}
	return w.builders[b]
}

// Flush writes each non-empty bucket to the spill file path(bucket) and
// empties the builders. It returns the committed files in bucket order. On
// error none of them may be named in a checkpoint: they are garbage that
// the next attempt of the task removes.
func (w *Writer) Flush(path func(bucket int) string, opts ...spill.Option) ([]File, error) {
	var files []File
	for b, bld := range w.builders {
		if bld == nil || bld.Field(0).Len() == 0 {
			continue
		}
		f, err := writeRecord(path(b), w.schema, bld, opts)
		if err != nil {
			return nil, fmt.Errorf("shuffle: bucket %d: %w", b, err)
		}
		files = append(files, File{Bucket: b, File: f})
	}
	return files, nil
}

func writeRecord(path string, schema *arrow.Schema, bld *array.RecordBuilder, opts []spill.Option) (spill.File, error) {
	rec := bld.NewRecordBatch()
	defer rec.Release()
	w, err := spill.Create(path, schema, opts...)
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

// Read calls fn with every record of files, in order. Each file is verified
// against the size and checksum its manifest recorded, so a file replaced or
// damaged since its commit is an error, never a silent wrong result. fn must
// Retain a record it keeps past its return.
func Read(files []File, fn func(rec arrow.RecordBatch) error, opts ...spill.Option) error {
	for _, f := range files {
		if err := readFile(f, fn, opts); err != nil {
			return err
		}
	}
	return nil
}

func readFile(f File, fn func(arrow.RecordBatch) error, opts []spill.Option) error {
	r, err := spill.Open(f.Path, opts...)
	if err != nil {
		return err
	}
	defer r.Close()
	if r.Checksum() != f.Checksum {
		return fmt.Errorf("%w: %s: checksum %016x, the checkpoint recorded %016x; re-run with --fresh to rebuild the shuffle",
			spill.ErrCorrupt, f.Path, r.Checksum(), f.Checksum)
	}
	for i := range r.NumRecords() {
		rec, err := r.Record(i)
		if err != nil {
			return err
		}
		err = fn(rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// Path names a shuffle file: dir/b<bucket>/p<part>-<seq>-<attempt>.arrow.
// The attempt makes names unique per process, so a zombie attempt never
// overwrites a file that another attempt committed.
func Path(dir string, bucket, part, seq int, attempt string) string {
	return filepath.Join(dir, fmt.Sprintf("b%04d", bucket), fmt.Sprintf("p%04d-%06d-%s.arrow", part, seq, attempt))
}
