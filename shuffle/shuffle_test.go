package shuffle_test

import (
	"context"
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mrengine/mr/internal/blobs"
	"github.com/mrengine/mr/shuffle"
	"github.com/mrengine/mr/spill"
)

var fields = []shuffle.Field{{Name: "k", Type: shuffle.TypeString}, {Name: "v", Type: shuffle.TypeInt64}}

type pair struct {
	k string
	v int64
}

// write adds the pairs to a Writer of 3 buckets and flushes them.
func write(t *testing.T, mem memory.Allocator, b *blobs.Bucket, pairs []pair) []shuffle.File {
	t.Helper()
	w := shuffle.NewWriter(shuffle.Schema(fields), 3, 42, mem)
	defer w.Release()
	for _, p := range pairs {
		h := w.Hash()
		h.String(p.k)
		e := w.Record(h)
		e.String(p.k)
		e.Int64(p.v)
	}
	files, err := w.Flush(context.Background(), b, func(bucket int) string { return shuffle.MapKey("run-1", bucket, 7, 1, "a1") })
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func openBucket(t *testing.T) *blobs.Bucket {
	t.Helper()
	b, err := blobs.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// Every key lands in the bucket its hash picks, in one file per non-empty
// bucket, and reads back whole.
func TestWriter_Flush(t *testing.T) {
	t.Parallel()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := openBucket(t)
	var pairs []pair
	for i := range 100 {
		pairs = append(pairs, pair{string(rune('a' + i%26)), int64(i)})
	}
	files := write(t, mem, b, pairs)
	h := shuffle.NewKeyHash(42)
	got := map[string]int64{}
	var rows int64
	for _, f := range files {
		if want := shuffle.MapKey("run-1", f.Bucket, 7, 1, "a1"); f.Key != want {
			t.Errorf("bucket %d file is %s, want %s", f.Bucket, f.Key, want)
		}
		rows += f.Rows
		var dec shuffle.RecordDecoder
		err := shuffle.Read(context.Background(), b, []shuffle.File{f}, func(rec arrow.RecordBatch) error {
			dec.Reset(rec)
			for range rec.NumRows() {
				k, v := dec.String(), dec.Int64()
				h.Reset()
				h.String(k)
				if bucket := shuffle.Bucket(h.Sum64(), 3); bucket != f.Bucket {
					t.Errorf("key %q is in bucket %d, its hash picks %d", k, f.Bucket, bucket)
				}
				got[k] += v
			}
			return nil
		}, spill.WithAllocator(mem))
		if err != nil {
			t.Fatal(err)
		}
	}
	if rows != int64(len(pairs)) {
		t.Errorf("files hold %d rows, want %d", rows, len(pairs))
	}
	want := map[string]int64{}
	for _, p := range pairs {
		want[p.k] += p.v
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("key %q sums to %d, want %d", k, got[k], v)
		}
	}
}

// A valid file that is not the one the manifest pinned is corrupt.
func TestRead_ChecksumMismatch(t *testing.T) {
	t.Parallel()
	b := openBucket(t)
	files := write(t, memory.NewGoAllocator(), b, []pair{{"key", 1}})
	files[0].Checksum++
	err := shuffle.Read(context.Background(), b, files, func(arrow.RecordBatch) error { return nil })
	if !errors.Is(err, spill.ErrCorrupt) {
		t.Fatalf("Read of a file with another checksum = %v, want ErrCorrupt", err)
	}
}
