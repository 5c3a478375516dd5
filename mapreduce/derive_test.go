package mapreduce_test

import (
	"bytes"
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cockroachdb/apd/v3"

	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/shuffle"
)

// codecJob returns a valid job over K and V with the given codecs: the
// codecs are what a test varies.
func codecJob[K comparable, V any](key mapreduce.Codec[K], value mapreduce.Codec[V]) *mapreduce.Job[K, V] {
	return &mapreduce.Job[K, V]{
		Name:    "codec_test",
		Input:   mapreduce.Input{Table: "rows"},
		Output:  mapreduce.Output{Table: "out"},
		Key:     key,
		Value:   value,
		Map:     func(context.Context, mapreduce.Row, func(K, V)) error { return nil },
		Combine: func(a, _ V) V { return a },
	}
}

// fieldBuf is an Encoder that keeps the fields it is given, and a Decoder
// (through reader) that gives them back in order.
type fieldBuf struct{ vals []any }

func (b *fieldBuf) Int64(v int64)          { b.vals = append(b.vals, v) }
func (b *fieldBuf) Float64(v float64)      { b.vals = append(b.vals, v) }
func (b *fieldBuf) String(v string)        { b.vals = append(b.vals, v) }
func (b *fieldBuf) Bool(v bool)            { b.vals = append(b.vals, v) }
func (b *fieldBuf) Date(v mapreduce.Date)  { b.vals = append(b.vals, v) }
func (b *fieldBuf) Time(v time.Time)       { b.vals = append(b.vals, v) }
func (b *fieldBuf) Decimal(v *apd.Decimal) { b.vals = append(b.vals, new(apd.Decimal).Set(v)) }
func (b *fieldBuf) Bytes(v []byte)         { b.vals = append(b.vals, bytes.Clone(v)) }
func (b *fieldBuf) Null()                  { b.vals = append(b.vals, nil) }

type fieldReader struct{ vals []any }

func (r *fieldReader) next() any {
	v := r.vals[0]
	r.vals = r.vals[1:]
	return v
}

func (r *fieldReader) Int64() int64          { return r.next().(int64) }
func (r *fieldReader) Float64() float64      { return r.next().(float64) }
func (r *fieldReader) String() string        { return r.next().(string) }
func (r *fieldReader) Bool() bool            { return r.next().(bool) }
func (r *fieldReader) Date() mapreduce.Date  { return r.next().(mapreduce.Date) }
func (r *fieldReader) Time() time.Time       { return r.next().(time.Time) }
func (r *fieldReader) Decimal() *apd.Decimal { return r.next().(*apd.Decimal) }
func (r *fieldReader) Bytes() []byte         { return r.next().([]byte) }
func (r *fieldReader) Null() bool            { return r.vals[0] == nil && r.next() == nil }
func (r *fieldReader) rest() int             { return len(r.vals) }

type (
	Cents int64 // a type defined on a supported kind counts as the kind

	base struct{ Tenant int32 } // embedded: its fields are the outer struct's

	// everyType holds every Go type a derived codec supports.
	everyType struct {
		base
		I        int
		I8       int8
		I16      int16
		I32      int32
		I64      int64
		U8       uint8
		U16      uint16
		U32      uint32
		F32      float32
		F64      float64
		S        string
		B        bool
		Day      mapreduce.Date
		At       time.Time
		Amount   *apd.Decimal
		Blob     []byte
		Price    Cents `mr:"price_cents"`
		OptInt   *int64
		OptF     *float64
		OptS     *string
		OptB     *bool
		OptDay   *mapreduce.Date
		OptAt    *time.Time
		Skipped  chan int `mr:"-"`
		internal int      `mr:"-"`
	}
)

