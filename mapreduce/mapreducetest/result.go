package mapreducetest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mrengine/mr/mapreduce"
)

// Result is what a run left: its summary, the rows of its output table and
// its dead letters.
type Result struct {
	Summary mapreduce.Summary
	// Err is nil, or the error wrapping mapreduce.ErrFailureRate of a run
	// that finished with more failed rows than Config.MaxFailureRate (which
	// the harness's Config sets to 1, so only a test that lowers it sees
	// one). Any other error fails the test.
	Err error

	// Table is the output table; Columns its key columns, then its value
	// columns.
	Table   string
	Columns []string
	// Keys is the number of key columns.
	Keys int
	// Rows are the output table's rows sorted by key, each value its
	// column's Go value: int64, float64, string, bool, mapreduce.Date,
	// time.Time in UTC, *apd.Decimal, []byte, []any for an array, nil for
	// NULL.
	Rows [][]any
	// DeadLetters are the rows that failed, in cursor order (see
	// mapreduce.DeadLetters).
	DeadLetters []mapreduce.DeadLetter

	// Stops lists, for KillAndResume, the point at which each interrupted
	// attempt stopped (crashpoint names: "map-spilled", "bucket-applied",
	// "chunk-intent", "chunk-applied"), and Attempts the summaries of all
	// the attempts, Summary last.
	Stops    []string
	Attempts []mapreduce.Summary

	fields []mapreduce.Field // of Columns
}

// CheckRows reports, with t.Errorf, how the output rows differ from want:
// the rows missing, the rows extra, and the rows whose key is there with
// other values. want holds one row per expected output row, in any order,
// with key values then value values; each value may be any spelling its
// column accepts (3 for an int64 or a numeric column, "2026-01-02" for a
// date, "1.50" for a numeric, whose scale counts).
func (r *Result) CheckRows(t TB, want [][]any) {
	t.Helper()
	rows, err := r.normalizeRows(want)
	if err != nil {
		t.Errorf("%s: expected rows: %v", r.Table, err)
		return
	}
	if diff := diffRows(r.Rows, rows, r.Keys); diff != "" {
		t.Errorf("%s %s differs from the expected rows (got %d rows, want %d):\n%s", r.Table, "("+strings.Join(r.Columns, ", ")+")", len(r.Rows), len(rows), diff)
	}
}

func (r *Result) normalizeRows(rows [][]any) ([][]any, error) {
	out := make([][]any, len(rows))
	for i, row := range rows {
		if len(row) != len(r.fields) {
			return nil, fmt.Errorf("row %d %v has %d values, the table has %d columns %v", i, row, len(row), len(r.fields), r.Columns)
		}
		out[i] = make([]any, len(row))
		for j, v := range row {
			n, err := normalize(r.fields[j], v)
			if err != nil {
				return nil, fmt.Errorf("row %d, column %s: %w", i, r.Columns[j], err)
			}
			out[i][j] = n
		}
	}
	return out, nil
}

// diffRows lists, one line each in key order, the rows of want missing
// from got, those of got not in want, and those whose first keys values
// match but not the rest; "" if got and want hold the same rows.
func diffRows(got, want [][]any, keys int) string {
	type pair struct{ got, want [][]any }
	byKey := map[string]*pair{}
	var order [][]any // the first row of each key, to sort the lines
	at := func(row []any) *pair {
		k := formatRow(row[:keys])
		p := byKey[k]
		if p == nil {
			p = &pair{}
			byKey[k] = p
			order = append(order, row)
		}
		return p
	}
	for _, row := range got {
		p := at(row)
		p.got = append(p.got, row)
	}
	for _, row := range want {
		p := at(row)
		p.want = append(p.want, row)
	}
	slices.SortStableFunc(order, func(a, b []any) int { return compareRows(a, b, keys) })
	var lines []string
	for _, first := range order {
		p := byKey[formatRow(first[:keys])]
		if len(p.got) == 1 && len(p.want) == 1 {
			if g, w := formatRow(p.got[0]), formatRow(p.want[0]); g != w {
				lines = append(lines, "  differs "+g+", want "+w)
			}
			continue
		}
		// Missing, extra, or a key that appears more than once.
		g, w := formatRows(p.got), formatRows(p.want)
		for _, row := range w {
			if i := slices.Index(g, row); i >= 0 {
				g = slices.Delete(g, i, i+1)
				continue
			}
			lines = append(lines, "  missing "+row)
		}
		for _, row := range g {
			lines = append(lines, "  extra   "+row)
		}
	}
	return strings.Join(lines, "\n")
}

func formatRows(rows [][]any) []string {
	out := make([]string, len(rows))
	for i, row := range rows {
		out[i] = formatRow(row)
	}
	return out
}

// Failure is an expected dead letter: the cursor of the row that fails,
// and a part of its error message ("" for any message).
type Failure struct {
	Cursor int64
	Error  string
}

// CheckDeadLetters reports, with t.Errorf, how the dead letters differ
// from want, in any order: the failures missing, the letters extra
// (including a row that failed twice), and the letters whose error does
// not contain the expected text.
func (r *Result) CheckDeadLetters(t TB, want ...Failure) {
	t.Helper()
	if diff := diffLetters(r.DeadLetters, want); diff != "" {
		t.Errorf("dead letters of %s differ from the expected (got %d, want %d):\n%s", r.Summary.RunID, len(r.DeadLetters), len(want), diff)
	}
}

func diffLetters(got []mapreduce.DeadLetter, want []Failure) string {
	byCursor := map[int64][]mapreduce.DeadLetter{}
	var cursors []int64
	for _, l := range got {
		if byCursor[l.Cursor] == nil {
			cursors = append(cursors, l.Cursor)
		}
		byCursor[l.Cursor] = append(byCursor[l.Cursor], l)
	}
	wanted := map[int64][]Failure{}
	for _, f := range want {
		if byCursor[f.Cursor] == nil && wanted[f.Cursor] == nil {
			cursors = append(cursors, f.Cursor)
		}
		wanted[f.Cursor] = append(wanted[f.Cursor], f)
	}
	slices.Sort(cursors)
	var lines []string
	for _, c := range cursors {
		letters, fails := byCursor[c], wanted[c]
		for i := range max(len(letters), len(fails)) {
			switch {
			case i >= len(letters):
				lines = append(lines, fmt.Sprintf("  missing cursor %d: %s", c, expected(fails[i].Error)))
			case i >= len(fails):
				lines = append(lines, fmt.Sprintf("  extra   cursor %d: %s", c, letters[i].Error))
			case !strings.Contains(letters[i].Error, fails[i].Error):
				lines = append(lines, fmt.Sprintf("  differs cursor %d: %s, want %s", c, letters[i].Error, expected(fails[i].Error)))
			}
		}
	}
	return strings.Join(lines, "\n")
}

func expected(part string) string {
	if part == "" {
		return "any error"
	}
	return fmt.Sprintf("an error containing %q", part)
}
