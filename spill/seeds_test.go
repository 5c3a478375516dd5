package spill

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/klauspost/compress/zstd"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzDecode from defences (with -run TestDecode_Defences)")

// raceEnabled is set by race_test.go.
var raceEnabled bool

// fuzzBudget is the WithMaxRecordSize of FuzzDecode and of the defence
// tests: small, so that bogus allocations stay cheap.
const fuzzBudget = 1 << 20

// A defence is a seed of testdata/fuzz/FuzzDecode that needs one check of
// checkFooter or Reader.Record: arrow-go alone dies on it (a fatal out of
// memory, a stack overflow, a panic where the caller reads values) or
// allocates far beyond the budget.
type defence struct {
	name  string
	check string // what Decode or Record must say about it
	seed  func(t *testing.T) []byte
}

var defences = []defence{
	{"fields-length", "flatbuffers vector of 1073741823 elements overruns", func(t *testing.T) []byte {
		data := smallFile(t)
		f, base := footerOf(data)
		schema := f.indirect(mustField(f, footerSchema))
		return patchVectorLen(data, base, schema, schemaFields, 1<<30-1)
	}},
	{"children-length", "flatbuffers vector of 1073741823 elements overruns", func(t *testing.T) []byte {
		data := smallFile(t)
		f, base := footerOf(data)
		return patchVectorLen(data, base, schemaField(f, 0), fieldChildren, 1<<30-1)
	}},
	// Field 0's children are the schema's fields, field 0 among them.
	{"children-cycle", "schema nested deeper than 64", func(t *testing.T) []byte {
		data := smallFile(t)
		f, base := footerOf(data)
		schema := f.indirect(mustField(f, footerSchema))
		return patchOffset(data, base, mustField(schemaField(f, 0), fieldChildren), vectorPos(schema, schemaFields))
	}},
	// Twenty nested structs, each of whose two children are the same
	// struct: 2^20 fields for arrow-go to build from a 4 KB file.
	{"children-fanout", "footer (schema, metadata, dictionaries) needs more than 1048576 bytes", func(t *testing.T) []byte {
		typ := arrow.DataType(arrow.PrimitiveTypes.Int64)
		for range 20 {
			typ = arrow.StructOf(arrow.Field{Name: "a", Type: typ}, arrow.Field{Name: "b", Type: arrow.PrimitiveTypes.Int64})
		}
		data := arrowFile(t, arrow.NewSchema([]arrow.Field{{Name: "s", Type: typ}}, nil), nil)
		f, base := footerOf(data)
		for field := schemaField(f, 0); ; {
			start, n := vectorAt(field, fieldChildren)
			if n != 2 {
				return data
			}
			data = patchOffset(data, base, start+4, f.indirect(start).pos) // b := a
			f, _ = footerOf(data)
			field = f.indirect(start)
		}
	}},
	{"metadata-length", "flatbuffers vector of 1073741823 elements overruns", func(t *testing.T) []byte {
		md := arrow.NewMetadata([]string{"mr.spill"}, []string{"1"})
		data := arrowFile(t, arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, &md), nil)
		f, base := footerOf(data)
		schema := f.indirect(mustField(f, footerSchema))
		return patchVectorLen(data, base, schema, schemaMetadata, 1<<30-1)
	}},
	// 400 metadata entries whose values are all one 64 KB string: 25 MB
	// of copies from a 160 KB file (which holds the schema twice).
	{"metadata-shared", "footer (schema, metadata, dictionaries) needs more than 1048576 bytes", func(t *testing.T) []byte {
		var keys, values []string
		for i := range 400 {
			keys = append(keys, strconv.Itoa(i))
			values = append(values, "")
		}
		values[0] = strings.Repeat("x", 64<<10)
		md := arrow.NewMetadata(keys, values)
		data := arrowFile(t, arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, &md), nil)
		f, base := footerOf(data)
		schema := f.indirect(mustField(f, footerSchema))
		start, n := vectorAt(schema, schemaMetadata)
		var big uint32
		for i := range uint32(n) {
			kv := f.indirect(start + 4*i)
			if kv.stringLen(keyValueValue) == len(values[0]) {
				big = mustField(kv, keyValueValue)
				big += f.u32(big)
			}
		}
		for i := range uint32(n) {
			kv := f.indirect(start + 4*i)
			data = patchOffset(data, base, mustField(kv, keyValueValue), big)
			f, _ = footerOf(data)
		}
		return data
	}},
	{"message-metadata-length", "record 0: flatbuffers vector of 1073741823 elements overruns", func(t *testing.T) []byte {
		schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
		b := array.NewInt64Builder(memory.DefaultAllocator)
		b.AppendValues([]int64{1, 2, 3}, nil)
		col := b.NewArray()
		b.Release()
		defer col.Release()
		rec := array.NewRecordBatchWithMetadata(schema, []arrow.Array{col}, 3, arrow.NewMetadata([]string{"k"}, []string{"v"}))
		defer rec.Release()
		data := arrowFile(t, schema, rec, ipc.WithZstd())
		msg, base := message(data, 0)
		return patchVectorLen(data, base, msg, messageMetadata, 1<<30-1)
	}},
	// The first compressed buffer claims 17 TB uncompressed.
	{"decompressed-size-17TB", "record 0 needs more than 1048576 bytes", func(t *testing.T) []byte {
		data := smallFile(t)
		at := bodyBuffer(data, 0, func(length uint64) bool { return length > 0 })
		binary.LittleEndian.PutUint64(data[at:], 17e12)
		return data
	}},
	// The first zstd frame declares a 256 MiB window, which arrow-go's
	// decoder allocates before it decodes the frame's 4 bytes (fuzzing
	// found this with a window of 252 MiB in a 13 KB file).
	{"zstd-window-256MB", "record 0 needs more than 1048576 bytes", func(t *testing.T) []byte {
		data := smallFile(t)
		at := firstFrame(data, footerRecordBatches, 0)
		data[at+5] = (28 - 10) << 3 // Window_Descriptor: 2^28
		return data
	}},
	// The same, with a buffers vector that claims no buffers: arrow-go
	// reads those the schema needs all the same.
	{"zstd-window-buffers-length-0", "record 0 needs more than 1048576 bytes", func(t *testing.T) []byte {
		data := smallFile(t)
		at := firstFrame(data, footerRecordBatches, 0)
		data[at+5] = (28 - 10) << 3
		msg, base := message(data, 0)
		return patchVectorLen(data, base, msg.indirect(mustField(msg, messageHeader)), recordBatchBuffers, 0)
	}},
	// The same, with the first buffer running past the end of the body,
	// into the padding of the allocation that holds it, which arrow-go
	// slices all the same.
	{"zstd-window-buffer-past-body", "record 0 needs more than 1048576 bytes", func(t *testing.T) []byte {
		data := smallFile(t)
		data[firstFrame(data, footerRecordBatches, 0)+5] = (28 - 10) << 3
		f, _ := footerOf(data)
		start, _, _ := f.vector(footerRecordBatches, blockSize)
		bodyLen := int(binary.LittleEndian.Uint64(f.buf[start+16:]))
		msg, base := message(data, 0)
		buffers, _, _ := msg.indirect(mustField(msg, messageHeader)).vector(recordBatchBuffers, bufferStructSize)
		first := data[base+int(buffers):]
		for binary.LittleEndian.Uint64(first[8:]) == 0 {
			first = first[bufferStructSize:] // the validity bitmap, absent
		}
		offset := int(binary.LittleEndian.Uint64(first))
		if roundUpToMultipleOf64(bodyLen) == bodyLen {
			panic("the body has no padding")
		}
		binary.LittleEndian.PutUint64(first[8:], uint64(roundUpToMultipleOf64(bodyLen)-offset))
		return data
	}},
	// A single segment frame: its window is its content size, 500 MB,
	// which the decoder allocates at its first block.
	{"zstd-content-size-500MB", "record 0 needs more than 1048576 bytes", func(t *testing.T) []byte {
		data := smallFile(t)
		at := firstFrame(data, footerRecordBatches, 0)
		singleSegment(data[at:], 500e6)
		return data
	}},
	// Dictionaries decode when the file is opened, under the footer's
	// budget, each with a zstd decoder of its own.
	{"zstd-dictionary-window-256MB", "footer (schema, metadata, dictionaries) needs more than 1048576 bytes", func(t *testing.T) []byte {
		dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}
		schema := arrow.NewSchema([]arrow.Field{{Name: "tag", Type: dt}}, nil)
		b := array.NewDictionaryBuilder(memory.DefaultAllocator, dt).(*array.BinaryDictionaryBuilder)
		for i := range 10 {
			if err := b.AppendString(strconv.Itoa(i % 3)); err != nil {
				t.Fatal(err)
			}
		}
		col := b.NewArray()
		b.Release()
		defer col.Release()
		rec := array.NewRecordBatch(schema, []arrow.Array{col}, 10)
		defer rec.Release()
		data := arrowFile(t, schema, rec, ipc.WithZstd())
		at := firstFrame(data, footerDictionaries, 0)
		data[at+5] = (28 - 10) << 3
		return data
	}},
	// A string's end offset before its start: reading it would panic.
	{"string-offsets", `record 0: column "name": string offsets decrease`, func(t *testing.T) []byte {
		schema := arrow.NewSchema([]arrow.Field{{Name: "name", Type: arrow.BinaryTypes.String}}, nil)
		b := array.NewStringBuilder(memory.DefaultAllocator)
		b.AppendValues([]string{"aaaa", "bbbb", "cccc"}, nil)
		col := b.NewArray()
		b.Release()
		defer col.Release()
		rec := array.NewRecordBatch(schema, []arrow.Array{col}, 3)
		defer rec.Release()
		data := arrowFile(t, schema, rec) // uncompressed, to patch the offsets
		n := 0
		at := bodyBuffer(data, 0, func(length uint64) bool { n++; return n == 2 }) // validity, offsets
		binary.LittleEndian.PutUint32(data[at+4:], 9)                              // offsets 0 9 8 12
		return data
	}},
	// A string's first offset before the start of its data: reading it
	// would panic (fuzzing found -4864).
	{"string-offset-negative", `record 0: column "name": string offset -4864 is negative`, func(t *testing.T) []byte {
		schema := arrow.NewSchema([]arrow.Field{{Name: "name", Type: arrow.BinaryTypes.String}}, nil)
		b := array.NewStringBuilder(memory.DefaultAllocator)
		b.AppendValues([]string{"aaaa", "bbbb", "cccc"}, nil)
		col := b.NewArray()
		b.Release()
		defer col.Release()
		rec := array.NewRecordBatch(schema, []arrow.Array{col}, 3)
		defer rec.Release()
		data := arrowFile(t, schema, rec) // uncompressed, to patch the offsets
		n := 0
		at := bodyBuffer(data, 0, func(length uint64) bool { n++; return n == 2 }) // validity, offsets
		binary.LittleEndian.PutUint32(data[at:], uint32(0xffffed00))               // offsets -4864 4 8 12
		return data
	}},
	// Booleans without their bits: reading one would panic.
	{"bool-values-short", `record 0: column "ok": `, func(t *testing.T) []byte {
		schema := arrow.NewSchema([]arrow.Field{{Name: "ok", Type: arrow.FixedWidthTypes.Boolean}}, nil)
		b := array.NewBooleanBuilder(memory.DefaultAllocator)
		for i := range 100 {
			b.Append(i%3 == 0)
		}
		col := b.NewArray()
		b.Release()
		defer col.Release()
		rec := array.NewRecordBatch(schema, []arrow.Array{col}, 100)
		defer rec.Release()
		data := arrowFile(t, schema, rec) // uncompressed, to patch the buffers
		msg, base := message(data, 0)
		buffers, _, _ := msg.indirect(mustField(msg, messageHeader)).vector(recordBatchBuffers, 16)
		binary.LittleEndian.PutUint64(data[base+int(buffers)+16+8:], 0) // Buffer 1 (values): offset, length
		return data
	}},
}

