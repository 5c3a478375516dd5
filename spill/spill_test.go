package spill_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mrengine/mr/internal/blobs"
	"github.com/mrengine/mr/spill"
)

// TestMain fails the run if goroutines outlive the tests: arrow-go starts
// zstd goroutines that it must stop.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		leaked := leakedGoroutines()
		for deadline := time.Now().Add(time.Second); leaked != "" && time.Now().Before(deadline); leaked = leakedGoroutines() {
			time.Sleep(10 * time.Millisecond)
		}
		if leaked != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines returns the stacks of the goroutines other than the
// caller and the os/signal loop that fuzzing starts.
func leakedGoroutines() string {
	buf := make([]byte, 1<<20)
	stacks := strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n")
	var leaked []string
	for _, stack := range stacks[1:] { // stacks[0] is the caller
		if !strings.Contains(stack, "os/signal.signal_recv") {
			leaked = append(leaked, stack)
		}
	}
	return strings.Join(leaked, "\n\n")
}

// testSchema has one nullable column of each type the engine spills.
var testSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "ok", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "at", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
}, nil)

// row is one row of testSchema in plain Go, the truth records are checked
// against. A nil field is a null.
type row struct {
	ID    *int64
	Score *float64
	Name  *string
	OK    *bool
	Day   *arrow.Date32
	At    *arrow.Timestamp
}

// randomRows returns n rows with about one null in eight per column.
func randomRows(rng *rand.Rand, n int) []row {
	names := []string{"", "a", "ünïcødé", "daily_rollup", "x\x00y"}
	rows := make([]row, n)
	for i := range rows {
		r := &rows[i]
		if rng.IntN(8) != 0 {
			r.ID = ptr(rng.Int64() - rng.Int64())
		}
		if rng.IntN(8) != 0 {
			r.Score = ptr(rng.NormFloat64() * 1e6)
			if rng.IntN(8) == 0 {
				r.Score = ptr(specialFloats[rng.IntN(len(specialFloats))])
			}
		}
		if rng.IntN(8) != 0 {
			r.Name = ptr(names[rng.IntN(len(names))] + fmt.Sprint(rng.IntN(1000)))
		}
		if rng.IntN(8) != 0 {
			r.OK = ptr(rng.IntN(2) == 0)
		}
		if rng.IntN(8) != 0 {
			r.Day = ptr(arrow.Date32(rng.Int32N(40000) - 20000))
		}
		if rng.IntN(8) != 0 {
			r.At = ptr(arrow.Timestamp(rng.Int64N(4e15)))
		}
	}
	return rows
}

// specialFloats are the float64 values a text format would get wrong.
var specialFloats = []float64{math.Copysign(0, -1), 0, math.NaN(), math.Inf(1), math.Inf(-1), math.SmallestNonzeroFloat64, math.MaxFloat64, -math.MaxFloat64}

func ptr[T any](v T) *T { return &v }

// comparable returns r with its float as bits, so that reflect.DeepEqual
// tells -0 from 0 and finds NaN equal to itself.
func (r row) comparable() any {
	type bitsRow struct {
		row
		Score *uint64
	}
	b := bitsRow{row: r}
	b.row.Score = nil
	if r.Score != nil {
		b.Score = ptr(math.Float64bits(*r.Score))
	}
	return b
}

// buildRecord converts rows to a record of testSchema. The caller releases it.
func buildRecord(t testing.TB, mem memory.Allocator, rows []row) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(mem, testSchema)
	defer b.Release()
	for _, r := range rows {
		appendOrNull(b.Field(0).(*array.Int64Builder).Append, b.Field(0), r.ID)
		appendOrNull(b.Field(1).(*array.Float64Builder).Append, b.Field(1), r.Score)
		appendOrNull(b.Field(2).(*array.StringBuilder).Append, b.Field(2), r.Name)
		appendOrNull(b.Field(3).(*array.BooleanBuilder).Append, b.Field(3), r.OK)
		appendOrNull(b.Field(4).(*array.Date32Builder).Append, b.Field(4), r.Day)
		appendOrNull(b.Field(5).(*array.TimestampBuilder).Append, b.Field(5), r.At)
	}
	return b.NewRecordBatch()
}

func appendOrNull[T any](appendFunc func(T), b array.Builder, v *T) {
	if v == nil {
		b.AppendNull()
		return
	}
	appendFunc(*v)
}

