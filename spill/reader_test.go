package spill_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cespare/xxhash/v2"
	_ "gocloud.dev/blob/memblob"

	"github.com/mrengine/mr/internal/blobs"
	"github.com/mrengine/mr/spill"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ (with -run TestOpen_Golden)")

// validKey is a file of testBatches in testdata/, committed by an earlier
// version of this package: reading it proves the format has not changed.
// validManifest is its File, as a manifest pins it.
const (
	validKey      = "valid/batches.arrow"
	validManifest = "testdata/valid/batches.json"
)

// badInputs derives damaged files from a valid one, keyed by their golden
// key under testdata/: one folder per kind of damage. Those under decode/
// go to Decode, the others to Open with the valid file's manifest.
func badInputs(t testing.TB, valid []byte) map[string][]byte {
	t.Helper()
	n := len(valid)
	flip := func(i int) []byte {
		b := slices.Clone(valid)
		b[i] ^= 0xff
		return b
	}
	// The file as this package wrote it before issue 7: a 16-byte trailer
	// (checksum, magic) after the Arrow footer.
	oldFormat := binary.LittleEndian.AppendUint64(slices.Clone(valid), xxhash.Sum64(valid))
	oldFormat = append(oldFormat, "MRSPILL1"...)
	return map[string][]byte{
		"truncated/len-0.arrow":   nil,
		"truncated/len-5.arrow":   valid[:5],
		"truncated/half.arrow":    valid[:n/2],
		"truncated/minus-1.arrow": valid[:n-1],
		"flipped/first.arrow":     flip(0),
		"flipped/middle.arrow":    flip(n / 2),
		"flipped/last.arrow":      flip(n - 1),
		// Without a manifest, Arrow's own structure must catch the damage.
		"decode/half.arrow":        valid[:n/2],
		"decode/footer-size.arrow": flip(n - 10),
		"decode/record.arrow":      damagedRecord(t, valid),
		"decode/old-format.arrow":  oldFormat,
	}
}

// damagedRecord flips the first byte of data, searching from three
// quarters in, that leaves the footer readable but makes a record fail to
// decode. Most flips of compressed bytes decode to wrong values without an
// error, because arrow-go stops reading each zstd frame before its
// checksum: the reason the manifest pins a checksum.
func damagedRecord(t testing.TB, data []byte) []byte {
	t.Helper()
	for i := len(data) * 3 / 4; i < len(data); i++ {
		b := slices.Clone(data)
		b[i] ^= 0xff
		r, err := spill.Decode("x", b)
		if err != nil {
			continue
		}
		_, err = readRows(t, r)
		r.Close()
		if err != nil {
			return b
		}
	}
	t.Fatal("no single-byte flip breaks a record but not the footer")
	return nil
}

