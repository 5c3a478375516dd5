package spill

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cespare/xxhash/v2"

	"github.com/mrengine/mr/internal/blobs"
)

// Reader reads a spill file held in memory. It is not safe for concurrent
// use.
type Reader struct {
	name        string
	data        []byte        // the file
	body        *bytes.Reader // data, read by fr
	mem         *budgetAllocator
	fr          *ipc.FileReader
	schema      *arrow.Schema
	n           int // record batches
	checksum    uint64
	size        int64
	compression string
	closed      bool
}

// Open reads the file f.Key from b and checks it against f, as pinned by a
// manifest: its size and checksum, then that Arrow can parse its footer and
// schema. A file that differs gives an error wrapping ErrCorrupt that names
// the key and both values; a missing one, fs.ErrNotExist.
func Open(ctx context.Context, b *blobs.Bucket, f File, opts ...Option) (*Reader, error) {
	data, err := b.ReadAll(ctx, f.Key)
	if err != nil {
		return nil, fmt.Errorf("spill: open %s: %w", f.Key, err)
	}
	if int64(len(data)) != f.Size {
		return nil, corrupt(f.Key, fmt.Errorf("file is %d bytes, its manifest pins %d: truncated or overwritten", len(data), f.Size))
	}
	if sum := xxhash.Sum64(data); sum != f.Checksum {
		return nil, corrupt(f.Key, fmt.Errorf("checksum mismatch: the manifest pins %#016x, the contents hash to %#016x", f.Checksum, sum))
	}
	return decode(f.Key, data, f.Checksum, opts)
}

// Decode parses data, an Arrow IPC file that no manifest pins (for mr
// inspect, and fuzzing); name is for messages. Any bytes give a Reader or
// an error wrapping ErrCorrupt or ErrTooLarge, and no decoding step (the
// footer, or one record) takes more memory than twice WithMaxRecordSize,
// plus its codec's state (up to 9 MiB for zstd, 16 MiB for lz4) and a
// small multiple of len(data): the package doc's Memory section has the
// details. Reader.Checksum is computed from data. The Reader keeps data.
func Decode(name string, data []byte, opts ...Option) (*Reader, error) {
	return decode(name, data, xxhash.Sum64(data), opts)
}

