package mapreduce

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unsafe"

	"github.com/cockroachdb/apd/v3"
)

// Batch holds one keyset chunk of source rows, in cursor order. A Source
// fills it row by row: Append (or AppendTie) adds a row whose columns are
// all NULL, and the Set methods fill the columns of the last row. The
// common types are stored unboxed and text is copied into one buffer per
// batch, so that a row costs no allocation: boxing an int64, a time or a
// string in an interface costs one each, and was a fifth of a map phase's
// CPU. The engine reuses a batch from chunk to chunk, so a Row (and any
// []byte it returns) is valid only until Map returns.
type Batch struct {
	columns []string
	cursors []int64
	ties    []int64 // a compound cursor's tie-breakers (see AppendTie), else empty
	cells   []cell  // row-major: row i is cells[i*len(columns) : (i+1)*len(columns)]
	text    []byte  // the bytes of the text and bytes cells
}

// cell is one stored value: its kind says which field holds it.
type cell struct {
	kind cellKind
	size uint32 // text, bytes: the length at text[n:]
	n    int64  // int, float (its bits), bool (0 or 1), micros, or text's offset
	v    any    // boxed: the value as the source gave it
}

type cellKind uint8

const (
	cellNull   cellKind = iota
	cellInt             // an int64
	cellFloat           // a float64
	cellBool            // a bool
	cellMicros          // a time.Time in UTC: microseconds since 1970
	cellText            // text, read as a string
	cellBytes           // bytes, read as a []byte
	cellBoxed           // any other value, kept as it is
)

// NewBatch returns an empty batch for the given input columns.
func NewBatch(columns []string) *Batch {
	return &Batch{columns: columns}
}

// Columns returns the input column names, in the order of each row's values.
func (b *Batch) Columns() []string { return b.columns }

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() {
	clear(b.cells) // drop boxed references so the previous chunk can be collected
	b.cursors, b.ties, b.cells, b.text = b.cursors[:0], b.ties[:0], b.cells[:0], b.text[:0]
}

// Append adds a row with the given cursor value, its columns NULL, for
// the source to fill with the Set methods.
func (b *Batch) Append(cursor int64) {
	b.cursors = append(b.cursors, cursor)
	n := len(b.cells)
	b.cells = slices.Grow(b.cells, len(b.columns))[:n+len(b.columns)]
	clear(b.cells[n:])
}

// AppendTie is Append for a compound cursor (see Input.CursorColumns):
// cursor is the order column's value, tie the tie-breaker's. A batch
// holds rows of one kind: all appended with Append, or all with AppendTie.
func (b *Batch) AppendTie(cursor, tie int64) {
	b.ties = append(b.ties, tie)
	b.Append(cursor)
}

// last returns column c of the last row.
func (b *Batch) last(c int) *cell { return &b.cells[len(b.cells)-len(b.columns)+c] }

// Set sets column c of the last row to v as it is: an int64, float64,
// string, []byte, bool, time.Time, or nil (SQL NULL). The batch keeps v
// itself, so an interface value the source reuses (an interned string)
// costs nothing; a []byte must not change until the batch is reset.
func (b *Batch) Set(c int, v any) {
	if v == nil {
		*b.last(c) = cell{}
		return
	}
	*b.last(c) = cell{kind: cellBoxed, v: v}
}

// SetInt64 sets column c of the last row to v.
func (b *Batch) SetInt64(c int, v int64) { *b.last(c) = cell{kind: cellInt, n: v} }

// SetFloat64 sets column c of the last row to v.
func (b *Batch) SetFloat64(c int, v float64) {
	*b.last(c) = cell{kind: cellFloat, n: int64(math.Float64bits(v))}
}

// SetBool sets column c of the last row to v.
func (b *Batch) SetBool(c int, v bool) {
	n := int64(0)
	if v {
		n = 1
	}
	*b.last(c) = cell{kind: cellBool, n: n}
}

// SetUnixMicro sets column c of the last row to the instant us
// microseconds after 1970-01-01 UTC, read as a time.Time in UTC.
func (b *Batch) SetUnixMicro(c int, us int64) { *b.last(c) = cell{kind: cellMicros, n: us} }

