package mapreducetest

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/mrengine/mr/mapreduce"
)

// normalize turns v, a value read from a database or written by a test,
// into the canonical Go value of a column of field f: int64, float64,
// string, bool, mapreduce.Date, time.Time in UTC, *apd.Decimal, []byte,
// []any of those for an array, or nil for NULL. Accepting the spellings a
// test naturally writes (an untyped 3 is an int, a day "2026-01-02") keeps
// expected rows short.
func normalize(f mapreduce.Field, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if f.Array {
		return normalizeArray(f, v)
	}
	if n, ok := v.(json.Number); ok { // an element of a JSON array
		v = n.String()
	}
	switch f.Type {
	case mapreduce.TypeInt64:
		if s, ok := v.(string); ok {
			return strconv.ParseInt(s, 10, 64)
		}
		if i, ok := asInt64(v); ok {
			return i, nil
		}
	case mapreduce.TypeFloat64:
		switch x := v.(type) {
		case string:
			return strconv.ParseFloat(x, 64)
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		}
		if i, ok := asInt64(v); ok {
			return float64(i), nil
		}
	case mapreduce.TypeString:
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		}
	case mapreduce.TypeBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			return strconv.ParseBool(x)
		}
		if i, ok := asInt64(v); ok && (i == 0 || i == 1) {
			return i == 1, nil
		}
	case mapreduce.TypeDate:
		switch x := v.(type) {
		case mapreduce.Date:
			return x, nil
		case time.Time:
			return mapreduce.DateOf(x), nil
		case string:
			d, err := time.Parse(time.DateOnly, x)
			return mapreduce.DateOf(d), err
		}
	case mapreduce.TypeTimestamp:
		switch x := v.(type) {
		case time.Time:
			return x.UTC(), nil
		case string:
			return parseTime(x)
		}
	case mapreduce.TypeDecimal:
		switch x := v.(type) {
		case *apd.Decimal:
			return new(apd.Decimal).Set(x), nil
		case apd.Decimal:
			return new(apd.Decimal).Set(&x), nil
		case string:
			d, _, err := apd.NewFromString(x)
			return d, err
		}
		if i, ok := asInt64(v); ok {
			return apd.New(i, 0), nil
		}
	case mapreduce.TypeBytes:
		switch x := v.(type) {
		case []byte:
			return bytes.Clone(x), nil
		case string:
			return []byte(x), nil
		}
	}
	return nil, fmt.Errorf("%v (%T) is not a %s", v, v, f.Type)
}

// normalizeArray normalizes an array column's value: a slice, or the JSON
// text that SQLite stores and PostgreSQL's to_json writes.
func normalizeArray(f mapreduce.Field, v any) (any, error) {
	elem := mapreduce.Field{Name: f.Name, Type: f.Type}
	if s, ok := v.(string); ok {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber() // exact decimals and large integers stay exact
		var elems []any
		if err := dec.Decode(&elems); err != nil {
			return nil, fmt.Errorf("array %q: %w", s, err)
		}
		v = elems
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		return nil, fmt.Errorf("%v (%T) is not an array of %s", v, v, f.Type)
	}
	out := make([]any, rv.Len())
	for i := range out {
		e, err := normalize(elem, rv.Index(i).Interface())
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out[i] = e
	}
	return out, nil
}

func asInt64(v any) (int64, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := rv.Uint(); u <= math.MaxInt64 {
			return int64(u), true
		}
	}
	return 0, false
}

// timeLayouts are the timestamp spellings normalize reads: RFC 3339, as
// the SQLite sink and PostgreSQL's to_json write, and PostgreSQL's text.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07"}

func parseTime(s string) (time.Time, error) {
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q is not RFC 3339", s)
}

// format spells a canonical value for messages: strings quoted, so that
// "1" and 1 differ, decimals with their scale, bytes in hex.
func format(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case string:
		return strconv.Quote(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case time.Time:
		return v.Format(time.RFC3339Nano)
	case *apd.Decimal:
		return v.Text('f')
	case []byte:
		return "x'" + hex.EncodeToString(v) + "'"
	case []any:
		elems := make([]string, len(v))
		for i, e := range v {
			elems[i] = format(e)
		}
		return "[" + strings.Join(elems, ", ") + "]"
	}
	return fmt.Sprint(v) // int64, bool, mapreduce.Date
}

// formatRow spells a row, or its first n values, as a tuple.
func formatRow(row []any) string {
	vals := make([]string, len(row))
	for i, v := range row {
		vals[i] = format(v)
	}
	return "(" + strings.Join(vals, ", ") + ")"
}

// compare orders two canonical values of one column: NULL first, then by
// value.
func compare(a, b any) int {
	if a == nil || b == nil {
		switch {
		case a == nil && b == nil:
			return 0
		case a == nil:
			return -1
		}
		return 1
	}
	switch a := a.(type) {
	case int64:
		return cmp.Compare(a, b.(int64))
	case float64:
		return cmp.Compare(a, b.(float64))
	case string:
		return strings.Compare(a, b.(string))
	case bool:
		return cmp.Compare(boolInt(a), boolInt(b.(bool)))
	case mapreduce.Date:
		return cmp.Compare(a, b.(mapreduce.Date))
	case time.Time:
		return a.Compare(b.(time.Time))
	case *apd.Decimal:
		return a.Cmp(b.(*apd.Decimal))
	case []byte:
		return bytes.Compare(a, b.([]byte))
	}
	return strings.Compare(format(a), format(b)) // arrays
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// compareRows orders rows by their first n values.
func compareRows(a, b []any, n int) int {
	for i := range n {
		if c := compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}
