package shuffle

import (
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// A shuffle record is one (key, value) pair laid out as an Arrow row: the
// key's fields, then the value's, one column each, named and typed by
// their Fields:
//
//	TypeInt64      int64
//	TypeFloat64    float64
//	TypeString     utf8
//	TypeBool       bool
//	TypeDate       date32
//	TypeTimestamp  timestamp[us, tz=UTC]
//
// Columns are not nullable: a job's keys and values are plain Go values.
var arrowTypes = map[Type]arrow.DataType{
	TypeInt64:     arrow.PrimitiveTypes.Int64,
	TypeFloat64:   arrow.PrimitiveTypes.Float64,
	TypeString:    arrow.BinaryTypes.String,
	TypeBool:      arrow.FixedWidthTypes.Boolean,
	TypeDate:      arrow.FixedWidthTypes.Date32,
	TypeTimestamp: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"},
}

// Schema returns the Arrow schema of records laid out as fields (key
// fields, then value fields).
func Schema(fields []Field) *arrow.Schema {
	af := make([]arrow.Field, len(fields))
	for i, f := range fields {
		t, ok := arrowTypes[f.Type]
		if !ok {
			panic(fmt.Sprintf("shuffle: field %q has unknown type %s", f.Name, f.Type))
		}
		af[i] = arrow.Field{Name: f.Name, Type: t}
	}
	return arrow.NewSchema(af, nil)
}

// recordEncoder appends fields to the columns of a record builder, wrapping
// to the first column after the last, so consecutive Encode calls of the
// key and the value codecs fill one row.
type recordEncoder struct {
	cols []array.Builder
	col  int
}

func (e *recordEncoder) next() array.Builder {
	b := e.cols[e.col]
	e.col++
	if e.col == len(e.cols) {
		e.col = 0
	}
	return b
}

func (e *recordEncoder) Int64(v int64)     { e.next().(*array.Int64Builder).Append(v) }
func (e *recordEncoder) Float64(v float64) { e.next().(*array.Float64Builder).Append(v) }
func (e *recordEncoder) String(v string)   { e.next().(*array.StringBuilder).Append(v) }
func (e *recordEncoder) Bool(v bool)       { e.next().(*array.BooleanBuilder).Append(v) }
func (e *recordEncoder) Date(v Date)       { e.next().(*array.Date32Builder).Append(arrow.Date32(v)) }
func (e *recordEncoder) Time(v time.Time) {
	e.next().(*array.TimestampBuilder).Append(arrow.Timestamp(v.UnixMicro()))
}

// RecordDecoder reads the records of an Arrow record batch field by field,
// row after row: the key codec's Decode, then the value codec's, once per
// row. Strings are copied, since the batch's memory goes away when it is
// released.
type RecordDecoder struct {
	cols []arrow.Array
	row  int
	col  int
}

// Reset starts decoding rec from its first row.
func (d *RecordDecoder) Reset(rec arrow.RecordBatch) {
	d.cols, d.row, d.col = rec.Columns(), 0, 0
}

func (d *RecordDecoder) next() (arrow.Array, int) {
	a, row := d.cols[d.col], d.row
	d.col++
	if d.col == len(d.cols) {
		d.col = 0
		d.row++
	}
	return a, row
}

func (d *RecordDecoder) Int64() int64 {
	a, row := d.next()
	return a.(*array.Int64).Value(row)
}

func (d *RecordDecoder) Float64() float64 {
	a, row := d.next()
	return a.(*array.Float64).Value(row)
}

func (d *RecordDecoder) String() string {
	a, row := d.next()
	return strings.Clone(a.(*array.String).Value(row))
}

func (d *RecordDecoder) Bool() bool {
	a, row := d.next()
	return a.(*array.Boolean).Value(row)
}

func (d *RecordDecoder) Date() Date {
	a, row := d.next()
	return Date(a.(*array.Date32).Value(row))
}

func (d *RecordDecoder) Time() time.Time {
	a, row := d.next()
	return time.UnixMicro(int64(a.(*array.Timestamp).Value(row))).UTC()
}
