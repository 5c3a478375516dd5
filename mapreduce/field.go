package mapreduce

import (
	"bytes"
	"fmt"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/mrengine/mr/shuffle"
)

// The field model of keys and values is the layout of a shuffle record, so
// it lives in package shuffle; these are its names for job authors.
type (
	// Type is the type of a key or value field: what the shuffle files
	// store and what the sink's output columns are made of.
	Type = shuffle.Type
	// Field names one column of a key or value, in the order its Codec
	// writes it.
	Field = shuffle.Field
	// Date is a calendar day, counted in days since 1970-01-01.
	Date = shuffle.Date
	// Encoder receives the fields of one key or value, in the order of the
	// Codec's Fields.
	Encoder = shuffle.Encoder
	// Decoder yields the fields of one key or value, in the order Encode
	// wrote them.
	Decoder = shuffle.Decoder
)

// The field types; see shuffle.Type for their Go, Arrow and SQL types.
const (
	TypeInt64     = shuffle.TypeInt64
	TypeFloat64   = shuffle.TypeFloat64
	TypeString    = shuffle.TypeString
	TypeBool      = shuffle.TypeBool
	TypeDate      = shuffle.TypeDate
	TypeTimestamp = shuffle.TypeTimestamp
	TypeDecimal   = shuffle.TypeDecimal
	TypeBytes     = shuffle.TypeBytes
)

// DateOf returns the UTC calendar day of t.
func DateOf(t time.Time) Date { return shuffle.DateOf(t) }

// Codec tells the engine how a key or value type is laid out as fields, so
// that it can be hashed, spilled to Arrow and written to the sink without
// reflection on the per-record path.
//
// Leave it zero, and Validate derives it from T, once: a struct's fields
// become columns in order, each named by its `mr:"name"` tag or else its
// name in snake_case (TotalCents is total_cents), and `mr:"-"` leaves a
// field out; an untagged embedded struct's fields count as the outer
// struct's. A scalar T is one column, named "key" or "value", or as
// Columns names it. The Go types and their field types:
//
//	int, int8…int64, uint8…uint32    TypeInt64 (uint, uint64 are refused:
//	                                 they may not fit a bigint)
//	float32, float64                 TypeFloat64
//	string                           TypeString
//	bool                             TypeBool
//	Date                             TypeDate
//	time.Time                        TypeTimestamp
//	*apd.Decimal                     TypeDecimal, nil is NULL
//	[]byte                           TypeBytes, never NULL
//	*int64, *string, … (*scalar)     the scalar's type, nil is NULL
//
// A key has no pointer fields: Go compares pointers by address, so equal
// decimals would be different keys. Validate names the type and the field
// of anything it cannot derive: another type, an unexported field, two
// fields of one column name.
//
// Or write it by hand, when the Go type is not laid out as the columns
// are: Encode and Decode must write and read Fields in order,
//
//	Encode(t, e) ; Decode(d) == t
//
// and Validate checks them against Fields and against each other: a
// Decode that reads two fields of one type in the other order than Encode
// writes them is refused, naming the fields. Fields with neither Encode
// nor Decode names (and optionally types) the columns of a derived codec.
type Codec[T any] struct {
	Fields []Field
	Encode func(t T, e Encoder)
	Decode func(d Decoder) T
}

// ArrayEncoder is implemented by the Encoder that Finalize writes to: an
// output column may hold an array (Field.Array), which no shuffle record
// does. elems is a slice of the field type's Go type: []int64, []float64,
// []string, []bool, []Date, []time.Time, []*apd.Decimal or [][]byte.
type ArrayEncoder interface {
	Array(elems any)
}

// valuesEncoder collects fields as the values of a sink row (see
// OutputRows).
type valuesEncoder struct{ values []any }

func (e *valuesEncoder) Int64(v int64)     { e.values = append(e.values, v) }
func (e *valuesEncoder) Float64(v float64) { e.values = append(e.values, v) }
func (e *valuesEncoder) String(v string)   { e.values = append(e.values, v) }
func (e *valuesEncoder) Bool(v bool)       { e.values = append(e.values, v) }
func (e *valuesEncoder) Date(v Date)       { e.values = append(e.values, v) }
func (e *valuesEncoder) Time(v time.Time)  { e.values = append(e.values, v.UTC()) }
func (e *valuesEncoder) Null()             { e.values = append(e.values, nil) }
func (e *valuesEncoder) Array(elems any)   { e.values = append(e.values, elems) }

// Decimal copies v: the codec may reuse it once the call returns.
func (e *valuesEncoder) Decimal(v *apd.Decimal) { e.values = append(e.values, new(apd.Decimal).Set(v)) }
func (e *valuesEncoder) Bytes(v []byte)         { e.values = append(e.values, bytes.Clone(v)) }

// valuesDecoder yields the values of a row a sink read back (see Merger)
// as fields: the inverse of valuesEncoder. A value of another Go type
// than its field's panics, as a codec's Decode may; the engine recovers it
// into the bucket's error.
type valuesDecoder struct{ values []any }

func next[T any](d *valuesDecoder) T {
	if len(d.values) == 0 {
		panic("the stored row has fewer columns than the codec reads")
	}
	v, ok := d.values[0].(T)
	if !ok {
		var want T
		panic(fmt.Sprintf("the stored row holds %T where the codec reads %T", d.values[0], want))
	}
	d.values = d.values[1:]
	return v
}

func (d *valuesDecoder) Int64() int64          { return next[int64](d) }
func (d *valuesDecoder) Float64() float64      { return next[float64](d) }
func (d *valuesDecoder) String() string        { return next[string](d) }
func (d *valuesDecoder) Bool() bool            { return next[bool](d) }
func (d *valuesDecoder) Date() Date            { return next[Date](d) }
func (d *valuesDecoder) Time() time.Time       { return next[time.Time](d) }
func (d *valuesDecoder) Decimal() *apd.Decimal { return next[*apd.Decimal](d) }
func (d *valuesDecoder) Bytes() []byte         { return next[[]byte](d) }

// Null consumes a NULL, if the next value is one.
func (d *valuesDecoder) Null() bool {
	if len(d.values) > 0 && d.values[0] == nil {
		d.values = d.values[1:]
		return true
	}
	return false
}