func TestDerive_EveryType(t *testing.T) {
	t.Parallel()
	j := codecJob(mapreduce.Codec[int64]{}, mapreduce.Codec[everyType]{})
	if err := j.Validate(); err != nil {
		t.Fatal(err)
	}
	I, F, S, B, D, T, N, Y := mapreduce.TypeInt64, mapreduce.TypeFloat64, mapreduce.TypeString, mapreduce.TypeBool,
		mapreduce.TypeDate, mapreduce.TypeTimestamp, mapreduce.TypeDecimal, mapreduce.TypeBytes
	var want []mapreduce.Field
	for _, f := range []struct {
		names string
		typ   mapreduce.Type
	}{
		{"tenant i i8 i16 i32 i64 u8 u16 u32", I}, {"f32 f64", F}, {"s", S}, {"b", B}, {"day", D}, {"at", T},
		{"amount", N}, {"blob", Y}, {"price_cents opt_int", I}, {"opt_f", F}, {"opt_s", S}, {"opt_b", B},
		{"opt_day", D}, {"opt_at", T},
	} {
		for _, n := range strings.Fields(f.names) {
			want = append(want, mapreduce.Field{Name: n, Type: f.typ})
		}
	}
	if !slices.Equal(j.Value.Fields, want) {
		t.Errorf("Fields =\n %v\nwant\n %v", j.Value.Fields, want)
	}
	if f := j.Key.Fields; !slices.Equal(f, []mapreduce.Field{{Name: "key", Type: I}}) {
		t.Errorf("Key.Fields = %v, want one int64 field named key", f)
	}

	i64, f64, s, b, day, at := int64(-7), 2.5, "", false, mapreduce.Date(-3), time.UnixMicro(-1_234_567).UTC()
	full := everyType{
		base: base{Tenant: -2}, I: -1 << 40, I8: -128, I16: 32767, I32: -1 << 31, I64: 1<<63 - 1,
		U8: 255, U16: 65535, U32: 1<<32 - 1, F32: -1.25, F64: 1e300, S: "é\x00", B: true,
		Day: -719162, At: time.UnixMicro(253402300799999999).UTC(), Amount: apd.New(-123456789012345678, -30),
		Blob: []byte{0, 1, 2}, Price: 99, internal: 5, OptInt: &i64, OptF: &f64, OptS: &s, OptB: &b, OptDay: &day, OptAt: &at,
	}
	null := everyType{Blob: []byte{}} // every pointer NULL; bytes are never NULL
	for name, v := range map[string]everyType{"full": full, "null": null} {
		var buf fieldBuf
		j.Value.Encode(v, &buf)
		if len(buf.vals) != len(want) {
			t.Fatalf("%s: Encode wrote %d fields, want %d", name, len(buf.vals), len(want))
		}
		if name == "null" {
			for i, f := range want {
				if isPtr := strings.HasPrefix(f.Name, "opt_") || f.Name == "amount"; isPtr != (buf.vals[i] == nil) {
					t.Errorf("null: field %s encoded as %v", f.Name, buf.vals[i])
				}
			}
		}
		r := &fieldReader{vals: buf.vals}
		got := j.Value.Decode(r)
		if r.rest() != 0 {
			t.Errorf("%s: Decode left %d fields", name, r.rest())
		}
		if got.internal != 0 {
			t.Errorf("%s: Decode set the field tagged mr:\"-\"", name)
		}
		got.internal = v.internal
		if got.Amount != nil && v.Amount != nil && got.Amount.Cmp(v.Amount) == 0 {
			got.Amount = v.Amount // equal in value; DeepEqual would compare the representation
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("%s: Decode(Encode(v)) =\n %+v\nwant\n %+v", name, got, v)
		}
	}
}

// TestDerive_TypedJob checks that deriving typedKey and typedValue gives
// the columns their hand-written codecs name, so that TestRun_EveryFieldType
// runs both through the engine against one truth.
func TestDerive_TypedJob(t *testing.T) {
	t.Parallel()
	hand, derived := typedJob(t, false), typedJob(t, true)
	if !slices.Equal(hand.Key.Fields, derived.Key.Fields) || !slices.Equal(hand.Value.Fields, derived.Value.Fields) {
		t.Errorf("derived fields %v %v differ from the hand-written %v %v",
			derived.Key.Fields, derived.Value.Fields, hand.Key.Fields, hand.Value.Fields)
	}
}