func decode(name string, data []byte, checksum uint64, opts []Option) (*Reader, error) {
	o := newOptions(opts)
	r := &Reader{
		name:     name,
		data:     data,
		body:     bytes.NewReader(data),
		mem:      &budgetAllocator{Allocator: o.mem, budget: o.maxRecordSize},
		checksum: checksum,
		size:     int64(len(data)),
	}
	// The footer and schema, and the dictionaries if any, decode under the
	// same budget as one record.
	err := r.decode("", func() (err error) {
		if r.compression, err = checkFooter(data, o.maxRecordSize); err != nil {
			return err
		}
		if err := r.mem.reserve(dictionaryWindow(data, o.maxRecordSize)); err != nil {
			return err
		}
		r.fr, err = ipc.NewFileReader(r.body,
			ipc.WithAllocator(r.mem),
			// arrow-go rejects message bodies over 256 MiB by default, a
			// limit its writer does not know; no message can be larger
			// than the file, which is in memory already.
			ipc.WithBodySizeLimit(int64(len(data))),
			ipc.WithMetadataSizeLimit(int64(len(data))),
		)
		if err == nil {
			r.schema, r.n = r.fr.Schema(), r.fr.NumRecords()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Schema returns the schema of every record in the file.
func (r *Reader) Schema() *arrow.Schema { return r.schema }

// NumRecords returns the number of record batches in the file.
func (r *Reader) NumRecords() int { return r.n }

// Checksum returns the XXH64 of the file's bytes: verified against the
// manifest by Open, computed by Decode.
func (r *Reader) Checksum() uint64 { return r.checksum }

// Size returns the file's size in bytes.
func (r *Reader) Size() int64 { return r.size }

// Compression returns the body compression of the record batches, as their
// messages declare it: "zstd" (what Create writes), "lz4", "none", or
// several joined by "+". A file without record batches says "none".
func (r *Reader) Compression() string { return r.compression }

// Record decodes the i-th record batch, 0 <= i < NumRecords. The record
// owns its memory, from the Reader's allocator: it stays valid after Close,
// and the caller must Release it. Its arrays are validated (buffer sizes,
// offsets), so reading any value of them cannot panic.
//
// An index out of range gives an error wrapping arrow.ErrIndex; a record
// that does not decode, ErrCorrupt; one that needs more memory than
// WithMaxRecordSize allows (for its buffers, and a zstd window over 8 MiB),
// ErrTooLarge. After such a failure arrow-go (v18.8) may not have freed
// all it allocated (the Go allocator collects it).
func (r *Reader) Record(i int) (arrow.RecordBatch, error) {
	switch {
	case r.closed:
		return nil, fmt.Errorf("spill: read %s: reader is closed", r.name)
	case i < 0 || i >= r.n:
		return nil, fmt.Errorf("spill: read %s: record %d of %d: %w", r.name, i, r.n, arrow.ErrIndex)
	}
	var rec arrow.RecordBatch
	err := r.decode(fmt.Sprintf("record %d", i), func() (err error) {
		if err := r.mem.reserve(recordWindow(r.data, i, r.mem.budget)); err != nil {
			return err
		}
		if rec, err = r.fr.RecordBatchAt(i); err != nil {
			return err
		}
		if err = validate(rec, r.mem.budget); err != nil {
			rec.Release()
			rec = nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// validate checks that every value of rec can be read. arrow-go builds
// arrays on the buffers a message describes without checking them, so a
// damaged length or offset would make the caller's reads panic.
// Strings get the O(n) offset checks of ValidateFull but not its UTF-8
// check: mr does not require its sources' text to be valid UTF-8 (SQLite
// TEXT may hold any bytes), and reading such values cannot panic.
//
// Every column must have the record's rows (arrow-go accepts longer
// ones), and a record under budget may have at most 8 rows per byte of
// it: a value takes at least a bit, except in columns whose type stores
// nothing (null, an empty struct), whose damaged length would make reading
// every value take time without bound (fuzzing found 6e13 rows of struct<>).
func validate(rec arrow.RecordBatch, budget int64) error {
	if rows := rec.NumRows(); rows > 8*budget {
		return fmt.Errorf("%d rows, more than 8 per byte: %w", rows, ErrTooLarge)
	}
	for i, col := range rec.Columns() {
		if int64(col.Len()) != rec.NumRows() {
			return fmt.Errorf("column %q has %d rows, its record %d", rec.Schema().Field(i).Name, col.Len(), rec.NumRows())
		}
	}
	for i, col := range rec.Columns() {
		var err error
		switch a := col.(type) {
		case *array.String:
			if err = array.Validate(a); err != nil || a.Len() == 0 {
				break // an empty array may have no offsets at all
			}
			if offs := a.ValueOffsets(); offs[0] < 0 {
				err = fmt.Errorf("string offset %d is negative", offs[0])
				break
			}
			for j, offs := 1, a.ValueOffsets(); j < len(offs); j++ {
				if offs[j] < offs[j-1] {
					err = fmt.Errorf("string offsets decrease at index %d", j)
					break
				}
			}
		default:
			err = array.ValidateFull(col)
		}
		if err != nil {
			return fmt.Errorf("column %q: %w", rec.Schema().Field(i).Name, err)
		}
	}
	return nil
}

// Close releases the file bytes. Records already returned stay valid.
// Close is idempotent.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.data = nil
	r.body.Reset(nil)
	return r.fr.Close()
}

// decode runs f, an arrow-go decoding step of what ("" for the footer),
// under a fresh memory budget, and turns its failure into ErrTooLarge or
// ErrCorrupt. arrow-go panics on malformed bytes in many places (its
// flatbuffers accessors are unchecked) and recovers only while loading
// record batch bodies, so decode recovers the rest.
func (r *Reader) decode(what string, f func() error) (err error) {
	r.mem.left = r.mem.budget
	defer func() {
		if p := recover(); p != nil {
			switch p := p.(type) {
			case fbError:
				err = p
			case error:
				err = fmt.Errorf("panic: %w", p) // ErrTooLarge from budgetAllocator, among others
			default:
				err = fmt.Errorf("panic: %v", p)
			}
		}
		if err == nil {
			return
		}
		if errors.Is(err, ErrTooLarge) {
			if what == "" {
				what = "footer (schema, metadata, dictionaries)"
			}
			err = fmt.Errorf("%w: %s: %s needs more than %d bytes to decode (WithMaxRecordSize): damaged, or written under a larger memory budget",
				ErrTooLarge, r.name, what, r.mem.budget)
			return
		}
		if what != "" {
			what += ": "
		}
		err = corrupt(r.name, fmt.Errorf("%s%w", what, err))
	}()
	return f()
}

// budgetAllocator is a Reader's allocator. It passes calls to Allocator
// and panics with ErrTooLarge when one decode step allocates more than
// budget bytes, because arrow-go allocates the uncompressed size a buffer
// claims before it decompresses and finds the claim false: a damaged size
// must fail, not exhaust memory. Records keep it to free their buffers.
type budgetAllocator struct {
	memory.Allocator
	budget int64
	left   int64 // of budget, in the current decode step
}

func (a *budgetAllocator) Allocate(size int) []byte {
	a.take(size)
	return a.Allocator.Allocate(size)
}

func (a *budgetAllocator) Reallocate(size int, b []byte) []byte {
	a.take(size - len(b))
	return a.Allocator.Reallocate(size, b)
}

func (a *budgetAllocator) take(n int) {
	if int64(n) > a.left {
		panic(ErrTooLarge)
	}
	a.left -= int64(n)
}

// reserve takes from the current step's budget the zstd window that
// arrow-go's decoder will allocate outside the allocator (see zstdWindow),
// if it is larger than freeWindow, and passes on an error from zstdWindow.
func (a *budgetAllocator) reserve(window uint64, err error) error {
	switch {
	case err != nil:
		return err
	case window <= freeWindow:
		return nil
	case window > uint64(a.left):
		return fmt.Errorf("zstd window of %d bytes: %w", window, ErrTooLarge)
	}
	a.left -= int64(window)
	return nil
}