// SetText sets column c of the last row to the text src, read as a
// string; the batch copies it.
func (b *Batch) SetText(c int, src []byte) { b.setCopy(c, cellText, src) }

// SetBytes sets column c of the last row to src, read as a []byte; the
// batch copies it.
func (b *Batch) SetBytes(c int, src []byte) { b.setCopy(c, cellBytes, src) }

func (b *Batch) setCopy(c int, kind cellKind, src []byte) {
	if uint64(len(src)) > math.MaxUint32 { // beyond a cell's size; no SQL value is this long
		v := any(bytes.Clone(src))
		if kind == cellText {
			v = string(src)
		}
		b.Set(c, v)
		return
	}
	*b.last(c) = cell{kind: kind, size: uint32(len(src)), n: int64(len(b.text))}
	b.text = append(b.text, src...)
}

// truncate keeps the first n rows.
func (b *Batch) truncate(n int) {
	clear(b.cells[n*len(b.columns):]) // as Reset does
	b.cursors, b.cells = b.cursors[:n], b.cells[:n*len(b.columns)]
	if len(b.ties) > n {
		b.ties = b.ties[:n]
	}
}

// Len returns the number of rows.
func (b *Batch) Len() int { return len(b.cursors) }

// Row returns row i.
func (b *Batch) Row(i int) Row { return Row{b: b, i: i} }

// Last returns the cursor value of the last row; the batch must not be empty.
func (b *Batch) Last() int64 { return b.cursors[len(b.cursors)-1] }

// LastTie returns the tie-breaker of the last row, which AppendTie must
// have appended; the batch must not be empty.
func (b *Batch) LastTie() int64 { return b.ties[len(b.ties)-1] }

// Row is one source row as Map sees it: the cursor value and the input
// columns, read by their index in Input.Columns.
//
// The typed getters convert what a source may store (for example an integer
// held as text in SQLite) and panic with a *ColumnError when a value is NULL
// or cannot be converted; the engine recovers that panic into the row's
// error, so a bad value fails the row (retry, then DLQ) and not the run.
// Check Null first where NULL is a valid value.
type Row struct {
	b *Batch
	i int
}

// Cursor returns the row's cursor value: for a compound cursor, its order
// column's (see Input.CursorColumns).
func (r Row) Cursor() int64 { return r.b.cursors[r.i] }

// Tie returns the row's tie-breaker, and false when its cursor is not
// compound. With Cursor it names the row.
func (r Row) Tie() (int64, bool) {
	if r.i >= len(r.b.ties) {
		return 0, false
	}
	return r.b.ties[r.i], true
}

// cell returns column c.
func (r Row) cell(c int) *cell { return &r.b.cells[r.i*len(r.b.columns)+c] }

// bytes returns the text or bytes of cell v.
func (r Row) bytes(v *cell) []byte {
	return r.b.text[v.n : v.n+int64(v.size) : v.n+int64(v.size)]
}

// Value returns column c as the source stored it: an int64, float64,
// string, []byte, bool, time.Time or nil (SQL NULL), or what the source
// gave Set. Unlike the typed getters it costs an allocation for most
// values, and what it returns stays valid after Map returns.
func (r Row) Value(c int) any {
	switch v := r.cell(c); v.kind {
	case cellInt:
		return v.n
	case cellFloat:
		return math.Float64frombits(uint64(v.n))
	case cellBool:
		return v.n != 0
	case cellMicros:
		return time.UnixMicro(v.n).UTC()
	case cellText:
		return string(r.bytes(v))
	case cellBytes:
		return bytes.Clone(r.bytes(v)) // outlives the batch, as a value in a dead letter does
	case cellBoxed:
		return v.v
	}
	return nil
}

// Null reports whether column c is SQL NULL.
func (r Row) Null(c int) bool { return r.cell(c).kind == cellNull }

// Columns returns the row as column name → value, for logs and the DLQ.
func (r Row) Columns() map[string]any {
	m := make(map[string]any, len(r.b.columns))
	for c, name := range r.b.columns {
		m[name] = r.Value(c)
	}
	return m
}