func TestDerive_Names(t *testing.T) {
	t.Parallel()
	type names struct {
		TotalCents int64
		AccountID  int64
		HTTPStatus int64
		P95Ms      float64
		ID         int64
		X          int64
		Day2       mapreduce.Date
		Tagged     string `mr:"Custom Name"`
	}
	j := codecJob(mapreduce.Codec[string]{}, mapreduce.Codec[names]{})
	if err := j.Validate(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range j.Value.Fields {
		got = append(got, f.Name)
	}
	want := []string{"total_cents", "account_id", "http_status", "p95_ms", "id", "x", "day2", "Custom Name"}
	if !slices.Equal(got, want) {
		t.Errorf("column names %q, want %q", got, want)
	}
}

func TestColumns(t *testing.T) {
	t.Parallel()
	type pair struct{ A, B int64 }
	j := codecJob(mapreduce.Columns[string]("page"), mapreduce.Columns[pair]("first", "second"))
	if err := j.Validate(); err != nil {
		t.Fatal(err)
	}
	if want := []mapreduce.Field{{Name: "page", Type: mapreduce.TypeString}}; !slices.Equal(j.Key.Fields, want) {
		t.Errorf("Key.Fields = %v, want %v", j.Key.Fields, want)
	}
	if want := []mapreduce.Field{{Name: "first", Type: mapreduce.TypeInt64}, {Name: "second", Type: mapreduce.TypeInt64}}; !slices.Equal(j.Value.Fields, want) {
		t.Errorf("Value.Fields = %v, want %v", j.Value.Fields, want)
	}
}

// TestRun_LeavesJobAlone checks that Run derives codecs on a copy: the
// caller's job, which concurrent runs may share, is only read.
func TestRun_LeavesJobAlone(t *testing.T) {
	t.Parallel()
	j := codecJob(mapreduce.Codec[string]{}, mapreduce.Codec[int64]{})
	j.Name = "leaves_job_alone"
	j.Input.Columns = []string{"grp", "amount", "kind"}
	j.Map = func(_ context.Context, row mapreduce.Row, emit func(string, int64)) error {
		emit(row.String(0), row.Int64(1))
		return nil
	}
	j.Combine = func(a, b int64) int64 { return a + b }
	sink := &rowSink{rows: map[string][]any{}, commits: map[string]bool{}}
	if _, err := mapreduce.Run(context.Background(), j, &memSource{rows: randomRows(3, 200, 5, 0), read: map[int64]int{}}, sink, runtest.Config(t)); err != nil {
		t.Fatal(err)
	}
	if j.Key.Encode != nil || j.Value.Encode != nil {
		t.Error("Run wrote derived codecs into the caller's job")
	}
	if len(sink.rows) != 5 {
		t.Errorf("sink has %d rows, want 5", len(sink.rows))
	}
}

// The errors of types that cannot be derived name the type and the field.
func TestDerive_Errors(t *testing.T) {
	t.Parallel()
	type (
		uintField  struct{ N uint64 }
		mapField   struct{ M map[string]int64 }
		nested     struct{ Inner struct{ A int64 } }
		unexported struct {
			//lint:ignore U1000 the field is there to be refused
			secret int64
		}
		mixed struct {
			A int64
			//lint:ignore U1000 the field is there to be refused
			hidden string
		}
		empty     struct{}
		duplicate struct {
			TotalCents int64
			Total      int64 `mr:"total_cents"`
		}
		decimalValue struct{ D apd.Decimal }
		ptrPtr       struct{ P **int64 }
		ptrBytes     struct{ P *[]byte }
		decimalKey   struct {
			Account int64
			Amount  *apd.Decimal
		}
		nullableKey struct{ N *int64 }
	)
	for _, tt := range []struct {
		name string
		err  error
		want []string
	}{
		{"Uint64", codecJob(mapreduce.Codec[string]{}, mapreduce.Codec[uintField]{}).Validate(), []string{"Value codec", "uintField", "field N", "uint64", "int64"}},
		{"Map", codecJob(mapreduce.Codec[string]{}, mapreduce.Codec[mapField]{}).Validate(), []string{"mapField", "field M", "map[string]int64", "no field type"}},
		{"Nested", codecJob(mapreduce.Codec[string]{}, mapreduce.Codec[nested]{}).Validate(), []string{"nested", "field Inner", "no field type"}},
		{"Unexported", codecJob(mapreduce.Codec[string]{}, mapreduce.Codec[unexported]{}).Validate(), []string{"unexported", "field secret is unexported", `mr:"-"`}},
		{"MixedUnexported", codecJob(mapreduce.Codec[string]{}, mapreduce.Codec[mixed]{}).Validate(), []string{"mixed", "field hidden is unexported"}},
		{"Empty", codecJob(mapreduce.Codec[empty]{}, mapreduce.Codec[int64]{}).Validate(), []string{"Key codec", "empty has no fields"}},
		{"Duplicate", codecJob(mapreduce.Codec[string]{}, mapreduce.Codec[duplicate]{}).Validate(), []string{"duplicate", `two fields named "total_cents"`}},
		{"DecimalByValue", codecJob(mapreduce.Codec[string]{}, mapreduce.Codec[decimalValue]{}).Validate(), []string{"field D", "*apd.Decimal"}},
		{"PointerToPointer", codecJob(mapreduce.Codec[string]{}, mapreduce.Codec[ptrPtr]{}).Validate(), []string{"field P", "**int64", "not a pointer to a scalar"}},
		{"PointerToBytes", codecJob(mapreduce.Codec[string]{}, mapreduce.Codec[ptrBytes]{}).Validate(), []string{"field P", "*[]uint8", "not a pointer to a scalar"}},
		{"Interface", codecJob(mapreduce.Codec[any]{}, mapreduce.Codec[int64]{}).Validate(), []string{"Key codec", "interface {}", "no field type"}},
		{"DecimalKey", codecJob(mapreduce.Codec[decimalKey]{}, mapreduce.Codec[int64]{}).Validate(), []string{"Key codec", "decimalKey", "field Amount", "*apd.Decimal is a pointer", "compares by address"}},
		{"NullableKey", codecJob(mapreduce.Codec[nullableKey]{}, mapreduce.Codec[int64]{}).Validate(), []string{"Key codec", "field N", "*int64 is a pointer", "use int64"}},
		{"ScalarPointerKey", codecJob(mapreduce.Codec[*int64]{}, mapreduce.Codec[int64]{}).Validate(), []string{"Key codec", "type *int64", "pointer"}},
		{"ColumnsCount", codecJob(mapreduce.Columns[string]("a", "b"), mapreduce.Codec[int64]{}).Validate(), []string{"Key codec", "names 2 columns", "string has 1"}},
		{"ColumnsType", codecJob(mapreduce.Codec[string]{Fields: []mapreduce.Field{{Name: "a", Type: mapreduce.TypeInt64}}}, mapreduce.Codec[int64]{}).Validate(), []string{"Key codec", "Fields[0] (a) says int64", "string"}},
		{"ColumnsNoName", codecJob(mapreduce.Columns[string](""), mapreduce.Codec[int64]{}).Validate(), []string{"Key codec", "no column name"}},
		{"HalfWritten", codecJob(mapreduce.Codec[string]{Encode: func(k string, e mapreduce.Encoder) { e.String(k) }}, mapreduce.Codec[int64]{}).Validate(), []string{"Key codec needs Fields, Encode and Decode, or neither"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.err == nil {
				t.Fatalf("Validate = nil, want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(tt.err.Error(), w) {
					t.Errorf("Validate = %q, want it to say %q", tt.err, w)
				}
			}
		})
	}
}

// totals is a value whose two fields have one type: the case the field
// types alone cannot check.
type totals struct{ Events, TotalCents int64 }

var totalsFields = []mapreduce.Field{{Name: "events", Type: mapreduce.TypeInt64}, {Name: "total_cents", Type: mapreduce.TypeInt64}}

func encodeTotals(v totals, e mapreduce.Encoder) {
	e.Int64(v.Events)
	e.Int64(v.TotalCents)
}

// Validate refuses hand-written codecs whose Encode and Decode disagree,
// in ways that the field types do not show, naming the fields.
func TestValidate_HandWrittenCodecs(t *testing.T) {
	t.Parallel()
	type flags struct{ A, B, C bool }
	type opt struct {
		N *int64
		M int64
	}
	for _, tt := range []struct {
		name string
		err  error
		want string // "" for valid
	}{
		{"Right", codecJob(mapreduce.Codec[string]{}, mapreduce.Codec[totals]{Fields: totalsFields, Encode: encodeTotals,
			Decode: func(d mapreduce.Decoder) totals { return totals{Events: d.Int64(), TotalCents: d.Int64()} },
		}).Validate(), ""},
		{"Swapped", codecJob(mapreduce.Codec[string]{}, mapreduce.Codec[totals]{Fields: totalsFields, Encode: encodeTotals,
			Decode: func(d mapreduce.Decoder) totals { return totals{TotalCents: d.Int64(), Events: d.Int64()} },
		}).Validate(), `Value codec: what Decode reads as field "events" (0) Encode writes as field "total_cents" (1): Encode and Decode must take the fields in the same order`},
		{"Dropped", codecJob(mapreduce.Codec[string]{}, mapreduce.Codec[totals]{Fields: totalsFields, Encode: encodeTotals,
			Decode: func(d mapreduce.Decoder) totals { return totals{Events: d.Int64() + 0*d.Int64()} },
		}).Validate(), `Value codec: field "total_cents" (1) does not survive Decode then Encode: Decode read 2, Encode wrote 0`},
		{"SwappedBools", codecJob(mapreduce.Codec[string]{}, mapreduce.Codec[flags]{
			Fields: []mapreduce.Field{{Name: "a", Type: mapreduce.TypeBool}, {Name: "b", Type: mapreduce.TypeBool}, {Name: "c", Type: mapreduce.TypeBool}},
			Encode: func(v flags, e mapreduce.Encoder) { e.Bool(v.A); e.Bool(v.B); e.Bool(v.C) },
			Decode: func(d mapreduce.Decoder) flags { return flags{A: d.Bool(), C: d.Bool(), B: d.Bool()} },
		}).Validate(), `field "b" (1)`},
		{"SwappedKey", codecJob(mapreduce.Codec[[2]string]{
			Fields: []mapreduce.Field{{Name: "x", Type: mapreduce.TypeString}, {Name: "y", Type: mapreduce.TypeString}},
			Encode: func(k [2]string, e mapreduce.Encoder) { e.String(k[0]); e.String(k[1]) },
			Decode: func(d mapreduce.Decoder) [2]string { y, x := d.String(), d.String(); return [2]string{x, y} },
		}, mapreduce.Codec[int64]{}).Validate(), `Key codec: what Decode reads as field "x" (0) Encode writes as field "y" (1)`},
		{"NullLost", codecJob(mapreduce.Codec[string]{}, mapreduce.Codec[opt]{
			Fields: []mapreduce.Field{{Name: "n", Type: mapreduce.TypeInt64}, {Name: "m", Type: mapreduce.TypeInt64}},
			Encode: func(v opt, e mapreduce.Encoder) {
				n := int64(0)
				if v.N != nil {
					n = *v.N
				}
				e.Int64(n) // a NULL written as 0
				e.Int64(v.M)
			},
			Decode: func(d mapreduce.Decoder) opt {
				var v opt
				if !d.Null() {
					n := d.Int64()
					v.N = &n
				}
				v.M = d.Int64()
				return v
			},
		}).Validate(), `field "n" (0) does not survive Decode then Encode: Decode read NULL, Encode wrote 0`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			switch {
			case tt.want == "" && tt.err != nil:
				t.Errorf("Validate = %v, want nil", tt.err)
			case tt.want != "" && (tt.err == nil || !strings.Contains(tt.err.Error(), tt.want)):
				t.Errorf("Validate = %v, want an error with %q", tt.err, tt.want)
			}
		})
	}
}

