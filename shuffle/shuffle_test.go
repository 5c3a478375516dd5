package shuffle_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mrengine/mr/shuffle"
	"github.com/mrengine/mr/spill"
)

var schema = arrow.NewSchema([]arrow.Field{
	{Name: "k", Type: arrow.BinaryTypes.String},
	{Name: "v", Type: arrow.PrimitiveTypes.Int64},
}, nil)

// writeBuckets fills buckets 0 and 2 of 3 and flushes them.
func writeBuckets(t *testing.T, mem memory.Allocator, dir string) []shuffle.File {
	t.Helper()
	w := shuffle.NewWriter(schema, 3, mem)
	defer w.Release()
	for i, b := range []int{0, 2, 2} {
		bld := w.Bucket(b)
		bld.Field(0).(*array.StringBuilder).Append("key")
		bld.Field(1).(*array.Int64Builder).Append(int64(i))
	}
	files, err := w.Flush(func(b int) string { return shuffle.Path(dir, b, 7, 1, "a1") })
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestWriter_Flush(t *testing.T) {
	t.Parallel()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	for _, b := range []string{"b0000", "b0001", "b0002"} {
		os.Mkdir(filepath.Join(dir, b), 0o755)
	}
	files := writeBuckets(t, mem, dir)
	if len(files) != 2 || files[0].Bucket != 0 || files[1].Bucket != 2 || files[1].Rows != 2 {
		t.Fatalf("Flush wrote %+v, want buckets 0 (1 row) and 2 (2 rows)", files)
	}
	if want := filepath.Join(dir, "b0002", "p0007-000001-a1.arrow"); files[1].Path != want {
		t.Errorf("bucket 2 file is %s, want %s", files[1].Path, want)
	}
	var sum int64
	err := shuffle.Read(files, func(rec arrow.RecordBatch) error {
		for i := range int(rec.NumRows()) {
			sum += rec.Column(1).(*array.Int64).Value(i)
		}
		return nil
	}, spill.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	if sum != 0+1+2 {
		t.Errorf("read values summing to %d, want 3", sum)
	}
}

func TestRead_ChecksumMismatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, b := range []string{"b0000", "b0002"} {
		os.Mkdir(filepath.Join(dir, b), 0o755)
	}
	files := writeBuckets(t, memory.NewGoAllocator(), dir)
	// A valid spill file, but not the one the manifest committed.
	files[0].Checksum++
	err := shuffle.Read(files, func(arrow.RecordBatch) error { return nil })
	if !errors.Is(err, spill.ErrCorrupt) {
		t.Fatalf("Read of a file with another checksum = %v, want ErrCorrupt", err)
	}
}