// recordRows converts a record of testSchema back to rows.
func recordRows(t testing.TB, rec arrow.RecordBatch) []row {
	t.Helper()
	if !rec.Schema().Equal(testSchema) {
		t.Fatalf("schema = %v, want %v", rec.Schema(), testSchema)
	}
	ids := rec.Column(0).(*array.Int64)
	scores := rec.Column(1).(*array.Float64)
	names := rec.Column(2).(*array.String)
	oks := rec.Column(3).(*array.Boolean)
	days := rec.Column(4).(*array.Date32)
	ats := rec.Column(5).(*array.Timestamp)
	rows := make([]row, rec.NumRows())
	for i := range rows {
		rows[i] = row{
			ID:    valueOrNil(ids, ids.Value, i),
			Score: valueOrNil(scores, scores.Value, i),
			Name:  valueOrNil(names, names.Value, i),
			OK:    valueOrNil(oks, oks.Value, i),
			Day:   valueOrNil(days, days.Value, i),
			At:    valueOrNil(ats, ats.Value, i),
		}
	}
	return rows
}

func valueOrNil[T any](a arrow.Array, value func(int) T, i int) *T {
	if a.IsNull(i) {
		return nil
	}
	return ptr(value(i))
}

// testKey is a key shaped like the engine's shuffle files.
const testKey = "run-1/shuffle/b0003/p0001-000002-a1b2c3.arrow"

type testBundle struct {
	bucket *blobs.Bucket
	dir    string // the bucket's directory
}

// setup opens a file bucket in a fresh directory.
func setup(t *testing.T) *testBundle {
	t.Helper()
	dir := t.TempDir()
	b, err := blobs.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return &testBundle{bucket: b, dir: dir}
}

// writeFile commits a spill file under key with one record per batch.
func writeFile(t testing.TB, b *blobs.Bucket, key string, mem memory.Allocator, batches [][]row, opts ...spill.Option) spill.File {
	t.Helper()
	w, err := spill.Create(context.Background(), b, key, testSchema, append([]spill.Option{spill.WithAllocator(mem)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, rows := range batches {
		rec := buildRecord(t, mem, rows)
		err := w.Write(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	f, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// readAll opens f and decodes every record. It returns the rows of each
// record and the first error.
func readAll(t testing.TB, b *blobs.Bucket, f spill.File, opts ...spill.Option) ([][]row, error) {
	t.Helper()
	r, err := spill.Open(context.Background(), b, f, opts...)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return readRows(t, r)
}

// readRows decodes every record of r, returning the rows of each record and
// the first error.
func readRows(t testing.TB, r *spill.Reader) ([][]row, error) {
	t.Helper()
	var batches [][]row
	for i := range r.NumRecords() {
		rec, err := r.Record(i)
		if err != nil {
			return batches, err
		}
		batches = append(batches, recordRows(t, rec))
		rec.Release()
	}
	return batches, nil
}

// keys lists the bucket.
func keys(t testing.TB, b *blobs.Bucket) []string {
	t.Helper()
	keys, err := b.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func checkRows(t testing.TB, got, want [][]row) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("record %d: got %d rows, want %d", i, len(got[i]), len(want[i]))
		}
		for j := range want[i] {
			if !reflect.DeepEqual(got[i][j].comparable(), want[i][j].comparable()) {
				t.Fatalf("record %d row %d:\n got %s\nwant %s", i, j, formatRow(got[i][j]), formatRow(want[i][j]))
			}
		}
	}
}

func formatRow(r row) string {
	f := func(p any) string {
		v := reflect.ValueOf(p)
		if v.IsNil() {
			return "null"
		}
		return fmt.Sprint(v.Elem())
	}
	return fmt.Sprintf("{%s %s %q %s %s %s}", f(r.ID), f(r.Score), f(r.Name), f(r.OK), f(r.Day), f(r.At))
}

// testBatches is the content of the golden valid file and the fuzz seeds:
// fixed by seed, since PCG's output is stable across Go releases.
func testBatches() [][]row {
	rng := rand.New(rand.NewPCG(1, 2))
	return [][]row{randomRows(rng, 100), randomRows(rng, 1), randomRows(rng, 0), randomRows(rng, 257)}
}

func newCheckedAllocator(t *testing.T) *memory.CheckedAllocator {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}
