// Package sourcetest is the conformance suite of mapreduce.Source: Run
// checks one backend against the contract every source keeps (keyset
// chunks that neither skip nor repeat a row across chunk and range
// boundaries, gaps, negative cursors, cursors at either end of int64,
// empty tables and ranges, concurrent readers, and the shared error
// messages of package sources).
//
// A backend's test calls Run with a function that creates tables in a new
// database and opens a source on it:
//
//	func TestSQLite(t *testing.T) {
//		t.Parallel()
//		sourcetest.Run(t, func(t *testing.T, tables ...sourcetest.Table) mapreduce.Source { … })
//	}
package sourcetest

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mrengine/mr/internal/sqlname"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
	"github.com/mrengine/mr/sources"
)

// Table is a table for a backend to create and fill before a case reads it.
type Table struct {
	Name    string
	Columns []Column
	Rows    [][]any // one value per column: int64, float64, string, []byte or nil
}

// Column is a column of a Table.
type Column struct {
	Name string
	// Type is an SQL type both SQLite and PostgreSQL know: bigint, text,
	// double precision or bytea.
	Type       string
	PrimaryKey bool // the table's primary key, alone
	Unique     bool // has a unique index of its own
}

// Statements returns the statements that create t, with quoted names:
// CREATE TABLE, then CREATE UNIQUE INDEX for each Unique column.
func (t Table) Statements() []string {
	defs := make([]string, len(t.Columns))
	var indexes []string
	for i, c := range t.Columns {
		defs[i] = quote(c.Name) + " " + c.Type
		if c.PrimaryKey {
			defs[i] += " PRIMARY KEY"
		}
		if c.Unique {
			indexes = append(indexes, fmt.Sprintf("CREATE UNIQUE INDEX %s ON %s (%s)",
				quote(t.Name+"_"+c.Name+"_key"), quote(t.Name), quote(c.Name)))
		}
	}
	create := fmt.Sprintf("CREATE TABLE %s (%s)", quote(t.Name), strings.Join(defs, ", "))
	return append([]string{create}, indexes...)
}

// Insert returns an INSERT of one row into t, with param(i) as the
// placeholder of the i-th value, from 1: "?" for SQLite, "$1"… for
// PostgreSQL.
func (t Table) Insert(param func(i int) string) string {
	names, params := make([]string, len(t.Columns)), make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i], params[i] = quote(c.Name), param(i+1)
	}
	return fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", quote(t.Name), strings.Join(names, ", "), strings.Join(params, ", "))
}

func quote(name string) string { return sqlname.Quote(name) }

// NewFunc creates tables, with their rows, in a new and empty database and
// returns a source reading it, closed in t.Cleanup. Run calls it from
// parallel subtests, once per case.
type NewFunc func(t *testing.T, tables ...Table) mapreduce.Source

// ids are the cursor values of the events table: negative, zero, runs and
// gaps of every size.
var ids = []int64{-7, -3, -1, 0, 1, 2, 3, 5, 8, 13, 21, 22, 23, 100, 1000}

// events returns the table most cases read. Its non-cursor columns repeat
// values and hold NULLs, and seq is a second unique integer column.
func events() Table {
	t := Table{Name: "events", Columns: []Column{
		{Name: "id", Type: "bigint", PrimaryKey: true},
		{Name: "account_id", Type: "bigint"},
		{Name: "category", Type: "text"},
		{Name: "amount", Type: "double precision"},
		{Name: "payload", Type: "bytea"},
		{Name: "seq", Type: "bigint", Unique: true},
	}}
	for i, id := range ids {
		var amount, payload any
		if i%4 != 3 {
			amount, payload = float64(id)/4, []byte(fmt.Sprintf(`{"n":%d}`, id))
		}
		t.Rows = append(t.Rows, []any{id, id % 3, []string{"a", "b"}[i%2], amount, payload, int64(len(ids) - i)})
	}
	return t
}

var input = mapreduce.Input{Table: "events", Cursor: "id", Columns: []string{"account_id", "category", "amount", "payload"}}

// row is one row read from a source: its cursor and its values.
type row struct {
	cursor int64
	values []any
}

// want returns the rows of t whose column cursor lies in r, with the given
// columns, in cursor order: what reading r must give.
func want(t Table, cursor string, columns []string, r partition.Range) []row {
	index := func(name string) int {
		return slices.IndexFunc(t.Columns, func(c Column) bool { return c.Name == name })
	}
	var rows []row
	for _, tr := range t.Rows {
		c := tr[index(cursor)].(int64)
		if !r.Contains(c) {
			continue
		}
		values := make([]any, len(columns))
		for i, name := range columns {
			values[i] = tr[index(name)]
		}
		rows = append(rows, row{c, values})
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(a.cursor, b.cursor) })
	return rows
}

