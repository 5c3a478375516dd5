package spill

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cespare/xxhash/v2"
)

// Reader reads a committed spill file. It is not safe for concurrent use.
type Reader struct {
	path     string
	body     *bytes.Reader // the Arrow bytes, read by fr
	mem      *budgetAllocator
	fr       *ipc.FileReader
	schema   *arrow.Schema
	n        int // record batches
	checksum uint64
	closed   bool
}

// Open reads the whole file at path and verifies its size, magic and
// checksum, then parses the Arrow footer and schema. A damaged file gives
// an error wrapping ErrCorrupt; a missing one, fs.ErrNotExist.
func Open(path string, opts ...Option) (*Reader, error) {
	o := newOptions(opts)
	data, err := o.fs.ReadFile(path)
	if err != nil {
		return nil, opError("open", path, err)
	}
	if len(data) < TrailerSize {
		return nil, corrupt(path, fmt.Errorf("file is %d bytes, shorter than the %d-byte trailer", len(data), TrailerSize))
	}
	body, trailer := data[:len(data)-TrailerSize], data[len(data)-TrailerSize:]
	if string(trailer[8:]) != Magic {
		return nil, corrupt(path, fmt.Errorf("no %s trailer: truncated, or not a spill file", Magic))
	}
	want, got := binary.LittleEndian.Uint64(trailer[:8]), xxhash.Sum64(body)
	if want != got {
		return nil, corrupt(path, fmt.Errorf("checksum mismatch: trailer has %#016x, contents hash to %#016x", want, got))
	}
	r := &Reader{
		path:     path,
		body:     bytes.NewReader(body),
		mem:      &budgetAllocator{Allocator: o.mem, budget: o.maxRecordSize},
		checksum: want,
	}
	// Open decodes the dictionaries, if any, under the same budget as one
	// record.
	err = r.decode("", func() (err error) {
		if err := checkFooter(body); err != nil {
			return err
		}
		r.fr, err = ipc.NewFileReader(r.body,
			ipc.WithAllocator(r.mem),
			// arrow-go rejects message bodies over 256 MiB by default, a
			// limit its writer does not know; no message can be larger
			// than the file, which is in memory already.
			ipc.WithBodySizeLimit(int64(len(body))),
			ipc.WithMetadataSizeLimit(int64(len(body))),
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

// Checksum returns the verified XXH64 of the Arrow bytes.
func (r *Reader) Checksum() uint64 { return r.checksum }

// Record decodes the i-th record batch, 0 <= i < NumRecords. The record
// owns its memory, from the Reader's allocator: it stays valid after Close,
// and the caller must Release it.
//
// An index out of range gives an error wrapping arrow.ErrIndex; a record
// that does not decode, ErrCorrupt; one that needs more memory than
// WithMaxRecordSize allows, ErrTooLarge. After such a failure arrow-go
// v18.8 may not have freed all it allocated (the Go allocator collects it).
func (r *Reader) Record(i int) (arrow.RecordBatch, error) {
	switch {
	case r.closed:
		return nil, fmt.Errorf("spill: read %s: reader is closed", r.path)
	case i < 0 || i >= r.n:
		return nil, fmt.Errorf("spill: read %s: record %d of %d: %w", r.path, i, r.n, arrow.ErrIndex)
	}
	var rec arrow.RecordBatch
	err := r.decode(fmt.Sprintf("record %d", i), func() (err error) {
		rec, err = r.fr.RecordBatchAt(i)
		return err
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// Close releases the file bytes. Records already returned stay valid.
// Close is idempotent.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
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
			err = fmt.Errorf("panic: %v", p)
			if p == ErrTooLarge {
				err = ErrTooLarge
			}
		}
		if err == nil {
			return
		}
		if what != "" {
			what += ": "
		}
		if errors.Is(err, ErrTooLarge) {
			err = fmt.Errorf("%w: %s: %sneeds more than %d bytes to decode (WithMaxRecordSize): damaged, or written under a larger memory budget",
				ErrTooLarge, r.path, what, r.mem.budget)
			return
		}
		err = corrupt(r.path, fmt.Errorf("%s%w", what, err))
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