// rollupKey and rollupTotals are daily_rollup's types (jobs.RollupKey and
// jobs.RollupTotals), with the codecs that job had by hand before it
// derived them: the baseline a derived codec must match.
type (
	rollupKey struct {
		Account  int64 `mr:"account_id"`
		Day      mapreduce.Date
		Category string
	}
	rollupTotals struct {
		Events     int64
		TotalCents int64
	}
)

var (
	handRollupKey = mapreduce.Codec[rollupKey]{
		Fields: []mapreduce.Field{
			{Name: "account_id", Type: mapreduce.TypeInt64},
			{Name: "day", Type: mapreduce.TypeDate},
			{Name: "category", Type: mapreduce.TypeString},
		},
		Encode: func(k rollupKey, e mapreduce.Encoder) {
			e.Int64(k.Account)
			e.Date(k.Day)
			e.String(k.Category)
		},
		Decode: func(d mapreduce.Decoder) rollupKey {
			return rollupKey{Account: d.Int64(), Day: d.Date(), Category: d.String()}
		},
	}
	handRollupTotals = mapreduce.Codec[rollupTotals]{
		Fields: []mapreduce.Field{
			{Name: "events", Type: mapreduce.TypeInt64},
			{Name: "total_cents", Type: mapreduce.TypeInt64},
		},
		Encode: func(v rollupTotals, e mapreduce.Encoder) {
			e.Int64(v.Events)
			e.Int64(v.TotalCents)
		},
		Decode: func(d mapreduce.Decoder) rollupTotals {
			return rollupTotals{Events: d.Int64(), TotalCents: d.Int64()}
		},
	}
)

