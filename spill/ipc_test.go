package spill_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mrengine/mr/internal/arrowjs"
	"github.com/mrengine/mr/shuffle"
	"github.com/mrengine/mr/spill"
)

// allTypes is a schema with a column of every type that shuffle records
// hold, which are the types spill files store.
var allTypes = shuffle.Schema([]shuffle.Field{
	{Name: "i", Type: shuffle.TypeInt64},
	{Name: "f", Type: shuffle.TypeFloat64},
	{Name: "s", Type: shuffle.TypeString},
	{Name: "b", Type: shuffle.TypeBool},
	{Name: "d", Type: shuffle.TypeDate},
	{Name: "t", Type: shuffle.TypeTimestamp},
	{Name: "x", Type: shuffle.TypeBytes},
})

// allTypesRecord returns n random rows of allTypes, each value null with
// probability nulls. Strings are often empty; bytes are random, so that
// compression cannot shrink their buffer, which is then stored as it is.
func allTypesRecord(t testing.TB, mem memory.Allocator, rng *rand.Rand, n int, nulls float64) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(mem, allTypes)
	defer b.Release()
	words := []string{"", "", "a", "ünïcødé", "x\x00y", strings.Repeat("long ", 20)}
	for range n {
		for i, col := range b.Fields() {
			if rng.Float64() < nulls {
				col.AppendNull()
				continue
			}
			switch i {
			case 0:
				col.(*array.Int64Builder).Append(rng.Int64N(1000) - 500)
			case 1:
				col.(*array.Float64Builder).Append([]float64{rng.NormFloat64(), 0, math.Inf(-1), math.MaxFloat64}[rng.IntN(4)])
			case 2:
				col.(*array.StringBuilder).Append(words[rng.IntN(len(words))])
			case 3:
				col.(*array.BooleanBuilder).Append(rng.IntN(2) == 0)
			case 4:
				col.(*array.Date32Builder).Append(arrow.Date32(rng.Int32N(40000) - 20000))
			case 5:
				col.(*array.TimestampBuilder).Append(arrow.Timestamp(rng.Int64()))
			case 6:
				v := make([]byte, rng.IntN(40))
				for j := range v {
					v[j] = byte(rng.Uint32())
				}
				col.(*array.BinaryBuilder).Append(v)
			}
		}
	}
	return b.NewRecordBatch()
}

// allTypesBatches returns records that cover what the IPC writer must get
// right: nulls (none, some, all), empty strings, empty records, slices
// whose offsets are not on a byte of their bitmaps, large and tiny
// buffers.
func allTypesBatches(t testing.TB, mem memory.Allocator) []arrow.RecordBatch {
	t.Helper()
	rng := rand.New(rand.NewPCG(21, 21))
	var recs []arrow.RecordBatch
	add := func(rec arrow.RecordBatch) { recs = append(recs, rec) }
	add(allTypesRecord(t, mem, rng, 1000, 0.1))
	add(allTypesRecord(t, mem, rng, 0, 0))
	add(allTypesRecord(t, mem, rng, 300, 0))
	add(allTypesRecord(t, mem, rng, 17, 1))
	add(allTypesRecord(t, mem, rng, 1, 0.5))
	add(allTypesRecord(t, mem, rng, 20000, 0.02))
	whole := allTypesRecord(t, mem, rng, 500, 0.3)
	for _, r := range [][2]int64{{3, 250}, {8, 100}, {499, 500}, {77, 77}} {
		add(whole.NewSlice(r[0], r[1]))
	}
	whole.Release()
	t.Cleanup(func() {
		for _, rec := range recs {
			rec.Release()
		}
	})
	return recs
}