// read reads r in chunks of at most limit rows the way the engine does,
// moving past the last cursor of each chunk (Range.After), and checks each
// chunk. It reads on after the range's last value, when the rest is
// empty, to check that an empty rest gives io.EOF.
func read(t *testing.T, src mapreduce.Source, in mapreduce.Input, r partition.Range, limit int) []row {
	t.Helper()
	var rows []row
	b := mapreduce.NewBatch(in.Names())
	for chunk := r; ; {
		b.Reset()
		err := src.ReadChunk(t.Context(), in, chunk, limit, b)
		if err == io.EOF {
			if b.Len() != 0 {
				t.Fatalf("ReadChunk(%v) returned io.EOF with %d rows", chunk, b.Len())
			}
			return rows
		}
		if err != nil {
			t.Fatalf("ReadChunk(%v): %v", chunk, err)
		}
		if b.Len() == 0 || b.Len() > limit {
			t.Fatalf("ReadChunk(%v, limit %d) gave %d rows", chunk, limit, b.Len())
		}
		for i := range b.Len() {
			br := b.Row(i)
			if !chunk.Contains(br.Cursor()) || (len(rows) > 0 && br.Cursor() <= rows[len(rows)-1].cursor) {
				t.Fatalf("ReadChunk(%v) gave cursor %d out of range or order", chunk, br.Cursor())
			}
			values := make([]any, len(in.Names()))
			for c := range values {
				values[c] = br.Value(c)
			}
			rows = append(rows, row{br.Cursor(), values})
		}
		chunk = chunk.After(b.Last())
	}
}

// stream reads r through the source's Streamer in chunks of at most limit
// rows, and checks each chunk.
func stream(t *testing.T, src mapreduce.Streamer, in mapreduce.Input, r partition.Range, limit int) []row {
	t.Helper()
	var rows []row
	b := mapreduce.NewBatch(in.Names())
	err := src.Stream(t.Context(), in, r, limit, b, func(b *mapreduce.Batch) error {
		if b.Len() == 0 || b.Len() > limit {
			t.Fatalf("Stream(%v, limit %d) gave a chunk of %d rows", r, limit, b.Len())
		}
		for i := range b.Len() {
			br := b.Row(i)
			if !r.Contains(br.Cursor()) || (len(rows) > 0 && br.Cursor() <= rows[len(rows)-1].cursor) {
				t.Fatalf("Stream(%v) gave cursor %d out of range or order", r, br.Cursor())
			}
			values := make([]any, len(in.Names()))
			for c := range values {
				values[c] = br.Value(c)
			}
			rows = append(rows, row{br.Cursor(), values})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Stream(%v): %v", r, err)
	}
	return rows
}

func checkRows(t *testing.T, what string, got, want []row) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\ngot  %v\nwant %v", what, got, want)
	}
}

// all is the range of every cursor of the events table.
var all = partition.Through(ids[0], ids[len(ids)-1])

// edgeIDs are the cursor values of the edges table: both ends of int64,
// their neighbours, and ordinary values between.
var edgeIDs = []int64{math.MinInt64, math.MinInt64 + 1, math.MinInt64 + 2, -1, 0, 1, 42, math.MaxInt64 - 2, math.MaxInt64 - 1, math.MaxInt64}

// edges returns the table of edgeIDs, shaped like events.
func edges() Table {
	t := events()
	t.Name, t.Rows = "edges", nil
	for i, id := range edgeIDs {
		t.Rows = append(t.Rows, []any{id, int64(i % 3), []string{"a", "b"}[i%2], float64(i), []byte(fmt.Sprintf(`{"n":%d}`, i)), int64(i)})
	}
	return t
}

