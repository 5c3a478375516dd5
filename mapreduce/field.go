package mapreduce

import (
	"bytes"
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
// reflection. Encode and Decode must write and read Fields in order:
//
//	Encode(t, e) ; Decode(d) == t
//
// Register checks the order against Fields once, when the job is registered.
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
