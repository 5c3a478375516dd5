package spill_test

import (
	"bytes"
	"encoding/binary"
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
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cespare/xxhash/v2"

	"github.com/mrengine/mr/spill"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ (with -run TestOpen_Golden)")

// validGolden is a file of testBatches, committed by an earlier version of
// this package: reading it proves the format has not changed.
const validGolden = "testdata/valid/batches.arrow"

// seal appends a correct trailer to Arrow bytes.
func seal(body []byte) []byte {
	out := binary.LittleEndian.AppendUint64(slices.Clone(body), xxhash.Sum64(body))
	return append(out, spill.Magic...)
}

// badInputs derives damaged files from a valid one, keyed by their golden
// path under testdata/: one folder per kind of damage.
func badInputs(t testing.TB, valid []byte) map[string][]byte {
	t.Helper()
	n := len(valid)
	body := valid[:n-spill.TrailerSize]
	flip := func(i int) []byte {
		b := slices.Clone(valid)
		b[i] ^= 0xff
		return b
	}
	bad := map[string][]byte{
		"truncated/len-0.arrow":   nil,
		"truncated/len-5.arrow":   valid[:5],
		"truncated/len-16.arrow":  valid[:16],
		"truncated/half.arrow":    valid[:n/2],
		"truncated/minus-1.arrow": valid[:n-1],
		"flipped/first.arrow":     flip(0),
		"flipped/middle.arrow":    flip(n / 2),
		"flipped/checksum.arrow":  flip(n - spill.TrailerSize),
		"badmagic/magic.arrow":    append(slices.Clone(valid[:n-8]), "MRSPILL0"...),
		"badmagic/plain.arrow":    body,
		// A correct trailer over damaged Arrow bytes: Arrow must catch it.
		"resealed/half.arrow":   seal(body[:len(body)/2]),
		"resealed/record.arrow": damagedRecord(t, body),
	}
	return bad
}

// damagedRecord flips the first byte of body, searching from three
// quarters in, that leaves the footer readable but makes a record fail to
// decode. Most flips of compressed bytes decode to wrong values without an
// error, because arrow-go stops reading each zstd frame before its
// checksum; three quarters in, the first flip already fails.
func damagedRecord(t testing.TB, body []byte) []byte {
	t.Helper()
	for i := len(body) * 3 / 4; i < len(body); i++ {
		b := slices.Clone(body)
		b[i] ^= 0xff
		b = seal(b)
		r, err := spill.Open("x", spill.WithFS(bytesFS{data: b}))
		if err != nil {
			continue
		}
		_, err = readRecords(r)
		r.Close()
		if err != nil {
			return b
		}
	}
	t.Fatal("no single-byte flip breaks a record but not the footer")
	return nil
}

// readRecords decodes and releases every record of r, returning the first error.
func readRecords(r *spill.Reader) (int, error) {
	for i := range r.NumRecords() {
		rec, err := r.Record(i)
		if err != nil {
			return i, err
		}
		rec.Release()
	}
	return r.NumRecords(), nil
}

// bytesFS serves every ReadFile from data.
type bytesFS struct {
	spill.OS
	data []byte
}

func (fsys bytesFS) ReadFile(string) ([]byte, error) { return fsys.data, nil }

// corruptAllocator returns the allocator for reading the bad input name: a
// checked one, except where Record fails. There arrow-go v18.8 leaks the
// buffer it was decompressing (and the validity bitmap before it) when it
// recovers from the decoding panic; the Go allocator collects them.
func corruptAllocator(t *testing.T, name string) memory.Allocator {
	t.Helper()
	if name == "resealed/record.arrow" {
		return memory.NewGoAllocator()
	}
	return newCheckedAllocator(t)
}

// TestOpen_Golden reads the files under testdata/: the valid one gives
// testBatches, each damaged one gives ErrCorrupt with the message in its
// .err file. With -update it rewrites them all from a new valid file.
func TestOpen_Golden(t *testing.T) {
	t.Parallel()
	if *update {
		if err := os.MkdirAll(filepath.Dir(validGolden), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, validGolden, memory.NewGoAllocator(), testBatches())
	}
	valid, err := os.ReadFile(validGolden)
	if err != nil {
		t.Fatal(err)
	}
	bad := badInputs(t, valid)
	if *update {
		for name, data := range bad {
			path := filepath.Join("testdata", name)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := readAll(t, path)
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
	want := []string{validGolden}
	for name := range bad {
		want = append(want, filepath.Join("testdata", name))
	}
	slices.Sort(want)
	if !slices.Equal(paths, want) {
		t.Fatalf("testdata holds %q, want %q (run go test -run TestOpen_Golden -update)", paths, want)
	}

	t.Run("Valid", func(t *testing.T) {
		t.Parallel()
		mem := newCheckedAllocator(t)
		got, err := readAll(t, validGolden, spill.WithAllocator(mem))
		if err != nil {
			t.Fatal(err)
		}
		checkRows(t, got, testBatches())
	})
	for name := range bad {
		path := filepath.Join("testdata", name)
		t.Run(strings.TrimSuffix(name, ".arrow"), func(t *testing.T) {
			t.Parallel()
			mem := corruptAllocator(t, name)
			wantErr, err := os.ReadFile(strings.TrimSuffix(path, ".arrow") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			_, err = readAll(t, path, spill.WithAllocator(mem))
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
	path := tempPath(t)
	writeFile(t, path, memory.NewGoAllocator(), testBatches())
	valid, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range badInputs(t, valid) {
		t.Run(strings.TrimSuffix(name, ".arrow"), func(t *testing.T) {
			t.Parallel()
			mem := corruptAllocator(t, name)
			path := filepath.Join(t.TempDir(), "p0-1.arrow")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := readAll(t, path, spill.WithAllocator(mem))
			if !errors.Is(err, spill.ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Errorf("error = %v, want ErrCorrupt naming %s", err, path)
			}
		})
	}
}

// A flipped bit in any byte, trailer included, is caught before Arrow
// parses.
func TestOpen_EveryByteFlipped(t *testing.T) {
	t.Parallel()
	valid, err := os.ReadFile(validGolden)
	if err != nil {
		t.Fatal(err)
	}
	for i := range valid {
		data := slices.Clone(valid)
		data[i] ^= 1 << (i % 8)
		_, err := spill.Open("p0-1.arrow", spill.WithFS(bytesFS{data: data}))
		if !errors.Is(err, spill.ErrCorrupt) {
			t.Fatalf("byte %d flipped: error = %v, want ErrCorrupt", i, err)
		}
	}
}

func TestOpen_NotExist(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	_, err := spill.Open(path)
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, spill.ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Errorf("Open(missing) = %v, want fs.ErrNotExist (not ErrCorrupt) naming %s", err, path)
	}
}

// Records own their memory: they outlive the Reader.
func TestReader_Record(t *testing.T) {
	t.Parallel()
	mem := newCheckedAllocator(t)
	path := tempPath(t)
	want := testBatches()
	f := writeFile(t, path, mem, want)

	r, err := spill.Open(path, spill.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	if r.NumRecords() != len(want) || r.Checksum() != f.Checksum || !r.Schema().Equal(testSchema) {
		t.Errorf("Open() = %d records, checksum %x, schema %v; want %d, %x, %v",
			r.NumRecords(), r.Checksum(), r.Schema(), len(want), f.Checksum, testSchema)
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
	path := tempPath(t)
	rng := rand.New(rand.NewPCG(5, 5))
	writeFile(t, path, memory.NewGoAllocator(), [][]row{randomRows(rng, 1), randomRows(rng, 5000)})

	// The arrow-go leak after a failed decode (see corruptAllocator) rules
	// out a checked allocator here.
	r, err := spill.Open(path, spill.WithMaxRecordSize(16<<10))
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
	if !errors.Is(err, spill.ErrTooLarge) || errors.Is(err, spill.ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Errorf("Record(1) = %v, want ErrTooLarge (not ErrCorrupt) naming %s", err, path)
	}
}

// raceEnabled is set by race_test.go.
var raceEnabled bool

// A record batch whose compressed body exceeds arrow-go's default reader
// limit (256 MiB) must read back: the writer knows no such limit.
func TestReader_Record_HugeBody(t *testing.T) {
	t.Parallel()
	if testing.Short() || raceEnabled {
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

	path := tempPath(t)
	w, err := spill.Create(path, schema)
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

	r, err := spill.Open(path)
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
