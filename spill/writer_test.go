package spill_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
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
	mem := newCheckedAllocator(t)
	path := tempPath(t)
	rng := rand.New(rand.NewPCG(7, 7))
	want := [][]row{randomRows(rng, 1000), randomRows(rng, 0), randomRows(rng, 1), randomRows(rng, 4096)}

	f := writeFile(t, path, mem, want)

	got, err := readAll(t, path, spill.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, got, want)

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	body, trailer := data[:len(data)-16], data[len(data)-16:]
	wantFile := spill.File{Path: path, Size: int64(len(data)), Rows: 1000 + 0 + 1 + 4096, Checksum: xxhash.Sum64(body)}
	if f != wantFile {
		t.Errorf("Commit() = %+v, want %+v", f, wantFile)
	}
	if sum := binary.LittleEndian.Uint64(trailer[:8]); sum != f.Checksum || string(trailer[8:]) != "MRSPILL1" {
		t.Errorf("trailer = %x %q, want %x %q", sum, trailer[8:], f.Checksum, "MRSPILL1")
	}
	if names := dirNames(t, filepath.Dir(path)); !slices.Equal(names, []string{filepath.Base(path)}) {
		t.Errorf("directory holds %q, want only the committed file", names)
	}
}

// The file without its trailer is a plain Arrow file with zstd buffers.
func TestWriter_Commit_PlainArrow(t *testing.T) {
	t.Parallel()
	mem := newCheckedAllocator(t)
	path := tempPath(t)
	want := testBatches()
	writeFile(t, path, mem, want)

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fr, err := ipc.NewFileReader(bytes.NewReader(data[:len(data)-16]), ipc.WithAllocator(mem))
	if err != nil {
		t.Fatalf("the Arrow bytes are not an Arrow file: %v", err)
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
	mem := newCheckedAllocator(t)
	path := tempPath(t)
	f := writeFile(t, path, mem, nil)
	if f.Rows != 0 {
		t.Errorf("Rows = %d, want 0", f.Rows)
	}
	r, err := spill.Open(path, spill.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumRecords() != 0 || !r.Schema().Equal(testSchema) || r.Checksum() != f.Checksum {
		t.Errorf("Open() = %d records, schema %v, checksum %x; want 0, %v, %x", r.NumRecords(), r.Schema(), r.Checksum(), testSchema, f.Checksum)
	}
}

func TestWriter_Abort(t *testing.T) {
	t.Parallel()
	mem := newCheckedAllocator(t)
	path := tempPath(t)
	dir := filepath.Dir(path)

	w, err := spill.Create(path, testSchema, spill.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	rec := buildRecord(t, mem, randomRows(rand.New(rand.NewPCG(1, 1)), 100))
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("before Commit, Stat(path) = %v, want not exist", err)
	}
	names := dirNames(t, dir)
	if len(names) != 1 || !strings.HasPrefix(names[0], ".p0-1.arrow.tmp-") {
		t.Errorf("before Commit, directory holds %q, want one .p0-1.arrow.tmp-* file", names)
	}

	for range 2 {
		if err := w.Abort(); err != nil {
			t.Fatalf("Abort() = %v", err)
		}
		if names := dirNames(t, dir); len(names) != 0 {
			t.Fatalf("after Abort, directory holds %q", names)
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
	mem := newCheckedAllocator(t)
	path := tempPath(t)
	w, err := spill.Create(path, testSchema, spill.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort() = %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("Abort after Commit removed the file: %v", err)
	}
}

func TestWriter_Write_WrongSchema(t *testing.T) {
	t.Parallel()
	mem := newCheckedAllocator(t)
	path := tempPath(t)
	w, err := spill.Create(path, testSchema, spill.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	other := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewRecordBuilder(mem, other)
	b.Field(0).(*array.Int64Builder).Append(1)
	rec := b.NewRecordBatch()
	b.Release()
	defer rec.Release()

	if err := w.Write(rec); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Write(wrong schema) = %v, want an error naming %s", err, path)
	}
	if _, err := w.Commit(); err == nil {
		t.Error("Commit after a failed Write succeeded")
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, filepath.Dir(path)); len(names) != 0 {
		t.Errorf("after Abort, directory holds %q", names)
	}
}

// TestWriter_Faults injects I/O errors at every step of the write protocol:
// the error names the path and wraps the cause, and Abort leaves nothing.
func TestWriter_Faults(t *testing.T) {
	t.Parallel()
	// Several times the write buffer, so that early faults surface in Write.
	rng := rand.New(rand.NewPCG(3, 3))
	batches := [][]row{randomRows(rng, 4000), randomRows(rng, 4000), randomRows(rng, 4000)}
	size := writeFile(t, tempPath(t), memory.NewGoAllocator(), batches).Size

	eio := syscall.EIO
	for _, tc := range []struct {
		name string
		fs   faultFS
		want error
		in   string // the call that fails
	}{
		{"ENOSPC/at=0", faultFS{writeLimit: 0}, syscall.ENOSPC, "Write"},
		{"ENOSPC/at=3", faultFS{writeLimit: 3}, syscall.ENOSPC, "Write"},
		{"ENOSPC/at=half", faultFS{writeLimit: size / 2}, syscall.ENOSPC, "Write"},
		{"ENOSPC/in-footer", faultFS{writeLimit: size - 40}, syscall.ENOSPC, "Commit"},
		{"ENOSPC/in-trailer", faultFS{writeLimit: size - 8}, syscall.ENOSPC, "Commit"},
		{"ENOSPC/at=size-1", faultFS{writeLimit: size - 1}, syscall.ENOSPC, "Commit"},
		{"Sync", faultFS{writeLimit: -1, syncErr: eio}, eio, "Commit"},
		{"Close", faultFS{writeLimit: -1, closeErr: eio}, eio, "Commit"},
		{"Rename", faultFS{writeLimit: -1, renameErr: syscall.EXDEV}, syscall.EXDEV, "Commit"},
		{"SyncDir", faultFS{writeLimit: -1, syncDirErr: eio}, eio, "Commit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mem := newCheckedAllocator(t)
			path := tempPath(t)
			fsys := tc.fs
			w, err := spill.Create(path, testSchema, spill.WithAllocator(mem), spill.WithFS(&fsys))
			if err != nil {
				t.Fatal(err)
			}
			in := "Write"
			err = writeBatches(t, w, mem, batches)
			if err == nil {
				in = "Commit"
				_, err = w.Commit()
			}
			if in != tc.in || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("%s() = %v, want %s() to fail wrapping %v and naming %s", in, err, tc.in, tc.want, path)
			}
			if _, err := w.Commit(); err == nil {
				t.Error("Commit succeeded after a failure")
			}
			if err := w.Abort(); err != nil {
				t.Fatalf("Abort() = %v", err)
			}
			if names := dirNames(t, filepath.Dir(path)); len(names) != 0 {
				t.Errorf("after Abort, directory holds %q", names)
			}
		})
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

// faultFS is the OS file system with injected failures, returned as package
// os returns them.
type faultFS struct {
	spill.OS
	writeLimit int64 // bytes a temp file takes before writes fail with ENOSPC; -1: no limit
	syncErr    error
	closeErr   error
	renameErr  error
	syncDirErr error
}

func (fsys *faultFS) CreateTemp(dir, pattern string) (spill.TempFile, error) {
	f, err := fsys.OS.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &faultFile{TempFile: f, fs: fsys}, nil
}

func (fsys *faultFS) Rename(oldpath, newpath string) error {
	if fsys.renameErr != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fsys.renameErr}
	}
	return fsys.OS.Rename(oldpath, newpath)
}

func (fsys *faultFS) SyncDir(dir string) error {
	if fsys.syncDirErr != nil {
		return &fs.PathError{Op: "sync", Path: dir, Err: fsys.syncDirErr}
	}
	return fsys.OS.SyncDir(dir)
}

type faultFile struct {
	spill.TempFile
	fs      *faultFS
	written int64
}

// Write writes what fits under the limit, then fails like a full disk: a
// short write with ENOSPC.
func (f *faultFile) Write(p []byte) (int, error) {
	limit := f.fs.writeLimit
	if limit < 0 || f.written+int64(len(p)) <= limit {
		n, err := f.TempFile.Write(p)
		f.written += int64(n)
		return n, err
	}
	n, err := f.TempFile.Write(p[:limit-f.written])
	f.written += int64(n)
	if err == nil {
		err = &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return n, err
}

func (f *faultFile) Sync() error {
	if f.fs.syncErr != nil {
		return &fs.PathError{Op: "sync", Path: f.Name(), Err: f.fs.syncErr}
	}
	return f.TempFile.Sync()
}

func (f *faultFile) Close() error {
	err := f.TempFile.Close()
	if f.fs.closeErr != nil {
		return &fs.PathError{Op: "close", Path: f.Name(), Err: f.fs.closeErr}
	}
	return err
}
