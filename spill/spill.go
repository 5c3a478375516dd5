package spill

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ErrCorrupt is wrapped by every error that reports a damaged spill file:
// too short, bad magic, checksum mismatch, or Arrow bytes that do not
// decode. The message names the file.
var ErrCorrupt = errors.New("spill: corrupt file")

// ErrTooLarge is wrapped by the error of a record (or the dictionaries)
// that needs more memory to decode than WithMaxRecordSize allows.
var ErrTooLarge = errors.New("spill: record too large")

// corruptHint tells the user what to do about a corrupt file. Spill files
// are derived data: a fresh run rewrites every one of them.
const corruptHint = "re-run with --fresh to rewrite it"

// Format constants; see the package documentation.
const (
	// Magic ends every committed spill file.
	Magic = "MRSPILL1"
	// TrailerSize is the size of the checksum and magic after the Arrow bytes.
	TrailerSize = 16
)

// File describes a committed spill file. The engine stores it in its
// checkpoint manifest.
type File struct {
	Path     string // as given to Create
	Size     int64  // bytes on disk, trailer included
	Rows     int64  // rows in all record batches
	Checksum uint64 // XXH64 of the Arrow bytes, as stored in the trailer
}

// corrupt wraps ErrCorrupt and cause for the file at path.
func corrupt(path string, cause error) error {
	return fmt.Errorf("%w %s: %w (%s)", ErrCorrupt, path, cause, corruptHint)
}

// opError reports that op failed on the spill file at path. It drops the
// *fs.PathError or *os.LinkError layer of err, which names a temp file the
// caller never saw, and keeps the cause for errors.Is (fs.ErrNotExist,
// syscall.ENOSPC).
func opError(op, path string, err error) error {
	var pathErr *fs.PathError
	var linkErr *os.LinkError
	switch {
	case errors.As(err, &pathErr):
		err = pathErr.Err
	case errors.As(err, &linkErr):
		err = linkErr.Err
	}
	return fmt.Errorf("spill: %s %s: %w", op, path, err)
}

// Option configures Create and Open.
type Option func(*options)

type options struct {
	mem           memory.Allocator
	fs            FS
	maxRecordSize int64
}

func newOptions(opts []Option) options {
	o := options{mem: memory.DefaultAllocator, fs: OS{}, maxRecordSize: DefaultMaxRecordSize}
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

// WithFS sets the file layer; the default is OS. Tests use it to inject
// faults.
func WithFS(fsys FS) Option {
	return func(o *options) { o.fs = fsys }
}

// DefaultMaxRecordSize is the default of WithMaxRecordSize: twice the
// engine's default memory budget (512 MiB), since every record was built in
// memory under that budget.
const DefaultMaxRecordSize = 1 << 30

// WithMaxRecordSize bounds the bytes Reader.Record may allocate to decode
// one record batch. arrow-go trusts the sizes in the file, so without a
// bound a file that passes its checksum but holds a bad size (a bit
// flipped in the writer's memory before the checksum saw it) could exhaust
// memory. The engine passes its memory budget.
func WithMaxRecordSize(n int64) Option {
	return func(o *options) { o.maxRecordSize = n }
}