// rollupCodecs returns daily_rollup's key and value codecs, by hand or
// derived.
func rollupCodecs(t testing.TB, derived bool) (mapreduce.Codec[rollupKey], mapreduce.Codec[rollupTotals]) {
	t.Helper()
	if !derived {
		return handRollupKey, handRollupTotals
	}
	j := codecJob(mapreduce.Codec[rollupKey]{}, mapreduce.Codec[rollupTotals]{})
	if err := j.Validate(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(j.Key.Fields, handRollupKey.Fields) || !slices.Equal(j.Value.Fields, handRollupTotals.Fields) {
		t.Fatalf("derived fields %v %v, want %v %v", j.Key.Fields, j.Value.Fields, handRollupKey.Fields, handRollupTotals.Fields)
	}
	return j.Key, j.Value
}

// rollupRecord is one Arrow record of n rollup rows, as a shuffle file
// holds them.
func rollupRecord(n int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, shuffle.Schema(append(slices.Clone(handRollupKey.Fields), handRollupTotals.Fields...)))
	defer b.Release()
	for i := range n {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.Date32Builder).Append(arrow.Date32(19000 + i%30))
		b.Field(2).(*array.StringBuilder).Append([]string{"signup", "purchase", "refund"}[i%3])
		b.Field(3).(*array.Int64Builder).Append(1)
		b.Field(4).(*array.Int64Builder).Append(int64(i * 100))
	}
	return b.NewRecordBatch()
}

