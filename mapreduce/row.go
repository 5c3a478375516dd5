package mapreduce

import (
	"fmt"
	"strconv"
	"time"
	"unsafe"

	"github.com/cockroachdb/apd/v3"
)

// Batch holds one keyset chunk of source rows, in cursor order. A Source
// fills it with Append; the engine reuses it from chunk to chunk, so a Row
// (and any []byte it returns) is valid only until Map returns.
type Batch struct {
	columns []string
	cursors []int64
	ties    []int64 // a compound cursor's tie-breakers (see AppendTie), else empty
	values  []any   // row-major: row i is values[i*len(columns) : (i+1)*len(columns)]
}

// NewBatch returns an empty batch for the given input columns.
func NewBatch(columns []string) *Batch {
	return &Batch{columns: columns}
}

// Columns returns the input column names, in the order of each row's values.
func (b *Batch) Columns() []string { return b.columns }

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() {
	clear(b.values) // drop references so the previous chunk can be collected
	b.cursors, b.ties, b.values = b.cursors[:0], b.ties[:0], b.values[:0]
}

// Append adds a row with the given cursor value and returns its value slots,
// one per column, for the source to fill. Sources store int64, float64,
// string, []byte, bool, time.Time or nil (SQL NULL).
func (b *Batch) Append(cursor int64) []any {
	b.cursors = append(b.cursors, cursor)
	n := len(b.values)
	b.values = append(b.values, make([]any, len(b.columns))...)
	return b.values[n:]
}

// AppendTie is Append for a compound cursor (see Input.CursorColumns):
// cursor is the order column's value, tie the tie-breaker's. A batch
// holds rows of one kind: all appended with Append, or all with AppendTie.
func (b *Batch) AppendTie(cursor, tie int64) []any {
	b.ties = append(b.ties, tie)
	return b.Append(cursor)
}

// truncate keeps the first n rows.
func (b *Batch) truncate(n int) {
	clear(b.values[n*len(b.columns):]) // as Reset does
	b.cursors, b.values = b.cursors[:n], b.values[:n*len(b.columns)]
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

// Value returns column c as the source stored it.
func (r Row) Value(c int) any { return r.b.values[r.i*len(r.b.columns)+c] }

// Null reports whether column c is SQL NULL.
func (r Row) Null(c int) bool { return r.Value(c) == nil }

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