// TestDecode_Defences checks every defence: Decode reports its check, and
// arrow-go alone, in a child process, dies on its seed or allocates more
// than 16 times the budget. When arrow-go learns to handle a seed, this
// test fails and the check can go. With -update-seeds it rewrites the
// seeds in testdata/fuzz/FuzzDecode.
func TestDecode_Defences(t *testing.T) {
	if path := os.Getenv("SPILL_TEST_RAW_ARROW"); path != "" {
		rawArrow(path)
		return
	}
	t.Parallel()
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	for _, d := range defences {
		t.Run(d.name, func(t *testing.T) {
			seed := d.seed(t)
			path := filepath.Join(dir, d.name)
			if *updateSeeds {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", seed), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			stored, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(stored, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", seed)) {
				t.Fatalf("%s differs from the seed its defence makes (%v): run go test -run TestDecode_Defences -update-seeds", path, err)
			}

			err = decodeAll(seed)
			if err == nil || !strings.Contains(err.Error(), d.check) {
				t.Errorf("Decode and Record = %v, want an error saying %q", err, d.check)
			}

			if runtime.GOOS != "linux" || raceEnabled {
				return // the child limits its address space, which the race detector needs
			}
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(os.Args[0], "-test.run=^TestDecode_Defences$")
			cmd.Env = append(os.Environ(), "SPILL_TEST_RAW_ARROW="+path)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			if err != nil {
				lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
				t.Logf("arrow-go alone: %v: %s", err, lines[0])
				return
			}
			var allocated uint64
			var outcome string
			if _, err := fmt.Sscanf(stdout.String(), "allocated %d %s", &allocated, &outcome); err != nil {
				t.Fatalf("child said %q: %v", stdout.String(), err)
			}
			if allocated <= 16*fuzzBudget {
				t.Errorf("arrow-go alone survives %s (allocating %d bytes, %s): the check %q is no longer needed", d.name, allocated, outcome, d.check)
				return
			}
			t.Logf("arrow-go alone: allocated %d MiB", allocated>>20)
		})
	}
}