// TestDerive_Allocs holds derived codecs to the allocations of the
// hand-written ones, on the per-record paths: hashing a key, writing a
// pair to a shuffle record, and reading one back.
func TestDerive_Allocs(t *testing.T) {
	rec := rollupRecord(1)
	defer rec.Release()
	allocs := func(derived bool) (enc, dec float64) {
		key, value := rollupCodecs(t, derived)
		h := shuffle.NewKeyHash(1)
		k, v := rollupKey{Account: 42, Day: 19000, Category: "purchase"}, rollupTotals{Events: 3, TotalCents: 1234}
		enc = testing.AllocsPerRun(1000, func() {
			h.Reset()
			key.Encode(k, h)
			value.Encode(v, h)
		})
		var d shuffle.RecordDecoder
		dec = testing.AllocsPerRun(1000, func() {
			d.Reset(rec)
			k = key.Decode(&d)
			v = value.Decode(&d)
		})
		return enc, dec
	}
	handEnc, handDec := allocs(false)
	enc, dec := allocs(true)
	if enc > handEnc || dec > handDec {
		t.Errorf("derived codecs allocate %v to encode and %v to decode a pair; by hand %v and %v", enc, dec, handEnc, handDec)
	}
}

// BenchmarkCodec compares daily_rollup's codecs, derived and by hand, on
// the per-record paths: encode hashes a key and its value, decode reads a
// pair from an Arrow record.
//
//	go test -run='^$' -bench=Codec ./mapreduce
func BenchmarkCodec(b *testing.B) {
	const rows = 1024
	rec := rollupRecord(rows)
	defer rec.Release()
	for _, derived := range []bool{false, true} {
		name := map[bool]string{false: "hand", true: "derived"}[derived]
		key, value := rollupCodecs(b, derived)
		b.Run("codec="+name+"/op=encode", func(b *testing.B) {
			h := shuffle.NewKeyHash(1)
			k, v := rollupKey{Account: 42, Day: 19000, Category: "purchase"}, rollupTotals{Events: 3, TotalCents: 1234}
			b.ReportAllocs()
			var sum uint64
			for b.Loop() {
				h.Reset()
				key.Encode(k, h)
				value.Encode(v, h)
				sum += h.Sum64()
			}
			_ = sum
		})
		b.Run("codec="+name+"/op=decode", func(b *testing.B) {
			var d shuffle.RecordDecoder
			var events int64
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i%rows == 0 {
					d.Reset(rec)
				}
				i++
				_ = key.Decode(&d)
				events += value.Decode(&d).Events
			}
		})
	}
}
