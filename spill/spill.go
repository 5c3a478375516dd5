package spill

import (
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ErrCorrupt is wrapped by every error that reports a damaged spill file:
// a size or checksum other than the manifest pins, or bytes that are not a
// well-formed Arrow IPC file. The message names the file.
var ErrCorrupt = errors.New("spill: corrupt file")

// ErrTooLarge is wrapped by the error of a file whose footer, or record,
// needs more memory to decode than WithMaxRecordSize allows.
var ErrTooLarge = errors.New("spill: record too large")

// corruptHint tells the user what to do about a corrupt file. Spill files
// are derived data: a fresh run rewrites every one of them.
const corruptHint = "re-run with --fresh to rewrite it"

// File describes a committed spill file. The engine pins it in its
// checkpoint manifest, and Open checks the file against it.
type File struct {
	Key      string `json:"key"`
	Size     int64  `json:"size"`
	Rows     int64  `json:"rows"`
	Checksum uint64 `json:"checksum"` // XXH64 of the file's bytes
}

// corrupt wraps ErrCorrupt and cause for the file name.
func corrupt(name string, cause error) error {
	return fmt.Errorf("%w %s: %w (%s)", ErrCorrupt, name, cause, corruptHint)
}

// Option configures Create, Open and Decode.
type Option func(*options)

type options struct {
	mem           memory.Allocator
	maxRecordSize int64
	// sink, if set, wraps the blob writer that Create's encoder writes to:
	// the seam where tests inject faults (export_test.go).
	sink func(io.Writer) io.Writer
}

func newOptions(opts []Option) options {
	o := options{mem: memory.DefaultAllocator, maxRecordSize: DefaultMaxRecordSize}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithAllocator sets the allocator for Arrow buffers; the default is
// memory.DefaultAllocator. Records returned by Reader.Record are allocated
// from it.
func WithAllocator(mem memory.Allocator) Option {
	return func(o *options) { o.mem = mem }
}

// DefaultMaxRecordSize is the default of WithMaxRecordSize: twice the
// engine's default memory budget (512 MiB), since every record was built in
// memory under that budget.
const DefaultMaxRecordSize = 1 << 30

// WithMaxRecordSize bounds the memory that decoding the footer (schema,
// metadata, dictionaries), or one record batch, may take, as the package
// doc's Memory section details. arrow-go trusts the sizes in a file, so
// without a bound a damaged size (in bytes given to Decode, or flipped in
// the writer's memory before the checksum saw it) could exhaust memory.
// The engine passes its memory budget.
func WithMaxRecordSize(n int64) Option {
	return func(o *options) { o.maxRecordSize = n }
}
