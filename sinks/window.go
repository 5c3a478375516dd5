package sinks

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/mrengine/mr/mapreduce"
)

// checkWindow checks, before Merge writes any SQL, that w is over a key
// column of t and that w.From is a value of that column's field type.
// The type matters most to SQLite, which compares values of different
// storage classes by class, not value (every integer sorts before every
// text): an int64 From on a date column would put every stored group in
// the window, and the bucket would delete groups its parts never
// recompute.
func checkWindow(t mapreduce.OutputTable, w *mapreduce.Window) error {
	i := slices.IndexFunc(t.Keys, func(f mapreduce.Field) bool { return f.Name == w.Column })
	if i < 0 {
		names := make([]string, len(t.Keys))
		for j, f := range t.Keys {
			names[j] = fmt.Sprintf("%q", f.Name)
		}
		return fmt.Errorf("the lookback window is over column %q, which is not a key column of table %q (its key columns are %s)",
			w.Column, t.Name, strings.Join(names, ", "))
	}
	f := t.Keys[i]
	if f.Array || !ofType(f.Type, w.From) {
		return fmt.Errorf("the lookback window of column %q starts at %v (%T), which is no value of the column's type %s",
			w.Column, w.From, w.From, f.Type)
	}
	return nil
}

// ofType reports whether v is a non-NULL OutputRows value of typ.
func ofType(typ mapreduce.Type, v any) bool {
	switch x := v.(type) {
	case int64:
		return typ == mapreduce.TypeInt64
	case float64:
		return typ == mapreduce.TypeFloat64
	case string:
		return typ == mapreduce.TypeString
	case bool:
		return typ == mapreduce.TypeBool
	case mapreduce.Date:
		return typ == mapreduce.TypeDate
	case time.Time:
		return typ == mapreduce.TypeTimestamp
	case *apd.Decimal:
		return typ == mapreduce.TypeDecimal && x != nil
	case []byte:
		return typ == mapreduce.TypeBytes && x != nil
	}
	return false
}
