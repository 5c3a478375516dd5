package arrowjs_test

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mrengine/mr/internal/arrowjs"
)

// writeFile writes one record of two rows with arrow-go, compressed as opts
// say, and returns its path.
func writeFile(t *testing.T, opts ...ipc.Option) string {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "i", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64},
		{Name: "s", Type: arrow.BinaryTypes.String},
		{Name: "t", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).AppendValues([]int64{math.MaxInt64, 0}, []bool{true, false})
	b.Field(1).(*array.Float64Builder).AppendValues([]float64{math.Copysign(0, -1), math.NaN()}, nil)
	b.Field(2).(*array.StringBuilder).AppendValues([]string{"", "ünï"}, nil)
	b.Field(3).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{1700000000123456, -1}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()

	path := filepath.Join(t.TempDir(), "f.arrow")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := ipc.NewFileWriter(f, append(opts, ipc.WithSchema(schema))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRead(t *testing.T) {
	t.Parallel()
	plain, zstd := writeFile(t), writeFile(t, ipc.WithZstd())
	wantFields := []arrowjs.Field{
		{Name: "i", Type: "Int64", Nullable: true},
		{Name: "f", Type: "Float64"},
		{Name: "s", Type: "Utf8"},
		{Name: "t", Type: "Timestamp<MICROSECOND, UTC>"},
	}
	for _, table := range arrowjs.Read(t, plain, zstd) {
		if !reflect.DeepEqual(table.Fields, wantFields) || table.Batches != 1 || len(table.Rows) != 2 {
			t.Fatalf("%s: fields %v, %d batches, %d rows; want %v, 1, 2", table.Path, table.Fields, table.Batches, len(table.Rows), wantFields)
		}
		r0, r1 := table.Rows[0], table.Rows[1]
		if r0[0] != int64(math.MaxInt64) || r1[0] != nil || r0[2] != "" || r1[2] != "ünï" ||
			r0[3] != int64(1700000000123456) || r1[3] != int64(-1) {
			t.Errorf("%s: rows %v", table.Path, table.Rows)
		}
		if f, _ := r0[1].(float64); f != 0 || !math.Signbit(f) {
			t.Errorf("%s: -0 read as %v", table.Path, r0[1])
		}
		if f, _ := r1[1].(float64); !math.IsNaN(f) {
			t.Errorf("%s: NaN read as %v", table.Path, r1[1])
		}
	}
}

func TestReadFile_NotArrow(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "x.arrow")
	if err := os.WriteFile(path, []byte("not an Arrow file at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := arrowjs.ReadFile(t, path); err == nil || !strings.Contains(err.Error(), "Error") {
		t.Errorf("ReadFile(garbage) = %v, want Arrow JS's error", err)
	}
}
