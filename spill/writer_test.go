package spill_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cespare/xxhash/v2"

	"github.com/mrengine/mr/spill"
)

func TestWriter_Commit(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	mem := newCheckedAllocator(t)
	rng := rand.New(rand.NewPCG(7, 7))
	want := [][]row{randomRows(rng, 1000), randomRows(rng, 0), randomRows(rng, 1), randomRows(rng, 4096)}

	f := writeFile(t, tb.bucket, testKey, mem, want)

	got, err := readAll(t, tb.bucket, f, spill.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, got, want)

	data, err := tb.bucket.ReadAll(context.Background(), testKey)
	if err != nil {
		t.Fatal(err)
	}
	wantFile := spill.File{Key: testKey, Size: int64(len(data)), Rows: 1000 + 0 + 1 + 4096, Checksum: xxhash.Sum64(data)}
	if f != wantFile {
		t.Errorf("Commit() = %+v, want %+v", f, wantFile)
	}
	if names := keys(t, tb.bucket); !slices.Equal(names, []string{testKey}) {
		t.Errorf("bucket holds %q, want only the committed file", names)
	}
}

// A spill file is exactly an Arrow IPC file with zstd buffers: arrow-go
// reads it with no help, and nothing follows the footer's "ARROW1".
func TestWriter_Commit_PlainArrow(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	mem := newCheckedAllocator(t)
	want := testBatches()
	writeFile(t, tb.bucket, testKey, mem, want)

	data, err := tb.bucket.ReadAll(context.Background(), testKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("ARROW1\x00\x00")) || !bytes.HasSuffix(data, []byte("ARROW1")) {
		t.Errorf("file starts %q and ends %q, want the Arrow file magic at both ends", data[:8], data[len(data)-6:])
	}
	fr, err := ipc.NewFileReader(bytes.NewReader(data), ipc.WithAllocator(mem))
	if err != nil {
		t.Fatalf("the file is not an Arrow file: %v", err)
	}
	defer fr.Close()
	var got [][]row
	for i := range fr.NumRecords() {
		rec, err := fr.RecordBatchAt(i)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, recordRows(t, rec))
		rec.Release()
	}
	checkRows(t, got, want)
	if zstdMagic := []byte{0x28, 0xb5, 0x2f, 0xfd}; !bytes.Contains(data, zstdMagic) {
		t.Errorf("no zstd frame in the file")
	}
}