// decodeAll decodes data as FuzzDecode does, and returns the first error.
func decodeAll(data []byte) error {
	r, err := Decode("seed", data, WithMaxRecordSize(fuzzBudget), WithAllocator(memory.NewGoAllocator()))
	if err != nil {
		return err
	}
	defer r.Close()
	for i := range r.NumRecords() {
		rec, err := r.Record(i)
		if err != nil {
			return err
		}
		rec.Release()
	}
	return nil
}

// rawArrow reads the seed at path with arrow-go alone, the way the Reader
// would without its checks (recovering panics from arrow-go's API, as
// Reader.decode does, but not from reading values, as the engine does
// not), with its address space limited to 4 GiB and its stack to 64 MiB.
// It prints the bytes it allocated, unless it dies first.
func rawArrow(path string) {
	data, err := os.ReadFile(path)
	if err == nil {
		var seed []byte
		seed, err = parseSeed(data)
		data = seed
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := limitAddressSpace(4 << 30); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	debug.SetMaxStack(64 << 20)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	outcome := "no-error"
	var recs []arrow.RecordBatch
	func() {
		defer func() {
			if p := recover(); p != nil {
				outcome = "recovered-panic"
			}
		}()
		fr, err := ipc.NewFileReader(bytes.NewReader(data), ipc.WithAllocator(memory.NewGoAllocator()),
			ipc.WithBodySizeLimit(int64(len(data))), ipc.WithMetadataSizeLimit(int64(len(data))))
		if err != nil {
			outcome = "error"
			return
		}
		for i := range fr.NumRecords() {
			rec, err := fr.RecordBatchAt(i)
			if err != nil {
				outcome = "error"
				return
			}
			recs = append(recs, rec)
		}
	}()
	for _, rec := range recs {
		for _, col := range rec.Columns() {
			for i := range col.Len() {
				if !col.IsNull(i) {
					_ = col.ValueStr(i)
				}
			}
		}
	}
	runtime.ReadMemStats(&after)
	fmt.Printf("allocated %d %s\n", after.TotalAlloc-before.TotalAlloc, outcome)
}

// parseSeed returns the []byte of a fuzz corpus file as TestDecode_Defences
// writes it.
func parseSeed(file []byte) ([]byte, error) {
	lit, ok1 := strings.CutPrefix(string(file), "go test fuzz v1\n[]byte(")
	lit, ok2 := strings.CutSuffix(lit, ")\n")
	if !ok1 || !ok2 {
		return nil, errors.New("not a fuzz corpus file of one []byte")
	}
	s, err := strconv.Unquote(lit)
	return []byte(s), err
}

// Building and patching seeds. The helpers panic on files they do not
// expect: they run on files arrow-go just wrote.

// smallFile returns a spill file of 10 rows in two columns, small enough
// to keep the seeds made from it short.
func smallFile(t *testing.T) []byte {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "name", Type: arrow.BinaryTypes.String},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := range 10 {
		b.Field(0).(*array.Int64Builder).AppendValues([]int64{int64(i)}, []bool{i%4 != 0})
		b.Field(1).(*array.StringBuilder).Append(strconv.Itoa(i * i))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return arrowFile(t, schema, rec, ipc.WithZstd())
}

// arrowFile writes an Arrow IPC file of schema with rec, if not nil.
func arrowFile(t *testing.T, schema *arrow.Schema, rec arrow.RecordBatch, opts ...ipc.Option) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw, err := ipc.NewFileWriter(&buf, append(opts, ipc.WithSchema(schema))...)
	if err == nil && rec != nil {
		err = fw.Write(rec)
	}
	if err == nil {
		err = fw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// footerOf returns the footer table of data, and where it starts in data.
func footerOf(data []byte) (fbTable, int) {
	end := len(data) - 10
	size := int(binary.LittleEndian.Uint32(data[end:]))
	return fbRoot(data[end-size : end]), end - size
}

func mustField(t fbTable, slot int) uint32 {
	pos, ok := t.field(slot)
	if !ok {
		panic(fmt.Sprintf("no field in slot %d", slot))
	}
	return pos
}

// vectorAt returns the start and length of the vector in slot of t.
func vectorAt(t fbTable, slot int) (uint32, int) {
	start, n, err := t.vector(slot, 4)
	if err != nil {
		panic(err)
	}
	return start, n
}

// vectorPos returns the position of the vector (its length) in slot of t.
func vectorPos(t fbTable, slot int) uint32 {
	start, _ := vectorAt(t, slot)
	return start - 4
}

func schemaField(f fbTable, i uint32) fbTable {
	schema := f.indirect(mustField(f, footerSchema))
	start, _ := vectorAt(schema, schemaFields)
	return f.indirect(start + 4*i)
}

// patchVectorLen sets the length of the vector in slot of t, a table of a
// flatbuffer at offset base in data.
func patchVectorLen(data []byte, base int, t fbTable, slot int, n uint32) []byte {
	out := slices.Clone(data)
	binary.LittleEndian.PutUint32(out[base+int(vectorPos(t, slot)):], n)
	return out
}

// patchOffset makes the uoffset at pos, in a flatbuffer at offset base in
// data, point to target.
func patchOffset(data []byte, base int, pos, target uint32) []byte {
	out := slices.Clone(data)
	binary.LittleEndian.PutUint32(out[base+int(pos):], target-pos)
	return out
}

// message returns the flatbuffer of record batch i's message, and where it
// starts in data.
func message(data []byte, i uint32) (fbTable, int) {
	return messageIn(data, footerRecordBatches, i)
}

// messageIn returns the flatbuffer of the message of block i in slot of
// the footer (footerRecordBatches or footerDictionaries), and where it
// starts in data.
func messageIn(data []byte, slot int, i uint32) (fbTable, int) {
	f, _ := footerOf(data)
	start, _, err := f.vector(slot, blockSize)
	if err != nil {
		panic(err)
	}
	block := f.buf[start+i*blockSize:]
	offset := int(binary.LittleEndian.Uint64(block))
	metaLen := int(binary.LittleEndian.Uint32(block[8:]))
	meta := data[offset+8 : offset+metaLen] // after the continuation marker and length
	return fbRoot(meta), offset + 8
}

// bodyBuffer returns the offset in data of the first buffer of record
// batch i for which pick, given the buffer's length, says yes.
func bodyBuffer(data []byte, i uint32, pick func(length uint64) bool) int {
	return batchBuffer(data, footerRecordBatches, i, pick)
}

// batchBuffer returns the offset in data of the first buffer of the batch
// of block i in slot of the footer for which pick, given the buffer's
// length, says yes.
func batchBuffer(data []byte, slot int, i uint32, pick func(length uint64) bool) int {
	f, _ := footerOf(data)
	start, _, _ := f.vector(slot, blockSize)
	block := f.buf[start+i*blockSize:]
	body := int(binary.LittleEndian.Uint64(block)) + int(binary.LittleEndian.Uint32(block[8:]))
	msg, _ := messageIn(data, slot, i)
	batch, ok := batchOf(msg, slot == footerDictionaries)
	if !ok {
		panic("no batch")
	}
	buffers, n, _ := batch.vector(recordBatchBuffers, bufferStructSize)
	for j := range uint32(n) {
		buf := msg.buf[buffers+bufferStructSize*j:]
		if pick(binary.LittleEndian.Uint64(buf[8:])) {
			return body + int(binary.LittleEndian.Uint64(buf))
		}
	}
	panic("no such buffer")
}

// firstFrame returns the offset in data of the first zstd frame of the
// batch of block i in slot of the footer: of its first compressed buffer
// that has at least 16 bytes of frames, and a window descriptor.
func firstFrame(data []byte, slot int, i uint32) int {
	at := batchBuffer(data, slot, i, func(length uint64) bool { return length >= 8+16 })
	if int64(binary.LittleEndian.Uint64(data[at:])) == -1 {
		panic("buffer stored uncompressed")
	}
	at += 8
	var h zstd.Header
	if h.Decode(data[at:]) != nil || h.SingleSegment {
		panic("no frame with a window descriptor")
	}
	return at
}

// singleSegment rewrites the zstd frame at the start of b (16 bytes of
// it) as a single segment frame of size bytes with one empty last block.
func singleSegment(b []byte, size uint64) {
	b[4] = 3<<6 | 1<<5 // Frame_Header_Descriptor: an 8-byte content size, single segment
	binary.LittleEndian.PutUint64(b[5:], size)
	copy(b[13:], []byte{1, 0, 0}) // Block_Header: last, raw, 0 bytes
}

// An empty string array may come with no offsets at all (the Arrow format
// allows it, and writers other than arrow-go do it): that is no damage.
func TestDecode_EmptyStringsWithoutOffsets(t *testing.T) {
	t.Parallel()
	schema := arrow.NewSchema([]arrow.Field{{Name: "name", Type: arrow.BinaryTypes.String}}, nil)
	b := array.NewStringBuilder(memory.DefaultAllocator)
	col := b.NewArray()
	b.Release()
	defer col.Release()
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, 0)
	defer rec.Release()
	data := arrowFile(t, schema, rec)
	msg, base := message(data, 0)
	buffers, n, _ := msg.indirect(mustField(msg, messageHeader)).vector(recordBatchBuffers, 16)
	for i := range uint32(n) {
		binary.LittleEndian.PutUint64(data[base+int(buffers+16*i)+8:], 0) // every buffer empty
	}
	if err := decodeAll(data); err != nil {
		t.Errorf("Decode(empty strings, no offsets) = %v", err)
	}
}

// A zstd window of up to 8 MiB is decoded outside the budget, since every
// buffer over 128 KiB that Create writes declares one, and a 1 MiB budget
// (the engine's smallest --memory) must read such files. A larger window
// counts against the budget.
func TestDecode_ZstdWindow(t *testing.T) {
	t.Parallel()
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewInt64Builder(memory.DefaultAllocator)
	for i := range 40000 {
		b.Append(int64(uint64(i) * 0x9E3779B97F4A7C15)) // 320 KB that zstd cannot shrink much
	}
	col := b.NewArray()
	b.Release()
	defer col.Release()
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, int64(col.Len()))
	defer rec.Release()
	written := arrowFile(t, schema, rec, ipc.WithZstd())
	var h zstd.Header
	if err := h.Decode(written[firstFrame(written, footerRecordBatches, 0):]); err != nil || h.WindowSize != freeWindow {
		t.Fatalf("the frame of a 320 KB buffer declares a window of %d bytes (%v), want %d", h.WindowSize, err, freeWindow)
	}
	window16MiB := func(t *testing.T) []byte {
		data := smallFile(t)
		data[firstFrame(data, footerRecordBatches, 0)+5] = (24 - 10) << 3
		return data
	}(t)

	for _, tc := range []struct {
		name   string
		data   []byte
		budget int64
		ok     bool
	}{
		{"Window8MiB/Budget1MiB", written, 1 << 20, true},
		{"Window16MiB/Budget32MiB", window16MiB, 32 << 20, true},
		{"Window16MiB/Budget16MiB", window16MiB, 16 << 20, false}, // and the buffers
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := Decode("f.arrow", tc.data, WithMaxRecordSize(tc.budget), WithAllocator(memory.NewGoAllocator()))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			rec, err := r.Record(0)
			if err == nil {
				rec.Release()
			}
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, ErrTooLarge) {
				t.Errorf("Record(0) = %v, want ok %v or else ErrTooLarge", err, tc.ok)
			}
		})
	}
}

