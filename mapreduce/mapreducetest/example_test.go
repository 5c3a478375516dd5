package mapreducetest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/mapreduce/mapreducetest"
	"github.com/mrengine/mr/rollup"
)

// Clicks counts clicks per page; a click without a page fails.
var Clicks = mapreduce.Job[string, int64]{
	Name:   "clicks_per_page",
	Input:  mapreduce.Input{Table: "clicks", Columns: []string{"page"}},
	Output: mapreduce.Output{Table: "page_clicks"},
	Key: mapreduce.Codec[string]{
		Fields: []mapreduce.Field{{Name: "page", Type: mapreduce.TypeString}},
		Encode: func(k string, e mapreduce.Encoder) { e.String(k) },
		Decode: func(d mapreduce.Decoder) string { return d.String() },
	},
	Value: mapreduce.Codec[int64]{
		Fields: []mapreduce.Field{{Name: "clicks", Type: mapreduce.TypeInt64}},
		Encode: func(v int64, e mapreduce.Encoder) { e.Int64(v) },
		Decode: func(d mapreduce.Decoder) int64 { return d.Int64() },
	},
	Map: func(ctx context.Context, row mapreduce.Row, emit func(string, int64)) error {
		if row.Null(0) {
			return mapreduce.Permanent(errors.New("no page"))
		}
		emit(row.String(0), 1)
		return nil
	},
	Combine: mapreduce.AddInt64,
}

var clicksTable = mapreducetest.Table{
	Name: "clicks",
	Columns: []mapreducetest.Column{
		{Name: "id", Type: "bigint primary key"},
		{Name: "page", Type: "text"},
		{Name: "ms", Type: "bigint"},
	},
	Rows: [][]any{{1, "/", 120}, {2, "/docs", 80}, {3, "/", 40}, {4, nil, 5}, {5, "/pricing", 300}, {6, "/", 60}},
}

// testClicks is a test of the job. In a _test.go file of yours it is
// func TestClicks(t *testing.T), with the same body.
func testClicks(t mapreducetest.TB) {
	res := mapreducetest.Run(t, &Clicks, clicksTable)
	res.CheckRows(t, [][]any{{"/", 3}, {"/docs", 1}, {"/pricing", 1}})
	res.CheckDeadLetters(t, mapreducetest.Failure{Cursor: 4, Error: "no page"})
}

// testSlowPages tests a declarative rollup over the same fixture, and
// checks that its output is the same however often it is interrupted.
func testSlowPages(t mapreducetest.TB) {
	h := mapreducetest.New(t, mapreducetest.Options{}) // Options{DSN: …} for PostgreSQL
	h.Load(t, clicksTable)
	job := h.Rollup(t, `SELECT page, count(*) AS clicks, max(ms) AS slowest FROM clicks WHERE ms > 50 GROUP BY page`,
		rollup.Options{Into: "slow_pages"})
	res := h.KillAndResume(t, job)
	res.CheckRows(t, [][]any{{"/", 2, 120}, {"/docs", 1, 80}, {"/pricing", 1, 300}})
}

// Test a job and a rollup over fixture rows. Examples have no *testing.T,
// so this one runs the tests with exampleT, which prints what they report.
func Example() {
	for name, test := range map[string]func(mapreducetest.TB){"TestClicks": testClicks, "TestSlowPages": testSlowPages} {
		t := &exampleT{}
		test(t)
		t.finish()
		fmt.Printf("%s: %d errors\n", name, t.errors)
	}
	// Unordered output:
	// TestClicks: 0 errors
	// TestSlowPages: 0 errors
}

// A wrong result, or a wrong expectation, fails the test with the rows
// that differ, are missing or are extra, in key order.
func ExampleResult_CheckRows() {
	t := &exampleT{}
	defer t.finish()
	res := mapreducetest.Run(t, &Clicks, clicksTable)
	res.CheckRows(t, [][]any{{"/", 2}, {"/about", 1}})
	// Output:
	// page_clicks (page, clicks) differs from the expected rows (got 3 rows, want 2):
	//   differs ("/", 3), want ("/", 2)
	//   missing ("/about", 1)
	//   extra   ("/docs", 1)
	//   extra   ("/pricing", 1)
}

// exampleT is a TB for examples, which have no *testing.T.
type exampleT struct {
	errors   int
	cleanups []func()
}

func (t *exampleT) Helper() {}

func (t *exampleT) Errorf(format string, args ...any) {
	t.errors++
	fmt.Printf(format+"\n", args...)
}

func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }

func (t *exampleT) TempDir() string {
	dir, err := os.MkdirTemp("", "mapreducetest-example-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// finish runs the cleanups, last registered first, as testing does.
func (t *exampleT) finish() {
	for _, f := range slices.Backward(t.cleanups) {
		f()
	}
}