// readGolden opens or decodes the golden file key and reads every record.
func readGolden(t testing.TB, b *blobs.Bucket, key string, pinned spill.File, opts ...spill.Option) ([][]row, error) {
	t.Helper()
	if !strings.HasPrefix(key, "decode/") {
		pinned.Key = key
		return readAll(t, b, pinned, opts...)
	}
	data, err := b.ReadAll(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	r, err := spill.Decode(key, data, opts...)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return readRows(t, r)
}

// corruptAllocator returns the allocator for reading the bad input name: a
// checked one, except where Record fails. There arrow-go (v18.8) leaks the
// buffer it was decompressing (and the validity bitmap before it) when it
// recovers from the decoding panic; the Go allocator collects them.
func corruptAllocator(t *testing.T, name string) memory.Allocator {
	t.Helper()
	if name == "decode/record.arrow" {
		return memory.NewGoAllocator()
	}
	return newCheckedAllocator(t)
}

// TestOpen_Golden reads the files under testdata/: the valid one gives
// testBatches, each damaged one gives ErrCorrupt with the message in its
// .err file. With -update it rewrites them all from a new valid file.
func TestOpen_Golden(t *testing.T) {
	t.Parallel()
	b, err := blobs.OpenDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if *update {
		f := writeFile(t, b, validKey, memory.NewGoAllocator(), testBatches())
		manifest, _ := json.MarshalIndent(f, "", "\t")
		if err := os.WriteFile(validManifest, append(manifest, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var pinned spill.File
	if data, err := os.ReadFile(validManifest); err != nil || json.Unmarshal(data, &pinned) != nil {
		t.Fatalf("reading %s: %v", validManifest, err)
	}
	valid, err := b.ReadAll(context.Background(), validKey)
	if err != nil {
		t.Fatal(err)
	}
	bad := badInputs(t, valid)
	if *update {
		for key, data := range bad {
			path := filepath.Join("testdata", key)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := readGolden(t, b, key, pinned)
			if err == nil {
				t.Fatalf("%s: no error", path)
			}
			if err := os.WriteFile(strings.TrimSuffix(path, ".arrow")+".err", []byte(err.Error()+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	paths, err := filepath.Glob("testdata/*/*.arrow")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join("testdata", validKey)}
	for key := range bad {
		want = append(want, filepath.Join("testdata", key))
	}
	slices.Sort(want)
	if !slices.Equal(paths, want) {
		t.Fatalf("testdata holds %q, want %q (run go test -run TestOpen_Golden -update)", paths, want)
	}

	t.Run("Valid", func(t *testing.T) {
		t.Parallel()
		mem := newCheckedAllocator(t)
		got, err := readAll(t, b, pinned, spill.WithAllocator(mem))
		if err != nil {
			t.Fatal(err)
		}
		checkRows(t, got, testBatches())
	})
	for key, data := range bad {
		t.Run(strings.TrimSuffix(key, ".arrow"), func(t *testing.T) {
			t.Parallel()
			mem := corruptAllocator(t, key)
			path := filepath.Join("testdata", key)
			if stored, err := os.ReadFile(path); err != nil || !bytes.Equal(stored, data) {
				t.Fatalf("%s differs from what badInputs derives (%v): run go test -run TestOpen_Golden -update", path, err)
			}
			wantErr, err := os.ReadFile(strings.TrimSuffix(path, ".arrow") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			_, err = readGolden(t, b, key, pinned, spill.WithAllocator(mem))
			if !errors.Is(err, spill.ErrCorrupt) {
				t.Fatalf("error = %v, want ErrCorrupt", err)
			}
			if got := err.Error() + "\n"; got != string(wantErr) {
				t.Errorf("error =\n%s\nwant\n%s", got, wantErr)
			}
		})
	}
}

// TestOpen_Corrupt damages a file the current Writer commits, in the ways
// the golden files do.
func TestOpen_Corrupt(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	f := writeFile(t, tb.bucket, testKey, memory.NewGoAllocator(), testBatches())
	valid, err := tb.bucket.ReadAll(context.Background(), testKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range badInputs(t, valid) {
		t.Run(strings.TrimSuffix(name, ".arrow"), func(t *testing.T) {
			t.Parallel()
			mem := corruptAllocator(t, name)
			key := "run-2/" + name
			w, err := tb.bucket.NewWriter(context.Background(), key)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Abort()
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			_, err = readGolden(t, tb.bucket, key, f, spill.WithAllocator(mem))
			if !errors.Is(err, spill.ErrCorrupt) || !strings.Contains(err.Error(), key) {
				t.Errorf("error = %v, want ErrCorrupt naming %s", err, key)
			}
		})
	}
}

// A flipped bit in any byte is caught before Arrow parses.
func TestOpen_EveryByteFlipped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := blobs.Open(ctx, "mem://") // thousands of commits, without fsync
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	f := writeFile(t, b, testKey, memory.NewGoAllocator(), testBatches())
	valid, err := b.ReadAll(ctx, testKey)
	if err != nil {
		t.Fatal(err)
	}
	step := 1
	if spill.RaceEnabled() {
		step = 61 // hashing 14 KB 14,000 times takes 20 s under the race detector
	}
	for i := 0; i < len(valid); i += step {
		data := slices.Clone(valid)
		data[i] ^= 1 << (i % 8)
		w, err := b.NewWriter(ctx, testKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		_, err = spill.Open(ctx, b, f)
		if !errors.Is(err, spill.ErrCorrupt) || !strings.Contains(err.Error(), "checksum mismatch") {
			t.Fatalf("byte %d flipped: error = %v, want a checksum mismatch", i, err)
		}
	}
}

func TestOpen_NotExist(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	_, err := spill.Open(context.Background(), tb.bucket, spill.File{Key: testKey})
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, spill.ErrCorrupt) || !strings.Contains(err.Error(), testKey) {
		t.Errorf("Open(missing) = %v, want fs.ErrNotExist (not ErrCorrupt) naming %s", err, testKey)
	}
}

// Decode reads a file without a manifest, computing what Open verifies.
func TestDecode(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	mem := newCheckedAllocator(t)
	want := testBatches()
	f := writeFile(t, tb.bucket, testKey, mem, want)
	data, err := tb.bucket.ReadAll(context.Background(), testKey)
	if err != nil {
		t.Fatal(err)
	}
	r, err := spill.Decode("FILE", data, spill.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Checksum() != f.Checksum || r.Size() != f.Size || r.Compression() != "zstd" || r.NumRecords() != len(want) {
		t.Errorf("Decode() = checksum %x, size %d, compression %q, %d records; want %x, %d, zstd, %d",
			r.Checksum(), r.Size(), r.Compression(), r.NumRecords(), f.Checksum, f.Size, len(want))
	}
	got, err := readRows(t, r)
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, got, want)
}

// Compression reads the codec from the record batch messages of files that
// other writers made.
func TestReader_Compression(t *testing.T) {
	t.Parallel()
	mem := newCheckedAllocator(t)
	for _, tc := range []struct {
		opts []ipc.Option
		want string
	}{
		{nil, "none"},
		{[]ipc.Option{ipc.WithLZ4()}, "lz4"},
		{[]ipc.Option{ipc.WithZstd()}, "zstd"},
	} {
		var buf bytes.Buffer
		fw, err := ipc.NewFileWriter(&buf, append(tc.opts, ipc.WithSchema(testSchema), ipc.WithAllocator(mem))...)
		if err != nil {
			t.Fatal(err)
		}
		rec := buildRecord(t, mem, randomRows(rand.New(rand.NewPCG(2, 2)), 100))
		err = fw.Write(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := spill.Decode("f.arrow", buf.Bytes(), spill.WithAllocator(mem))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := readRows(t, r); err != nil {
			t.Error(err)
		}
		if got := r.Compression(); got != tc.want {
			t.Errorf("Compression() = %q, want %q", got, tc.want)
		}
		r.Close()
	}
}

// Records own their memory: they outlive the Reader.
func TestReader_Record(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	mem := newCheckedAllocator(t)
	want := testBatches()
	f := writeFile(t, tb.bucket, testKey, mem, want)

	r, err := spill.Open(context.Background(), tb.bucket, f, spill.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	if r.NumRecords() != len(want) || r.Checksum() != f.Checksum || r.Size() != f.Size || !r.Schema().Equal(testSchema) {
		t.Errorf("Open() = %d records, checksum %x, size %d, schema %v; want %d, %x, %d, %v",
			r.NumRecords(), r.Checksum(), r.Size(), r.Schema(), len(want), f.Checksum, f.Size, testSchema)
	}
	var recs []arrow.RecordBatch
	for i := range r.NumRecords() {
		rec, err := r.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	for _, i := range []int{-1, r.NumRecords()} {
		if _, err := r.Record(i); !errors.Is(err, arrow.ErrIndex) || errors.Is(err, spill.ErrCorrupt) {
			t.Errorf("Record(%d) = %v, want arrow.ErrIndex", i, err)
		}
	}
	for range 2 {
		if err := r.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
	}
	if _, err := r.Record(0); err == nil {
		t.Error("Record after Close succeeded")
	}

	var got [][]row
	for _, rec := range recs {
		got = append(got, recordRows(t, rec))
		rec.Release()
	}
	checkRows(t, got, want)
}

func TestReader_Record_TooLarge(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	rng := rand.New(rand.NewPCG(5, 5))
	f := writeFile(t, tb.bucket, testKey, memory.NewGoAllocator(), [][]row{randomRows(rng, 1), randomRows(rng, 5000)})

	// The arrow-go leak after a failed decode (see corruptAllocator) rules
	// out a checked allocator here.
	r, err := spill.Open(context.Background(), tb.bucket, f, spill.WithMaxRecordSize(16<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.Record(0)
	if err != nil {
		t.Fatalf("Record(0) = %v", err)
	}
	rec.Release()
	_, err = r.Record(1)
	if !errors.Is(err, spill.ErrTooLarge) || errors.Is(err, spill.ErrCorrupt) || !strings.Contains(err.Error(), testKey) {
		t.Errorf("Record(1) = %v, want ErrTooLarge (not ErrCorrupt) naming %s", err, testKey)
	}
}

// A record batch whose compressed body exceeds arrow-go's default reader
// limit (256 MiB) must read back: the writer knows no such limit.
func TestReader_Record_HugeBody(t *testing.T) {
	t.Parallel()
	if testing.Short() || spill.RaceEnabled() {
		t.Skip("writes and reads a 300 MB file: minutes and gigabytes under -race")
	}
	const size = 300 << 20
	schema := arrow.NewSchema([]arrow.Field{{Name: "blob", Type: arrow.BinaryTypes.Binary}}, nil)
	blob := make([]byte, size)
	rand.NewChaCha8([32]byte{}).Read(blob) // incompressible
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	b.Field(0).(*array.BinaryBuilder).Append(blob)
	rec := b.NewRecordBatch()
	b.Release()
	defer rec.Release()

	tb := setup(t)
	w, err := spill.Create(context.Background(), tb.bucket, testKey, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	f, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if f.Size < size {
		t.Fatalf("file is %d bytes, want more than %d", f.Size, size)
	}

	r, err := spill.Open(context.Background(), tb.bucket, f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.Record(0)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	if !bytes.Equal(got.Column(0).(*array.Binary).Value(0), blob) {
		t.Error("blob differs after the round trip")
	}
}