func TestWriter_Commit_NoRecords(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	mem := newCheckedAllocator(t)
	f := writeFile(t, tb.bucket, testKey, mem, nil)
	if f.Rows != 0 {
		t.Errorf("Rows = %d, want 0", f.Rows)
	}
	r, err := spill.Open(context.Background(), tb.bucket, f, spill.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumRecords() != 0 || !r.Schema().Equal(testSchema) || r.Checksum() != f.Checksum || r.Compression() != "none" {
		t.Errorf("Open() = %d records, schema %v, checksum %x, compression %s; want 0, %v, %x, none",
			r.NumRecords(), r.Schema(), r.Checksum(), r.Compression(), testSchema, f.Checksum)
	}
}

func TestWriter_Abort(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	mem := newCheckedAllocator(t)
	ctx := context.Background()

	w, err := spill.Create(ctx, tb.bucket, testKey, testSchema, spill.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	rec := buildRecord(t, mem, randomRows(rand.New(rand.NewPCG(1, 1)), 100))
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.bucket.ReadAll(ctx, testKey); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("before Commit, ReadAll = %v, want fs.ErrNotExist", err)
	}

	for range 2 {
		if err := w.Abort(); err != nil {
			t.Fatalf("Abort() = %v", err)
		}
		if names := keys(t, tb.bucket); len(names) != 0 {
			t.Fatalf("after Abort, bucket holds %q", names)
		}
	}
	if err := w.Write(rec); err == nil {
		t.Error("Write after Abort succeeded")
	}
	if _, err := w.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
}

func TestWriter_Abort_AfterCommit(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	mem := newCheckedAllocator(t)
	w, err := spill.Create(context.Background(), tb.bucket, testKey, testSchema, spill.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	f, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort() = %v", err)
	}
	if _, err := readAll(t, tb.bucket, f); err != nil {
		t.Errorf("Abort after Commit removed the file: %v", err)
	}
}

func TestWriter_Write_WrongSchema(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	mem := newCheckedAllocator(t)
	w, err := spill.Create(context.Background(), tb.bucket, testKey, testSchema, spill.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	other := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewRecordBuilder(mem, other)
	b.Field(0).(*array.Int64Builder).Append(1)
	rec := b.NewRecordBatch()
	b.Release()
	defer rec.Release()

	if err := w.Write(rec); err == nil || !strings.Contains(err.Error(), testKey) {
		t.Errorf("Write(wrong schema) = %v, want an error naming %s", err, testKey)
	}
	if _, err := w.Commit(); err == nil {
		t.Error("Commit after a failed Write succeeded")
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if names := keys(t, tb.bucket); len(names) != 0 {
		t.Errorf("after Abort, bucket holds %q", names)
	}
}

// TestWriter_Faults injects write failures between Arrow's encoder and the
// bucket, in the body and in the footer, as short writes (part of the
// bytes, then the error) like a full disk's: the error names the key and wraps
// the cause, and Abort leaves nothing. (Failures of fsync and rename are
// the blobs package's to test; a real full disk is tested there too.)
func TestWriter_Faults(t *testing.T) {
	t.Parallel()
	// Several times the write buffer, so that early faults surface in Write.
	rng := rand.New(rand.NewPCG(3, 3))
	batches := [][]row{randomRows(rng, 4000), randomRows(rng, 4000), randomRows(rng, 4000)}
	size := writeFile(t, setup(t).bucket, testKey, memory.NewGoAllocator(), batches).Size

	for _, tc := range []struct {
		name string
		sink faultWriter
		want error
		in   string // the call that fails
	}{
		{"ENOSPC/at=0", faultWriter{limit: 0, err: syscall.ENOSPC}, syscall.ENOSPC, "Write"},
		{"ENOSPC/at=3", faultWriter{limit: 3, err: syscall.ENOSPC}, syscall.ENOSPC, "Write"},
		{"ENOSPC/at=half", faultWriter{limit: size / 2, err: syscall.ENOSPC}, syscall.ENOSPC, "Write"},
		{"ENOSPC/in-footer", faultWriter{limit: size - 40, err: syscall.ENOSPC}, syscall.ENOSPC, "Commit"},
		{"ENOSPC/at=size-1", faultWriter{limit: size - 1, err: syscall.ENOSPC}, syscall.ENOSPC, "Commit"},
		{"EIO/at=half", faultWriter{limit: size / 2, err: syscall.EIO}, syscall.EIO, "Write"},
		{"EIO/in-footer", faultWriter{limit: size - 40, err: syscall.EIO}, syscall.EIO, "Commit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t)
			mem := newCheckedAllocator(t)
			sink := tc.sink
			w, err := spill.Create(context.Background(), tb.bucket, testKey, testSchema, spill.WithAllocator(mem),
				spill.WithSink(func(w io.Writer) io.Writer { sink.w = w; return &sink }))
			if err != nil {
				t.Fatal(err)
			}
			in := "Write"
			err = writeBatches(t, w, mem, batches)
			if err == nil {
				in = "Commit"
				_, err = w.Commit()
			}
			if in != tc.in || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), testKey) {
				t.Errorf("%s() = %v, want %s() to fail wrapping %v and naming %s", in, err, tc.in, tc.want, testKey)
			}
			if _, err := w.Commit(); err == nil {
				t.Error("Commit succeeded after a failure")
			}
			if err := w.Abort(); err != nil {
				t.Fatalf("Abort() = %v", err)
			}
			if names := keys(t, tb.bucket); len(names) != 0 {
				t.Errorf("after Abort, bucket holds %q", names)
			}
		})
	}
}

// Cancelling Create's context makes Commit fail and leaves nothing.
func TestWriter_Commit_Canceled(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	mem := newCheckedAllocator(t)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := spill.Create(ctx, tb.bucket, testKey, testSchema, spill.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := writeBatches(t, w, mem, testBatches()); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := w.Commit(); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), testKey) {
		t.Errorf("Commit() = %v, want context.Canceled naming %s", err, testKey)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if names := keys(t, tb.bucket); len(names) != 0 {
		t.Errorf("after Abort, bucket holds %q", names)
	}
}

// writeBatches writes one record per batch and returns the first error.
func writeBatches(t *testing.T, w *spill.Writer, mem memory.Allocator, batches [][]row) error {
	t.Helper()
	for _, rows := range batches {
		rec := buildRecord(t, mem, rows)
		err := w.Write(rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// faultWriter passes limit bytes to w, then fails like a full disk: the
// write that crosses the limit is short, with err.
type faultWriter struct {
	w       io.Writer
	limit   int64
	err     error
	written int64
}

func (f *faultWriter) Write(p []byte) (int, error) {
	if f.written+int64(len(p)) <= f.limit {
		n, err := f.w.Write(p)
		f.written += int64(n)
		return n, err
	}
	n, err := f.w.Write(p[:f.limit-f.written])
	f.written += int64(n)
	if err == nil {
		err = f.err
	}
	return n, err
}