// ColumnError is the panic value of a typed getter that cannot return the
// column as asked.
type ColumnError struct {
	Column string
	Want   string
	Value  any
}

func (e *ColumnError) Error() string {
	if e.Value == nil {
		return fmt.Sprintf("column %s: want %s, got NULL", e.Column, e.Want)
	}
	return fmt.Sprintf("column %s: want %s, got %T %v", e.Column, e.Want, e.Value, e.Value)
}

func (r Row) fail(c int, want string) {
	panic(&ColumnError{Column: r.b.columns[c], Want: want, Value: r.Value(c)})
}

// Int64 returns column c as an integer.
func (r Row) Int64(c int) int64 {
	if v := r.cell(c); v.kind == cellInt {
		return v.n
	}
	switch v := r.Value(c).(type) {
	case int64:
		return v
	case int32:
		return int64(v)
	case int:
		return int64(v)
	case string:
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	case []byte:
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return n
		}
	}
	r.fail(c, "int64")
	return 0
}

// Float64 returns column c as a float.
func (r Row) Float64(c int) float64 {
	if v := r.cell(c); v.kind == cellFloat {
		return math.Float64frombits(uint64(v.n))
	}
	switch v := r.Value(c).(type) {
	case float64:
		return v
	case float32:
		return float64(v)
	case int64:
		return float64(v)
	case string:
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	}
	r.fail(c, "float64")
	return 0
}

// String returns column c as text.
func (r Row) String(c int) string {
	switch v := r.cell(c); v.kind {
	case cellText, cellBytes:
		return string(r.bytes(v))
	case cellBoxed:
		if s, ok := v.v.(string); ok {
			return s
		}
	}
	switch v := r.Value(c).(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	r.fail(c, "string")
	return ""
}

// Decimal returns column c as a new exact decimal: sources store numeric
// as its exact text, which this parses; integers convert exactly, and a
// float (SQLite's REAL) by its shortest decimal form, which reads back as
// the same float.
func (r Row) Decimal(c int) *apd.Decimal {
	var d apd.Decimal
	var err error
	switch v := r.Value(c).(type) {
	case string:
		_, _, err = d.SetString(v)
	case []byte:
		_, _, err = d.SetString(string(v))
	case int64:
		d.SetInt64(v)
	case float64:
		_, err = d.SetFloat64(v)
	default:
		r.fail(c, "decimal")
	}
	if err != nil {
		r.fail(c, "decimal")
	}
	return &d
}

// Bytes returns column c as bytes, without copying text. They are valid
// only until Map returns and must not be modified.
func (r Row) Bytes(c int) []byte {
	if v := r.cell(c); v.kind == cellText || v.kind == cellBytes {
		return r.bytes(v)
	}
	switch v := r.Value(c).(type) {
	case []byte:
		return v
	case string:
		return unsafe.Slice(unsafe.StringData(v), len(v))
	}
	r.fail(c, "bytes")
	return nil
}

// Bool returns column c as a boolean.
func (r Row) Bool(c int) bool {
	if v := r.cell(c); v.kind == cellBool {
		return v.n != 0
	}
	switch v := r.Value(c).(type) {
	case bool:
		return v
	case int64:
		return v != 0
	}
	r.fail(c, "bool")
	return false
}

// timeLayouts are the textual timestamps accepted from sources without a
// native timestamp type (SQLite stores them as text).
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999-07",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
}

// Time returns column c as an instant. Text is parsed as RFC 3339 or SQL
// style ("2006-01-02 15:04:05", UTC when it has no offset); integers are
// seconds since the Unix epoch.
func (r Row) Time(c int) time.Time {
	if v := r.cell(c); v.kind == cellMicros {
		return time.UnixMicro(v.n).UTC()
	}
	switch v := r.Value(c).(type) {
	case time.Time:
		return v
	case int64:
		return time.Unix(v, 0).UTC()
	case string:
		for _, layout := range timeLayouts {
			if t, err := time.Parse(layout, v); err == nil {
				return t
			}
		}
	}
	r.fail(c, "timestamp")
	return time.Time{}
}