// A column of a type that stores nothing (here an empty struct) can claim
// any length for free: every column must have its record's rows, and a
// record at most 8 rows per byte of its budget, else reading every value
// would take time without bound.
func TestDecode_Rows(t *testing.T) {
	t.Parallel()
	schema := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.StructOf()}}, nil)
	b := array.NewStructBuilder(memory.DefaultAllocator, arrow.StructOf())
	b.AppendValues([]bool{true, true, true})
	col := b.NewArray()
	b.Release()
	defer col.Release()
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, 3)
	defer rec.Release()
	written := arrowFile(t, schema, rec)
	// rows sets the record's length and the column's (its field node's).
	rows := func(record, column int64) []byte {
		data := slices.Clone(written)
		msg, base := message(data, 0)
		header := msg.indirect(mustField(msg, messageHeader))
		nodes, _, _ := header.vector(recordBatchNodes, 16)
		binary.LittleEndian.PutUint64(data[base+int(mustField(header, recordBatchLength)):], uint64(record))
		binary.LittleEndian.PutUint64(data[base+int(nodes):], uint64(column))
		return data
	}
	const many = 8*fuzzBudget + 1
	for _, tc := range []struct {
		name           string
		record, column int64
		want           error
	}{
		{"AsWritten", 3, 3, nil},
		{"ColumnLonger", 3, 6e13, ErrCorrupt}, // fuzzing found 6e13 rows in a record of 0
		{"RecordLonger", 4, 3, ErrCorrupt},
		{"TooManyRows", many, many, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := decodeAll(rows(tc.record, tc.column))
			if tc.want == nil && err != nil || !errors.Is(err, tc.want) {
				t.Errorf("Decode and Record = %v, want %v", err, tc.want)
			}
		})
	}
}
