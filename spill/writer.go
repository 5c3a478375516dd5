package spill

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/cespare/xxhash/v2"

	"github.com/mrengine/mr/internal/blobs"
)

// bufferSize is the write buffer in front of the blob. The IPC writer
// issues many tiny writes (length prefixes, 8-byte padding) between the
// buffers; 64 KiB turns them into few syscalls, and bufio passes larger
// buffers straight through.
const bufferSize = 64 << 10

// Writer writes one spill file. It is not safe for concurrent use.
//
// Once Write or Commit has failed the Writer is unusable and the caller
// must call Abort.
type Writer struct {
	key  string
	blob *blobs.Writer
	buf  *bufio.Writer
	out  *hashWriter
	ipc  *ipcFile
	rows int64
	err  error // sticky failure of Write or Commit
	done bool  // committed or aborted
}

// hashWriter is the IPC writer's destination: it forwards to w and
// hashes and counts the bytes w accepted.
type hashWriter struct {
	w   io.Writer
	h   *xxhash.Digest
	n   int64
	err error // first error from w
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

// Create starts a spill file that becomes visible under key in b only on
// Commit. Every record written must have the given schema. ctx bounds the
// whole write: cancelling it makes Commit fail.
func Create(ctx context.Context, b *blobs.Bucket, key string, schema *arrow.Schema, opts ...Option) (*Writer, error) {
	if schema == nil {
		return nil, fmt.Errorf("spill: create %s: nil schema", key)
	}
	o := newOptions(opts)
	bw, err := b.NewWriter(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("spill: create %s: %w", key, err)
	}
	var sink io.Writer = bw
	if o.sink != nil {
		sink = o.sink(bw)
	}
	buf := bufio.NewWriterSize(sink, bufferSize)
	out := &hashWriter{w: buf, h: xxhash.New()}
	fw, err := newIPCFile(out, schema)
	if err != nil {
		bw.Abort()
		return nil, fmt.Errorf("spill: create %s: %w", key, err)
	}
	// The magic and schema fit in the buffer, so the sink's errors surface
	// in Write or Commit, never here.
	if err := fw.start(); err != nil {
		bw.Abort()
		return nil, fmt.Errorf("spill: create %s: %w", key, err)
	}
	return &Writer{key: key, blob: bw, buf: buf, out: out, ipc: fw}, nil
}

// Write appends rec to the file. The caller still owns rec and releases it.
func (w *Writer) Write(rec arrow.RecordBatch) error {
	if err := w.check(); err != nil {
		return err
	}
	if err := w.ipc.writeRecord(rec); err != nil {
		return w.fail("write", err)
	}
	w.rows += rec.NumRows()
	return nil
}

// Commit writes the Arrow footer and commits the blob (for a file bucket:
// fsync, rename, fsync of the directory). Only after Commit returns a nil
// error may the file be named in a checkpoint, with the returned File.
func (w *Writer) Commit() (File, error) {
	if err := w.check(); err != nil {
		return File{}, err
	}
	if err := w.ipc.close(); err != nil {
		return File{}, w.fail("write", err)
	}
	if err := w.buf.Flush(); err != nil {
		return File{}, w.fail("write", err)
	}
	if err := w.blob.Commit(); err != nil {
		return File{}, w.fail("commit", err)
	}
	w.done = true
	return File{Key: w.key, Size: w.out.n, Rows: w.rows, Checksum: w.out.h.Sum64()}, nil
}

// Abort discards the file: nothing stays visible under the key. It is safe
// after a failed Write or Commit, does nothing after a successful Commit,
// and is idempotent.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	if err := w.blob.Abort(); err != nil {
		return fmt.Errorf("spill: abort %s: %w", w.key, err)
	}
	return nil
}

// check returns why the Writer cannot be used, if it cannot.
func (w *Writer) check() error {
	switch {
	case w.done:
		return fmt.Errorf("spill: write %s: writer is committed or aborted", w.key)
	case w.err != nil:
		return w.err
	}
	return nil
}

// fail makes the Writer unusable with an error for op. It reports the I/O
// error that the IPC writer saw, when there is one.
func (w *Writer) fail(op string, err error) error {
	if w.out.err != nil {
		err = w.out.err
	}
	w.err = fmt.Errorf("spill: %s %s: %w", op, w.key, err)
	return w.err
}
