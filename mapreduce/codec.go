package mapreduce

import (
	"encoding/binary"
	"math"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// This file holds the engine's Encoders and Decoders: one per place a key or
// value goes (a hash, an Arrow record, a sink row) or comes from (an Arrow
// record).

var arrowTypes = map[Type]arrow.DataType{
	TypeInt64:     arrow.PrimitiveTypes.Int64,
	TypeFloat64:   arrow.PrimitiveTypes.Float64,
	TypeString:    arrow.BinaryTypes.String,
	TypeBool:      arrow.FixedWidthTypes.Boolean,
	TypeDate:      arrow.FixedWidthTypes.Date32,
	TypeTimestamp: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"},
}

// arrowSchema returns the Arrow schema of records laid out as fields.
func arrowSchema(fields []Field) *arrow.Schema {
	af := make([]arrow.Field, len(fields))
	for i, f := range fields {
		af[i] = arrow.Field{Name: f.Name, Type: arrowTypes[f.Type]}
	}
	return arrow.NewSchema(af, nil)
}

// keyEncoder frames a key's fields into bytes for hashing: fixed width, or
// length-prefixed for strings, so ("ab","c") and ("a","bc") differ.
type keyEncoder struct{ buf []byte }

func (e *keyEncoder) Int64(v int64) { e.buf = binary.LittleEndian.AppendUint64(e.buf, uint64(v)) }

// Float64 hashes -0 as +0, since Go's map, and SQL, count them as one key.
// A NaN key never equals itself: a job must not emit one.
func (e *keyEncoder) Float64(v float64) {
	if v == 0 {
		v = 0
	}
	e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(v))
}
func (e *keyEncoder) String(v string) {
	e.buf = binary.AppendUvarint(e.buf, uint64(len(v)))
	e.buf = append(e.buf, v...)
}
func (e *keyEncoder) Bool(v bool) {
	b := byte(0)
	if v {
		b = 1
	}
	e.buf = append(e.buf, b)
}
func (e *keyEncoder) Date(v Date)      { e.buf = binary.LittleEndian.AppendUint32(e.buf, uint32(v)) }
func (e *keyEncoder) Time(v time.Time) { e.Int64(v.UnixMicro()) }

// arrowEncoder appends fields to the columns of a record builder, wrapping
// to the first column after the last.
type arrowEncoder struct {
	cols []array.Builder
	col  int
}

func newArrowEncoder(b *array.RecordBuilder) *arrowEncoder {
	return &arrowEncoder{cols: b.Fields()}
}

func (e *arrowEncoder) next() array.Builder {
	b := e.cols[e.col]
	e.col++
	if e.col == len(e.cols) {
		e.col = 0
	}
	return b
}

func (e *arrowEncoder) Int64(v int64)     { e.next().(*array.Int64Builder).Append(v) }
func (e *arrowEncoder) Float64(v float64) { e.next().(*array.Float64Builder).Append(v) }
func (e *arrowEncoder) String(v string)   { e.next().(*array.StringBuilder).Append(v) }
func (e *arrowEncoder) Bool(v bool)       { e.next().(*array.BooleanBuilder).Append(v) }
func (e *arrowEncoder) Date(v Date)       { e.next().(*array.Date32Builder).Append(arrow.Date32(v)) }
func (e *arrowEncoder) Time(v time.Time) {
	e.next().(*array.TimestampBuilder).Append(arrow.Timestamp(v.UnixMicro()))
}

// arrowDecoder reads the fields of row Row of a record, column after column.
// Strings are copied: the record's memory goes away when it is released.
type arrowDecoder struct {
	cols []arrow.Array
	row  int
	col  int
}

func (d *arrowDecoder) reset(rec arrow.RecordBatch) {
	d.cols, d.row, d.col = rec.Columns(), 0, 0
}

func (d *arrowDecoder) next() arrow.Array {
	a := d.cols[d.col]
	d.col++
	if d.col == len(d.cols) {
		d.col = 0
		d.row++
	}
	return a
}

func (d *arrowDecoder) Int64() int64 {
	row := d.row
	return d.next().(*array.Int64).Value(row)
}
func (d *arrowDecoder) Float64() float64 {
	row := d.row
	return d.next().(*array.Float64).Value(row)
}
func (d *arrowDecoder) String() string {
	row := d.row
	return strings.Clone(d.next().(*array.String).Value(row))
}
func (d *arrowDecoder) Bool() bool {
	row := d.row
	return d.next().(*array.Boolean).Value(row)
}
func (d *arrowDecoder) Date() Date {
	row := d.row
	return Date(d.next().(*array.Date32).Value(row))
}
func (d *arrowDecoder) Time() time.Time {
	row := d.row
	return time.UnixMicro(int64(d.next().(*array.Timestamp).Value(row))).UTC()
}

// valuesEncoder collects fields as the values of a sink row.
type valuesEncoder struct{ values []any }

func (e *valuesEncoder) Int64(v int64)     { e.values = append(e.values, v) }
func (e *valuesEncoder) Float64(v float64) { e.values = append(e.values, v) }
func (e *valuesEncoder) String(v string)   { e.values = append(e.values, v) }
func (e *valuesEncoder) Bool(v bool)       { e.values = append(e.values, v) }
func (e *valuesEncoder) Date(v Date)       { e.values = append(e.values, v) }
func (e *valuesEncoder) Time(v time.Time)  { e.values = append(e.values, v.UTC()) }