// commitRecords writes recs to a spill file under key and returns its File.
func commitRecords(t *testing.T, tb *testBundle, key string, mem memory.Allocator, recs []arrow.RecordBatch) spill.File {
	t.Helper()
	w, err := spill.Create(context.Background(), tb.bucket, key, allTypes, spill.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, rec := range recs {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	f, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Every type spill stores reads back through arrow-go's own IPC file
// reader, and through Open with all its defences, to equal values.
func TestWriter_Commit_AllTypes(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	mem := newCheckedAllocator(t)
	recs := allTypesBatches(t, mem)
	f := commitRecords(t, tb, testKey, mem, recs)

	data, err := tb.bucket.ReadAll(context.Background(), testKey)
	if err != nil {
		t.Fatal(err)
	}
	fr, err := ipc.NewFileReader(bytes.NewReader(data), ipc.WithAllocator(mem))
	if err != nil {
		t.Fatalf("the file is not an Arrow file: %v", err)
	}
	defer fr.Close()
	if !fr.Schema().Equal(allTypes) || fr.NumRecords() != len(recs) {
		t.Fatalf("arrow-go reads schema %v with %d records, want %v with %d", fr.Schema(), fr.NumRecords(), allTypes, len(recs))
	}
	for i, want := range recs {
		got, err := fr.RecordBatchAt(i)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !array.RecordEqual(got, want) {
			t.Errorf("record %d: arrow-go reads %v, want %v", i, got, want)
		}
		got.Release()
	}

	r, err := spill.Open(context.Background(), tb.bucket, f, spill.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumRecords() != len(recs) || r.Compression() != "zstd" {
		t.Fatalf("Open() = %d records compressed with %s, want %d with zstd", r.NumRecords(), r.Compression(), len(recs))
	}
	for i, want := range recs {
		got, err := r.Record(i)
		if err != nil {
			t.Fatalf("Record(%d) = %v", i, err)
		}
		if !array.RecordEqual(got, want) {
			t.Errorf("Record(%d) = %v, want %v", i, got, want)
		}
		got.Release()
	}
}

// Arrow JS reads the same file to the same values.
func TestWriter_Commit_AllTypes_ArrowJS(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	mem := newCheckedAllocator(t)
	recs := allTypesBatches(t, mem)
	commitRecords(t, tb, testKey, mem, recs)

	table := arrowjs.Read(t, filepath.Join(tb.dir, filepath.FromSlash(testKey)))[0]
	wantFields := []arrowjs.Field{
		{Name: "i", Type: "Int64", Nullable: true},
		{Name: "f", Type: "Float64", Nullable: true},
		{Name: "s", Type: "Utf8", Nullable: true},
		{Name: "b", Type: "Bool", Nullable: true},
		{Name: "d", Type: "Date32<DAY>", Nullable: true},
		{Name: "t", Type: "Timestamp<MICROSECOND, UTC>", Nullable: true},
		{Name: "x", Type: "Binary", Nullable: true},
	}
	if !reflect.DeepEqual(table.Fields, wantFields) || table.Batches != len(recs) {
		t.Errorf("Arrow JS reads fields %v in %d batches, want %v in %d", table.Fields, table.Batches, wantFields, len(recs))
	}
	var want [][]any
	for _, rec := range recs {
		want = append(want, jsRows(rec)...)
	}
	if len(table.Rows) != len(want) {
		t.Fatalf("Arrow JS reads %d rows, want %d", len(table.Rows), len(want))
	}
	for i := range want {
		if got := floatBits(table.Rows[i]); !reflect.DeepEqual(got, floatBits(want[i])) {
			t.Fatalf("row %d: Arrow JS reads %v, want %v", i, got, want[i])
		}
	}
}

// jsRows returns the rows of a record of allTypes as arrowjs.Table.Rows
// holds them.
func jsRows(rec arrow.RecordBatch) [][]any {
	rows := make([][]any, rec.NumRows())
	for i := range rows {
		row := make([]any, rec.NumCols())
		for j, col := range rec.Columns() {
			if col.IsNull(i) {
				continue
			}
			switch col := col.(type) {
			case *array.Int64:
				row[j] = col.Value(i)
			case *array.Float64:
				row[j] = col.Value(i)
			case *array.String:
				row[j] = col.Value(i)
			case *array.Boolean:
				row[j] = col.Value(i)
			case *array.Date32:
				row[j] = int64(col.Value(i))
			case *array.Timestamp:
				row[j] = int64(col.Value(i))
			case *array.Binary:
				row[j] = hex.EncodeToString(col.Value(i))
			}
		}
		rows[i] = row
	}
	return rows
}

// Create refuses a type that spill files do not store, naming the field,
// and leaves nothing in the bucket.
func TestCreate_UnsupportedType(t *testing.T) {
	t.Parallel()
	for _, dt := range []arrow.DataType{
		arrow.PrimitiveTypes.Int32,
		arrow.FixedWidthTypes.Date64,
		&arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"},
		&arrow.TimestampType{Unit: arrow.Microsecond},
		arrow.BinaryTypes.LargeString,
		arrow.ListOf(arrow.PrimitiveTypes.Int64),
	} {
		t.Run(dt.String(), func(t *testing.T) {
			t.Parallel()
			tb := setup(t)
			schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "odd", Type: dt}}, nil)
			w, err := spill.Create(context.Background(), tb.bucket, testKey, schema)
			if err == nil {
				w.Abort()
				t.Fatalf("Create(%s) succeeded", dt)
			}
			if !strings.Contains(err.Error(), `"odd"`) || !strings.Contains(err.Error(), testKey) {
				t.Errorf("Create(%s) = %v, want an error naming the field and the key", dt, err)
			}
			if names := keys(t, tb.bucket); len(names) != 0 {
				t.Errorf("after a failed Create, bucket holds %q", names)
			}
		})
	}
}
