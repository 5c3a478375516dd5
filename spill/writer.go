package spill

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/cespare/xxhash/v2"
)

// bufferSize is the write buffer in front of the temp file. Arrow's IPC
// writer issues many tiny writes (length prefixes, 8-byte padding) between
// the buffers; 64 KiB turns them into few syscalls, and bufio passes larger
// buffers straight through.
const bufferSize = 64 << 10

// Writer writes one spill file. It is not safe for concurrent use.
//
// Once Write or Commit has failed the Writer is unusable and the caller
// must call Abort.
type Writer struct {
	path string // final path
	name string // where the file is now: the temp name, or path after the rename
	fs   FS
	f    TempFile // nil once closed
	buf  *bufio.Writer
	out  *hashWriter
	ipc  *ipc.FileWriter
	rows int64
	err  error // sticky failure of Write or Commit
	done bool  // committed or aborted
}

// hashWriter is the Arrow writer's destination: it forwards to w and
// hashes and counts the bytes w accepted.
type hashWriter struct {
	w   io.Writer
	h   *xxhash.Digest
	n   int64
	err error // first error from w: the I/O error behind Arrow's wrapping
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	if err != nil && hw.err == nil {
		hw.err = err
	}
	return n, err
}

// Create starts a spill file that becomes visible at path only on Commit.
// Every record written must have the given schema.
func Create(path string, schema *arrow.Schema, opts ...Option) (*Writer, error) {
	if schema == nil {
		return nil, fmt.Errorf("spill: create %s: nil schema", path)
	}
	o := newOptions(opts)
	f, err := o.fs.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, opError("create", path, err)
	}
	buf := bufio.NewWriterSize(f, bufferSize)
	out := &hashWriter{w: buf, h: xxhash.New()}
	// NewFileWriter writes nothing until the first Write or Close.
	fw, err := ipc.NewFileWriter(out, ipc.WithSchema(schema), ipc.WithZstd(), ipc.WithAllocator(o.mem))
	if err != nil {
		f.Close()
		o.fs.Remove(f.Name())
		return nil, opError("create", path, err)
	}
	return &Writer{path: path, name: f.Name(), fs: o.fs, f: f, buf: buf, out: out, ipc: fw}, nil
}

// Write appends rec to the file. The caller still owns rec and releases it.
func (w *Writer) Write(rec arrow.RecordBatch) error {
	if err := w.check(); err != nil {
		return err
	}
	if err := w.ipc.Write(rec); err != nil {
		return w.fail("write", err)
	}
	w.rows += rec.NumRows()
	return nil
}

// Commit finishes the file and makes it durable at path: it writes the
// Arrow footer and the trailer, fsyncs the file, closes it, renames it to
// path and fsyncs the directory. Only after Commit returns a nil error may
// the file be named in a checkpoint.
func (w *Writer) Commit() (File, error) {
	if err := w.check(); err != nil {
		return File{}, err
	}
	if err := w.ipc.Close(); err != nil {
		return File{}, w.fail("write", err)
	}
	var trailer [TrailerSize]byte
	binary.LittleEndian.PutUint64(trailer[:8], w.out.h.Sum64())
	copy(trailer[8:], Magic)
	if _, err := w.buf.Write(trailer[:]); err != nil {
		return File{}, w.fail("write", err)
	}
	if err := w.buf.Flush(); err != nil {
		return File{}, w.fail("write", err)
	}
	if err := w.f.Sync(); err != nil {
		return File{}, w.fail("sync", err)
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return File{}, w.fail("close", err)
	}
	if err := w.fs.Rename(w.name, w.path); err != nil {
		return File{}, w.fail("rename", err)
	}
	w.name = w.path
	if err := w.fs.SyncDir(filepath.Dir(w.path)); err != nil {
		return File{}, w.fail("sync directory of", err)
	}
	w.done = true
	return File{
		Path:     w.path,
		Size:     w.out.n + TrailerSize,
		Rows:     w.rows,
		Checksum: w.out.h.Sum64(),
	}, nil
}

// Abort closes and removes the file. It is safe after a failed Write or
// Commit, does nothing after a successful Commit, and is idempotent.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	// Close releases the dictionaries the IPC writer retains; the footer it
	// may write goes nowhere.
	w.out.w = io.Discard
	w.ipc.Close()
	if w.f != nil {
		w.f.Close() // the file is removed next; its close error is moot
		w.f = nil
	}
	if err := w.fs.Remove(w.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return opError("abort", w.path, err)
	}
	return nil
}

// check returns why the Writer cannot be used, if it cannot.
func (w *Writer) check() error {
	switch {
	case w.done:
		return fmt.Errorf("spill: write %s: writer is committed or aborted", w.path)
	case w.err != nil:
		return w.err
	}
	return nil
}

// fail makes the Writer unusable with an error for op. It reports the I/O
// error that Arrow saw, when there is one, rather than Arrow's wrapping.
func (w *Writer) fail(op string, err error) error {
	if w.out.err != nil {
		err = w.out.err
	}
	w.err = opError(op, w.path, err)
	return w.err
}
