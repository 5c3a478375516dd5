package spill_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/mrengine/mr/internal/arrowjs"
)

// TestWriter_Commit_ArrowJS proves that spill files are standard Arrow: Apache
// Arrow JS, an implementation independent of arrow-go, reads every file
// Create writes, with every type the engine spills (and nulls, -0, NaN,
// infinities), to identical values.
func TestWriter_Commit_ArrowJS(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	mem := newCheckedAllocator(t)
	rng := rand.New(rand.NewPCG(11, 11))
	var special []row
	for _, f := range specialFloats {
		special = append(special, row{
			ID: ptr(int64(math.MinInt64)), Score: ptr(f), Name: ptr("ünï\x00cødé"), OK: ptr(true),
			Day: ptr(arrow.Date32(math.MinInt32)), At: ptr(arrow.Timestamp(math.MaxInt64)),
		})
	}
	files := map[string][][]row{
		"run-1/shuffle/b0000/p0000-000001-a.arrow": testBatches(),
		"run-1/shuffle/b0001/p0000-000001-a.arrow": {special, {{}, {}, {}}, randomRows(rng, 3000)},
		"run-1/shuffle/b0002/p0000-000001-a.arrow": nil,
	}
	var keys, paths []string
	for key, batches := range files {
		writeFile(t, tb.bucket, key, mem, batches)
		keys = append(keys, key)
		paths = append(paths, filepath.Join(tb.dir, filepath.FromSlash(key)))
	}

	wantFields := []arrowjs.Field{
		{Name: "id", Type: "Int64", Nullable: true},
		{Name: "score", Type: "Float64", Nullable: true},
		{Name: "name", Type: "Utf8", Nullable: true},
		{Name: "ok", Type: "Bool", Nullable: true},
		{Name: "day", Type: "Date32<DAY>", Nullable: true},
		{Name: "at", Type: "Timestamp<MICROSECOND, UTC>", Nullable: true},
	}
	tables := arrowjs.Read(t, paths...)
	for i, table := range tables {
		batches := files[keys[i]]
		wantBatches := len(batches)
		if wantBatches == 0 {
			wantBatches = 1 // Arrow JS makes an empty one for a file without
		}
		if !reflect.DeepEqual(table.Fields, wantFields) || table.Batches != wantBatches {
			t.Errorf("%s: Arrow JS reads fields %v in %d batches, want %v in %d", table.Path, table.Fields, table.Batches, wantFields, wantBatches)
		}
		var rows []row
		for _, b := range batches {
			rows = append(rows, b...)
		}
		if len(table.Rows) != len(rows) {
			t.Fatalf("%s: Arrow JS reads %d rows, want %d", table.Path, len(table.Rows), len(rows))
		}
		for j, r := range rows {
			if got, want := floatBits(table.Rows[j]), floatBits(jsRow(r)); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s row %d: Arrow JS reads %v, want %v", table.Path, j, got, want)
			}
		}
	}
}

// floatBits returns row with its floats as bits, so that reflect.DeepEqual
// tells -0 from 0 and finds NaN equal to itself.
func floatBits(row []any) []any {
	out := make([]any, len(row))
	for i, v := range row {
		if f, ok := v.(float64); ok {
			v = math.Float64bits(f)
		}
		out[i] = v
	}
	return out
}

// jsRow returns r as arrowjs.Table.Rows holds it.
func jsRow(r row) []any {
	v := func(p any, conv func() any) any {
		if reflect.ValueOf(p).IsNil() {
			return nil
		}
		return conv()
	}
	return []any{
		v(r.ID, func() any { return *r.ID }),
		v(r.Score, func() any { return *r.Score }),
		v(r.Name, func() any { return *r.Name }),
		v(r.OK, func() any { return *r.OK }),
		v(r.Day, func() any { return int64(*r.Day) }),
		v(r.At, func() any { return int64(*r.At) }),
	}
}

// The format before issue 7, with a trailer after the Arrow footer, is
// what Arrow JS could not read.
func TestDecode_OldFormat_ArrowJS(t *testing.T) {
	t.Parallel()
	_, err := arrowjs.ReadFile(t, "testdata/decode/old-format.arrow")
	if err == nil || !strings.Contains(err.Error(), "fieldsLength") {
		t.Errorf("Arrow JS reading the old format: %v, want the fieldsLength error users saw", err)
	}
}