// Run runs the conformance suite against the sources newSource opens.
func Run(t *testing.T, newSource NewFunc) {
	type testBundle struct {
		src   mapreduce.Source
		table Table
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		table := events()
		return &testBundle{src: newSource(t, table), table: table}
	}

	t.Run("Describe", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		info, err := bundle.src.Describe(t.Context(), input)
		if err != nil {
			t.Fatal(err)
		}
		if want := (mapreduce.TableInfo{Min: -7, Max: 1000, Rows: int64(len(ids))}); !reflect.DeepEqual(info, want) {
			t.Errorf("Describe = %+v, want %+v", info, want)
		}
	})

	// Expressions and a condition, as a declarative rollup asks: the
	// source computes them per row, reads only the rows the condition
	// holds for, and reports the expressions' types. The table is called
	// by its alias.
	t.Run("Expressions", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		in := mapreduce.Input{Table: "events", Cursor: "id", Alias: "e", Columns: []string{"category"},
			Exprs: []string{"e.account_id * 10 + 1", "account_id"}, Where: "e.category = 'a' OR account_id = 2"}
		info, err := bundle.src.Describe(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"", "bigint"}; len(info.Types) != 2 || info.Types[1] != want[1] ||
			info.Types[0] != "" && info.Types[0] != "bigint" {
			t.Errorf("Describe types = %q, want [bigint bigint] (or \"\" for the expression, where the source cannot tell)", info.Types)
		}
		var wantRows []row
		for _, r := range want(bundle.table, "id", []string{"category", "account_id"}, all) {
			category, account := r.values[0].(string), r.values[1].(int64)
			if category == "a" || account == 2 {
				wantRows = append(wantRows, row{r.cursor, []any{category, account*10 + 1, account}})
			}
		}
		checkRows(t, "rows with expressions", read(t, bundle.src, in, all, 3), wantRows)
		if st, ok := bundle.src.(mapreduce.Streamer); ok {
			checkRows(t, "streamed rows with expressions", stream(t, st, in, all, 3), wantRows)
		}

		bad := in
		bad.Where = "no_such_column > 0"
		_, err = bundle.src.Describe(t.Context(), bad)
		var schemaErr *sources.SchemaError
		if !errors.As(err, &schemaErr) || !strings.Contains(err.Error(), "no_such_column") {
			t.Errorf("Describe with a condition on a missing column = %v, want a *SchemaError naming it", err)
		}
	})

	t.Run("DescribeUniqueIndex", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		in := mapreduce.Input{Table: "events", Cursor: "seq", Columns: []string{"id"}}
		info, err := bundle.src.Describe(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		if want := (mapreduce.TableInfo{Min: 1, Max: int64(len(ids)), Rows: int64(len(ids))}); !reflect.DeepEqual(info, want) {
			t.Errorf("Describe = %+v, want %+v", info, want)
		}
		r := partition.Range{Lo: 1, Hi: int64(len(ids)) + 1}
		checkRows(t, "rows by seq", read(t, bundle.src, in, r, 4), want(bundle.table, "seq", in.Columns, r))
	})

	t.Run("EmptyTable", func(t *testing.T) {
		t.Parallel()
		table := events()
		table.Rows = nil
		src := newSource(t, table)
		info, err := src.Describe(t.Context(), input)
		if err != nil || !reflect.DeepEqual(info, mapreduce.TableInfo{}) {
			t.Fatalf("Describe = %+v, %v; want no rows and no error", info, err)
		}
		if rows := read(t, src, input, partition.Range{Lo: -1 << 40, Hi: 1 << 40}, 10); len(rows) != 0 {
			t.Errorf("read %d rows from an empty table", len(rows))
		}
	})

	t.Run("ReadChunkLimits", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		for _, limit := range []int{1, 2, 3, 7, 1000} {
			checkRows(t, fmt.Sprintf("limit %d", limit), read(t, bundle.src, input, all, limit), want(bundle.table, "id", input.Columns, all))
		}
	})

	t.Run("ReadChunkAdjacentRanges", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		// Boundaries exactly on ids, between ids, and in a run of ids.
		cuts := []int64{-7, -3, -2, 0, 1, 2, 5, 13, 22, 23, 100, 101, 1001}
		for _, limit := range []int{1, 2, 5} {
			var got []row
			for i := 1; i < len(cuts); i++ {
				r := partition.Range{Lo: cuts[i-1], Hi: cuts[i]}
				rows := read(t, bundle.src, input, r, limit)
				checkRows(t, fmt.Sprintf("range %v, limit %d", r, limit), rows, want(bundle.table, "id", input.Columns, r))
				got = append(got, rows...)
			}
			checkRows(t, fmt.Sprintf("all ranges, limit %d", limit), got, want(bundle.table, "id", input.Columns, all))
		}
	})

	t.Run("ReadChunkSplit", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		for n := 1; n <= 9; n++ {
			ranges, err := partition.Split(ids[0], ids[len(ids)-1], n)
			if err != nil {
				t.Fatal(err)
			}
			var got []row
			for _, r := range ranges {
				got = append(got, read(t, bundle.src, input, r, 2)...)
			}
			checkRows(t, fmt.Sprintf("%d partitions", n), got, want(bundle.table, "id", input.Columns, all))
		}
	})

	t.Run("Stream", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		s, ok := bundle.src.(mapreduce.Streamer)
		if !ok {
			t.Skip("the source reads chunk by chunk only")
		}
		for _, limit := range []int{1, 3, 1000} {
			for _, r := range []partition.Range{all, {Lo: -2, Hi: 23}, {Lo: 9, Hi: 13}, {Lo: 5, Hi: 5}} {
				checkRows(t, fmt.Sprintf("stream %v, limit %d", r, limit), stream(t, s, input, r, limit), want(bundle.table, "id", input.Columns, r))
			}
		}
		stop := errors.New("stop")
		calls := 0
		err := s.Stream(t.Context(), input, all, 2, mapreduce.NewBatch(input.Columns), func(*mapreduce.Batch) error {
			calls++
			return stop
		})
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("Stream with a failing fn = %v after %d calls, want fn's error after 1", err, calls)
		}
	})

	// Cursors at math.MinInt64 and math.MaxInt64: the top range holds
	// its last value (ToMax) and no reader computes a bound past it.
	t.Run("Int64Edges", func(t *testing.T) {
		t.Parallel()
		table := edges()
		src := newSource(t, table)
		in := input
		in.Table = table.Name
		info, err := src.Describe(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		if want := (mapreduce.TableInfo{Min: math.MinInt64, Max: math.MaxInt64, Rows: int64(len(edgeIDs))}); !reflect.DeepEqual(info, want) {
			t.Errorf("Describe = %+v, want %+v", info, want)
		}
		whole := partition.Through(info.Min, info.Max)
		everything := want(table, "id", in.Columns, whole)
		if len(everything) != len(edgeIDs) {
			t.Fatalf("%v holds %d of the %d rows", whole, len(everything), len(edgeIDs))
		}
		st, streams := src.(mapreduce.Streamer)
		// readAll reads rs one after another, by chunks and by Stream,
		// and checks each range's rows and then all of them.
		readAll := func(what string, rs []partition.Range, limit int) {
			t.Helper()
			var got, streamed []row
			for _, r := range rs {
				rows := read(t, src, in, r, limit)
				checkRows(t, fmt.Sprintf("%s: range %v, limit %d", what, r, limit), rows, want(table, "id", in.Columns, r))
				got = append(got, rows...)
				if streams {
					streamed = append(streamed, stream(t, st, in, r, limit)...)
				}
			}
			checkRows(t, fmt.Sprintf("%s: all ranges, limit %d", what, limit), got, everything)
			if streams {
				checkRows(t, fmt.Sprintf("%s: all ranges streamed, limit %d", what, limit), streamed, everything)
			}
		}
		// Cuts on, between and beside the edge values; the last range is
		// the one that holds math.MaxInt64.
		cuts := []partition.Range{
			{Lo: math.MinInt64, Hi: math.MinInt64}, {Lo: math.MinInt64, Hi: math.MinInt64 + 1},
			{Lo: math.MinInt64 + 1, Hi: math.MinInt64 + 3}, {Lo: math.MinInt64 + 3, Hi: 0}, {Lo: 0, Hi: 1},
			{Lo: 1, Hi: math.MaxInt64 - 1}, {Lo: math.MaxInt64 - 1, Hi: math.MaxInt64},
			partition.Through(math.MaxInt64, math.MaxInt64),
		}
		for _, limit := range []int{1, 2, 3, 1000} {
			readAll("whole span", []partition.Range{whole}, limit)
			readAll("cuts", cuts, limit)
		}
		for n := 1; n <= 9; n++ {
			ranges, err := partition.Split(info.Min, info.Max, n)
			if err != nil {
				t.Fatal(err)
			}
			readAll(fmt.Sprintf("%d partitions", n), ranges, 2)
		}
		// Ranges that end just short of an edge, or lie empty at one.
		for _, r := range []partition.Range{
			{Lo: math.MinInt64, Hi: math.MinInt64}, {Lo: math.MaxInt64, Hi: math.MaxInt64},
			{Lo: math.MaxInt64 - 1, Hi: math.MaxInt64}, {Lo: math.MinInt64 + 3, Hi: -1}, partition.Through(43, math.MaxInt64-3),
		} {
			checkRows(t, fmt.Sprintf("range %v", r), read(t, src, in, r, 1), want(table, "id", in.Columns, r))
		}
	})

	t.Run("ReadChunkEmptyRange", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		for _, r := range []partition.Range{{Lo: 9, Hi: 13}, {Lo: 5, Hi: 5}, {Lo: 8, Hi: 3}, {Lo: -100, Hi: -7}, {Lo: 1001, Hi: 5000},
			{Lo: math.MinInt64, Hi: math.MinInt64}, {Lo: math.MaxInt64, Hi: math.MaxInt64}, partition.Through(1001, math.MaxInt64)} {
			b := mapreduce.NewBatch(input.Columns)
			if err := bundle.src.ReadChunk(t.Context(), input, r, 10, b); err != io.EOF || b.Len() != 0 {
				t.Errorf("ReadChunk(%v) = %v with %d rows, want io.EOF and none", r, err, b.Len())
			}
		}
	})

	t.Run("ReadChunkNoColumns", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		in := mapreduce.Input{Table: "events", Cursor: "id"}
		checkRows(t, "cursors only", read(t, bundle.src, in, all, 4), want(bundle.table, "id", nil, all))
	})

	t.Run("ReadChunkConcurrent", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		ranges, err := partition.Split(ids[0], ids[len(ids)-1], 8)
		if err != nil {
			t.Fatal(err)
		}
		got := make([][]row, len(ranges))
		var wg sync.WaitGroup
		for i, r := range ranges {
			wg.Go(func() {
				for range 5 {
					got[i] = read(t, bundle.src, input, r, 1)
				}
			})
		}
		wg.Wait()
		checkRows(t, "concurrent partitions", slices.Concat(got...), want(bundle.table, "id", input.Columns, all))
	})

	t.Run("QuotedNames", func(t *testing.T) {
		t.Parallel()
		table := Table{Name: `odd "table"`, Columns: []Column{
			{Name: "order", Type: "bigint", PrimaryKey: true},
			{Name: `it's "quoted"`, Type: "text"},
		}, Rows: [][]any{{int64(1), "a"}, {int64(2), `"; DROP TABLE x; --`}}}
		src := newSource(t, table)
		in := mapreduce.Input{Table: table.Name, Cursor: "order", Columns: []string{`it's "quoted"`}}
		if _, err := src.Describe(t.Context(), in); err != nil {
			t.Fatal(err)
		}
		r := partition.Range{Lo: 0, Hi: 3}
		checkRows(t, "quoted names", read(t, src, in, r, 1), want(table, "order", in.Columns, r))
	})

	t.Run("DescribeErrors", func(t *testing.T) {
		t.Parallel()
		withNulls := events()
		withNulls.Rows = append(withNulls.Rows, []any{int64(2000), nil, nil, nil, nil, nil}, []any{int64(2001), nil, nil, nil, nil, nil})
		src := newSource(t, withNulls)
		cols := "id, account_id, category, amount, payload, seq"
		for _, tt := range []struct {
			name         string
			in           mapreduce.Input
			column, want string // want has %[1]s for the source
		}{
			{"NoTable", mapreduce.Input{Table: "evnts", Cursor: "id"}, "",
				`sources: table "evnts" not found in %[1]s (check --table)`},
			{"NoColumn", mapreduce.Input{Table: "events", Cursor: "id", Columns: []string{"account_id", "amt"}}, "amt",
				`sources: column "amt" not found in table "events" of %[1]s; it has columns ` + cols + ` (check --table, or the job's Input.Columns)`},
			{"NoCursor", mapreduce.Input{Table: "events", Cursor: "event_id"}, "event_id",
				`sources: column "event_id" not found in table "events" of %[1]s; it has columns ` + cols + ` (check --cursor)`},
			{"CursorNotInteger", mapreduce.Input{Table: "events", Cursor: "category"}, "category",
				`sources: cursor column "category" of table "events" in %[1]s has type "text"; it must be an integer column (pick another --cursor)`},
			{"CursorNotUnique", mapreduce.Input{Table: "events", Cursor: "account_id"}, "account_id",
				`sources: cursor column "account_id" of table "events" in %[1]s must be unique: add a unique index or pick another --cursor`},
			{"CursorNulls", mapreduce.Input{Table: "events", Cursor: "seq"}, "seq",
				`sources: cursor column "seq" of table "events" in %[1]s has 2 NULL values: fill them or pick another --cursor`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				_, err := src.Describe(t.Context(), tt.in)
				if want := fmt.Sprintf(tt.want, src); err == nil || err.Error() != want {
					t.Fatalf("Describe error:\ngot  %v\nwant %s", err, want)
				}
				var se *sources.SchemaError
				if !errors.As(err, &se) || se.Table != tt.in.Table || se.Column != tt.column {
					t.Errorf("error %#v is not a *sources.SchemaError for table %q, column %q", err, tt.in.Table, tt.column)
				}
			})
		}
	})
}
