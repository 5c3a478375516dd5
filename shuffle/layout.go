package shuffle

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/cockroachdb/apd/v3"
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
//	TypeDecimal    utf8, the decimal's text ("12.50", "-1E+30", "NaN")
//	TypeBytes      binary
//
// A decimal is text because SQL's numeric has no fixed precision or scale
// that Arrow's decimal128/256 could hold without loss. Every column is
// nullable: Encoder.Null stands for SQL NULL.
var arrowTypes = map[Type]arrow.DataType{
	TypeInt64:     arrow.PrimitiveTypes.Int64,
	TypeFloat64:   arrow.PrimitiveTypes.Float64,
	TypeString:    arrow.BinaryTypes.String,
	TypeBool:      arrow.FixedWidthTypes.Boolean,
	TypeDate:      arrow.FixedWidthTypes.Date32,
	TypeTimestamp: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"},
	TypeDecimal:   arrow.BinaryTypes.String,
	TypeBytes:     arrow.BinaryTypes.Binary,
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
		af[i] = arrow.Field{Name: f.Name, Type: t, Nullable: true}
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
func (e *recordEncoder) Decimal(v *apd.Decimal) { e.next().(*array.StringBuilder).Append(v.Text('f')) }
func (e *recordEncoder) Bytes(v []byte)         { e.next().(*array.BinaryBuilder).Append(v) }
func (e *recordEncoder) Null()                  { e.next().AppendNull() }

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

// Decimal returns a new decimal. A decimal column holds only text that a
// Decimal wrote, which the file's checksum vouches for; text that does not
// parse is damage, and panics (the reducer recovers it into the bucket's
// error).
func (d *RecordDecoder) Decimal() *apd.Decimal {
	a, row := d.next()
	v, _, err := apd.NewFromString(a.(*array.String).Value(row))
	if err != nil {
		panic(fmt.Sprintf("shuffle: decimal text %q: %v", a.(*array.String).Value(row), err))
	}
	return v
}

func (d *RecordDecoder) Bytes() []byte {
	a, row := d.next()
	return bytes.Clone(a.(*array.Binary).Value(row))
}

// Null reports whether the next field is NULL, and if so moves past it.
func (d *RecordDecoder) Null() bool {
	if !d.cols[d.col].IsNull(d.row) {
		return false
	}
	d.next()
	return true
}
