package sinktest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/mrengine/mr/mapreduce"
)

// Parts is a mapreduce.MergeParts over parts held in memory, for tests of
// a Merger. Each part is a list of new rows (key values, then every value
// of the table); Merge combines each with the stored row of its key by
// CombineFunc and keeps a copy of the stored rows it read, so that a test
// can check what the sink handed over. Merge fails if the stored rows hold
// a key twice or one that is not in the part.
//
// With Lookback set, Window returns it and Owned returns the stored keys
// that OwnedFunc owns, keeping a copy of all it read; Owned fails if it
// is called after Next, which the Merger contract rules out.
//
// Set Fail and FailPart to make it fail with FailErr at one point of one part
// (counted from 0). It is not safe for concurrent use; give each Merge a
// Parts of its own.
type Parts struct {
	KeyCols int       // how many of a row's values are its key
	Parts   [][][]any // the new rows of each part
	// CombineFunc returns the row to upsert for a new row and the stored
	// row of its key (key values, then the values of the Merge's cols),
	// which is nil for a key the table does not hold.
	CombineFunc func(stored, row []any) []any

	// Lookback is what Window returns: nil for a plain merge.
	Lookback *mapreduce.Window
	// OwnedFunc reports whether the bucket owns a stored key of the
	// window, whose rows the Merger then deletes; nil owns every key.
	OwnedFunc func(key []any) bool
	// Windowed holds the stored keys that Owned read, by its last call;
	// Owneds counts its calls.
	Windowed [][]any
	Owneds   int

	Fail     FailPoint
	FailPart int
	FailErr  error

	// Stored holds, for each call of Merge, the stored rows it read.
	Stored [][][]any
	// Nexts counts the calls of Next, Merges those of Merge.
	Nexts, Merges int

	i   int // the part loaded: Nexts-1
	err error
}

// FailPoint is where a Parts fails.
type FailPoint int

const (
	NoFailure  FailPoint = iota
	FailNext             // Next returns false instead of loading the part; Err returns the error
	FailKeys             // the part's Keys fail (their Err) after the first key
	FailMerge            // Merge returns the error, after reading the stored rows
	FailMerged           // the rows that Merge returns fail (their Err) after the first row
	FailOwned            // Owned returns the error, after reading the stored keys (FailPart does not count)
)

var _ mapreduce.MergeParts = (*Parts)(nil)

// Next loads the next part.
func (p *Parts) Next() bool {
	p.Nexts++
	p.i = p.Nexts - 1
	if p.Fail == FailNext && p.i == p.FailPart {
		p.err = p.FailErr
	}
	return p.err == nil && p.i < len(p.Parts)
}

func (p *Parts) failing(at FailPoint) bool { return p.Fail == at && p.i == p.FailPart }

// Keys iterates over the key values of the part's rows.
func (p *Parts) Keys() mapreduce.OutputRows {
	keys := make([][]any, len(p.Parts[p.i]))
	for i, row := range p.Parts[p.i] {
		keys[i] = row[:p.KeyCols]
	}
	rows := rowsOf(keys)
	if p.failing(FailKeys) {
		rows.err, rows.failAt = p.FailErr, 1
	}
	return rows
}

// Merge reads the stored rows to their end and returns the part's rows,
// each combined with its stored row by CombineFunc.
func (p *Parts) Merge(stored mapreduce.OutputRows) (mapreduce.OutputRows, error) {
	p.Merges++
	byKey := map[string][]any{}
	var read [][]any
	for stored.Next() {
		values, err := stored.Values()
		if err != nil {
			return nil, err
		}
		row := slices.Clone(values)
		read = append(read, row)
		key := Canon(row[:p.KeyCols])
		if _, dup := byKey[key]; dup {
			return nil, fmt.Errorf("the stored rows hold the key %s twice", key)
		}
		byKey[key] = row
	}
	if err := stored.Err(); err != nil {
		return nil, err
	}
	p.Stored = append(p.Stored, read)
	if p.failing(FailMerge) {
		return nil, p.FailErr
	}
	out := make([][]any, len(p.Parts[p.i]))
	for i, row := range p.Parts[p.i] {
		key := Canon(row[:p.KeyCols])
		out[i] = p.CombineFunc(byKey[key], row)
		delete(byKey, key)
	}
	if len(byKey) > 0 {
		return nil, fmt.Errorf("the stored rows hold %d keys that are not in the part", len(byKey))
	}
	rows := rowsOf(out)
	if p.failing(FailMerged) {
		rows.err, rows.failAt = p.FailErr, 1
	}
	return rows, nil
}

// Window returns Lookback.
func (p *Parts) Window() *mapreduce.Window { return p.Lookback }

// Owned reads the stored keys of the window to their end and returns
// those that OwnedFunc owns.
func (p *Parts) Owned(stored mapreduce.OutputRows) (mapreduce.OutputRows, error) {
	p.Owneds++
	if p.Nexts > 0 {
		return nil, errors.New("the Merger called Owned after Next, not before the first part")
	}
	var read, owned [][]any
	for stored.Next() {
		values, err := stored.Values()
		if err != nil {
			return nil, err
		}
		key := slices.Clone(values)
		read = append(read, key)
		if p.OwnedFunc == nil || p.OwnedFunc(key) {
			owned = append(owned, key)
		}
	}
	if err := stored.Err(); err != nil {
		return nil, err
	}
	p.Windowed = read
	if p.Fail == FailOwned {
		return nil, p.FailErr
	}
	return rowsOf(owned), nil
}

// Err returns the error that ended the parts.
func (p *Parts) Err() error { return p.err }

// Canon writes values with their Go types, exactly: two rows are equal
// as sink values if and only if their Canon is. A decimal shows its
// scale (1.50 is not 1.5), a timestamp its nanoseconds and location, and
// nil (NULL) is not an empty []byte.
func Canon(values []any) string {
	parts := make([]string, len(values))
	for i, v := range values {
		switch x := v.(type) {
		case nil:
			parts[i] = "NULL"
		case float64:
			parts[i] = "float64 " + strconv.FormatFloat(x, 'g', -1, 64)
		case string:
			parts[i] = "string " + strconv.Quote(x)
		case mapreduce.Date:
			parts[i] = "date " + x.String()
		case time.Time:
			parts[i] = "timestamp " + x.Format(time.RFC3339Nano) + " " + x.Location().String()
		case *apd.Decimal:
			if x == nil {
				parts[i] = "decimal nil"
				break
			}
			parts[i] = fmt.Sprintf("decimal %s (exponent %d)", x.Text('f'), x.Exponent)
		case []byte:
			parts[i] = fmt.Sprintf("bytes %x", x)
		default:
			parts[i] = fmt.Sprintf("%T %v", v, v)
		}
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
