package mapreducetest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/mapreduce/mapreducetest"
	"github.com/mrengine/mr/rollup"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// pageClicks counts the clicks and sums the milliseconds per page; a
// click without a page fails, and one on /panic panics.
func pageClicks() *mapreduce.Job[string, [2]int64] {
	return &mapreduce.Job[string, [2]int64]{
		Name:   "page_clicks",
		Input:  mapreduce.Input{Table: "clicks", Columns: []string{"page", "ms"}},
		Output: mapreduce.Output{Table: "page_clicks"},
		Key: mapreduce.Codec[string]{
			Fields: []mapreduce.Field{{Name: "page", Type: mapreduce.TypeString}},
			Encode: func(k string, e mapreduce.Encoder) { e.String(k) },
			Decode: func(d mapreduce.Decoder) string { return d.String() },
		},
		Value: mapreduce.Codec[[2]int64]{
			Fields: []mapreduce.Field{{Name: "clicks", Type: mapreduce.TypeInt64}, {Name: "total_ms", Type: mapreduce.TypeInt64}},
			Encode: func(v [2]int64, e mapreduce.Encoder) { e.Int64(v[0]); e.Int64(v[1]) },
			Decode: func(d mapreduce.Decoder) [2]int64 { return [2]int64{d.Int64(), d.Int64()} },
		},
		Map: func(_ context.Context, row mapreduce.Row, emit func(string, [2]int64)) error {
			switch {
			case row.Null(0):
				return mapreduce.Permanent(errors.New("click without a page"))
			case row.String(0) == "/panic":
				panic("a page that panics")
			}
			emit(row.String(0), [2]int64{1, row.Int64(1)})
			return nil
		},
		Combine: func(a, b [2]int64) [2]int64 { return [2]int64{a[0] + b[0], a[1] + b[1]} },
	}
}

// clicks is the fixture: 30 clicks on three pages over two days, with
// gaps in the ids, two without a page and one on /panic.
func clicks() mapreducetest.Table {
	tab := mapreducetest.Table{
		Name: "clicks",
		Columns: []mapreducetest.Column{
			{Name: "id", Type: "bigint primary key"},
			{Name: "page", Type: "text"},
			{Name: "ms", Type: "bigint"},
			{Name: "ts", Type: "timestamptz"},
		},
	}
	pages := []string{"/", "/docs", "/pricing"}
	day := time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC)
	for i := range 30 {
		var page any = pages[i%3]
		switch i {
		case 7, 19:
			page = nil
		case 11:
			page = "/panic"
		}
		tab.Rows = append(tab.Rows, []any{i*3 + 1, page, 10 * i, day.Add(time.Duration(i) * 10 * time.Minute)})
	}
	return tab
}

// clicksWant is pageClicks's output over clicks, and clicksFailed its
// dead letters.
var (
	clicksWant = [][]any{
		{"/", 10, 10 * (0 + 3 + 6 + 9 + 12 + 15 + 18 + 21 + 24 + 27)},
		{"/docs", 8, 10 * (1 + 4 + 10 + 13 + 16 + 22 + 25 + 28)},
		{"/pricing", 9, 10 * (2 + 5 + 8 + 14 + 17 + 20 + 23 + 26 + 29)},
	}
	clicksFailed = []mapreducetest.Failure{
		{Cursor: 22, Error: "click without a page"},
		{Cursor: 34, Error: "panic: a page that panics"},
		{Cursor: 58, Error: "click without a page"},
	}
)

// clicksRollup is a declarative rollup over clicks, keyed by a day that mr
// computes and a page.
const clicksRollup = `SELECT date_trunc('day', ts) AS day, page, count(*) AS clicks, sum(ms) AS total_ms, max(ms) AS slowest
	FROM clicks WHERE page IS NOT NULL GROUP BY 1, 2`

// rollupWant is clicksRollup's output: the first 12 clicks fall on
// 2026-11-30, the rest on 2026-12-01.
var rollupWant = [][]any{
	{"2026-11-30T00:00:00Z", "/", 4, 10 * (0 + 3 + 6 + 9), 90},
	{"2026-11-30T00:00:00Z", "/docs", 3, 10 * (1 + 4 + 10), 100},
	{"2026-11-30T00:00:00Z", "/panic", 1, 110, 110},
	{"2026-11-30T00:00:00Z", "/pricing", 3, 10 * (2 + 5 + 8), 80},
	{"2026-12-01T00:00:00Z", "/", 6, 10 * (12 + 15 + 18 + 21 + 24 + 27), 270},
	{"2026-12-01T00:00:00Z", "/docs", 5, 10 * (13 + 16 + 22 + 25 + 28), 280},
	{"2026-12-01T00:00:00Z", "/pricing", 6, 10 * (14 + 17 + 20 + 23 + 26 + 29), 290},
}

// recorder is a TB that keeps the errors the harness reports, for tests
// that check the harness fails a test.
type recorder struct {
	*testing.T
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// wantError fails the test unless exactly one error was reported and it
// contains every part.
func (r *recorder) wantError(parts ...string) {
	r.Helper()
	if len(r.errors) != 1 {
		r.T.Fatalf("got %d errors, want 1: %q", len(r.errors), r.errors)
	}
	for _, p := range parts {
		if !strings.Contains(r.errors[0], p) {
			r.T.Errorf("the error does not contain %q:\n%s", p, r.errors[0])
		}
	}
}

// onEachBackend runs test in a parallel subtest per database, with a
// Harness holding clicks: a fresh SQLite file, and a fresh schema of the
// PostgreSQL that pgtest gives (which fails under CI=true without one).
func onEachBackend(t *testing.T, test func(t *testing.T, h *mapreducetest.Harness)) {
	for _, b := range []struct {
		name string
		opts func(t *testing.T) mapreducetest.Options
	}{
		{"SQLite", func(*testing.T) mapreducetest.Options { return mapreducetest.Options{} }},
		{"Postgres", func(t *testing.T) mapreducetest.Options { return mapreducetest.Options{DSN: pgtest.DSN(t)} }},
	} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			h := mapreducetest.New(t, b.opts(t))
			h.Load(t, clicks())
			test(t, h)
		})
	}
}

func TestHarness_Run(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, h *mapreducetest.Harness) {
		res := h.Run(t, pageClicks())
		res.CheckRows(t, clicksWant)
		res.CheckDeadLetters(t, clicksFailed...)
		if s := res.Summary; s.Processed != 30 || s.Failed != 3 || s.Partitions != 3 || s.Buckets != 3 || s.Chunks < 8 {
			t.Errorf("summary %+v: want 30 rows, 3 failed, over 3 partitions, 3 buckets and at least 8 chunks", s)
		}

		res = h.Run(t, h.Rollup(t, clicksRollup, rollup.Options{Into: "daily_clicks"}))
		res.CheckRows(t, rollupWant)
		res.CheckDeadLetters(t)

		// The same rollup in SQL is an independent truth, which
		// CheckRows takes as it comes from the driver.
		truth := `SELECT date(ts), page, count(*), sum(ms), max(ms) FROM clicks WHERE page IS NOT NULL GROUP BY 1, 2`
		if h.Source().String()[:7] != "sqlite:" {
			truth = `SELECT date_trunc('day', ts AT TIME ZONE 'UTC')::date::text, page, count(*), sum(ms), max(ms) FROM clicks WHERE page IS NOT NULL GROUP BY 1, 2`
		}
		var want [][]any
		for _, row := range h.Query(t, truth) {
			want = append(want, append([]any{fmt.Sprint(row[0]) + "T00:00:00Z"}, row[1:]...))
		}
		res.CheckRows(t, want)
	})
}

func TestRun_OneCall(t *testing.T) {
	t.Parallel()
	res := mapreducetest.Run(t, pageClicks(), clicks())
	res.CheckRows(t, clicksWant)
	res.CheckDeadLetters(t, clicksFailed...)
	if !slices.Equal(res.Columns, []string{"page", "clicks", "total_ms"}) || res.Keys != 1 {
		t.Errorf("columns %v, %d keys", res.Columns, res.Keys)
	}
	if got := res.Rows[0]; got[0] != "/" || got[1] != int64(10) {
		t.Errorf("first row %v, want / and 10 as a string and an int64", got)
	}
}

func TestResult_CheckRows(t *testing.T) {
	t.Parallel()
	t.Run("BrokenCombine", func(t *testing.T) {
		t.Parallel()
		job := pageClicks()
		job.Combine = func(a, _ [2]int64) [2]int64 { return a } // drops b
		rec := &recorder{T: t}
		mapreducetest.Run(t, job, clicks()).CheckRows(rec, clicksWant)
		rec.wantError(`page_clicks (page, clicks, total_ms) differs from the expected rows (got 3 rows, want 3)`,
			`differs ("/", 1, `, `, want ("/", 10, 1350)`)
	})
	t.Run("MissingAndExtra", func(t *testing.T) {
		t.Parallel()
		rec := &recorder{T: t}
		mapreducetest.Run(t, pageClicks(), clicks()).CheckRows(rec, [][]any{
			{"/", 10, 1350},
			{"/about", 1, 5},
			{"/docs", 8, 1190},
			{"/docs", 8, 1190},
		})
		rec.wantError("(got 3 rows, want 4):\n" +
			`  missing ("/about", 1, 5)` + "\n" +
			`  missing ("/docs", 8, 1190)` + "\n" +
			`  extra   ("/pricing", 9, 1440)`)
	})
	t.Run("BadExpectation", func(t *testing.T) {
		t.Parallel()
		rec := &recorder{T: t}
		mapreducetest.Run(t, pageClicks(), clicks()).CheckRows(rec, [][]any{{"/", "ten", 1350}})
		rec.wantError(`row 0, column clicks`)
	})
}

func TestResult_CheckDeadLetters(t *testing.T) {
	t.Parallel()
	rec := &recorder{T: t}
	res := mapreducetest.Run(t, pageClicks(), clicks())
	res.CheckDeadLetters(rec,
		mapreducetest.Failure{Cursor: 22},
		mapreducetest.Failure{Cursor: 34, Error: "not JSON"},
		mapreducetest.Failure{Cursor: 40, Error: "boom"},
	)
	rec.wantError("(got 3, want 3):\n"+
		`  differs cursor 34: panic: a page that panics, want an error containing "not JSON"`+"\n"+
		`  missing cursor 40: an error containing "boom"`+"\n"+
		`  extra   cursor 58: click without a page`,
		"dead letters of "+res.Summary.RunID)
}

func TestHarness_KillAndResume(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, h *mapreducetest.Harness) {
		res := h.KillAndResume(t, pageClicks())
		res.CheckRows(t, clicksWant)
		res.CheckDeadLetters(t, clicksFailed...)
		// 3 partitions of 10 rows in chunks of 4: a commit after each of
		// the 3 chunks and one at the end of the range, then 3 buckets,
		// each before and after its commit, then the swap of the output
		// table, before and after its rename and after its commit.
		want := slices.Concat(slices.Repeat([]string{"map-spilled"}, 12), slices.Repeat([]string{"bucket-started", "bucket-applied"}, 3),
			[]string{"before-swap", "swap-renamed", "swapped"})
		if !slices.Equal(res.Stops, want) {
			t.Errorf("stopped at %v, want %v", res.Stops, want)
		}

		res = h.KillAndResume(t, h.Rollup(t, clicksRollup, rollup.Options{Into: "daily_clicks"}))
		res.CheckRows(t, rollupWant)
		if len(res.Stops) < 10 {
			t.Errorf("the rollup stopped %d times, want one per commit point", len(res.Stops))
		}
	})
}

// TestHarness_KillAndResume_Catches proves that a job whose output depends
// on whether it was resumed fails KillAndResume: its Map counts how often
// it saw each row, against the rule that Map keeps no state.
func TestHarness_KillAndResume_Catches(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[int64]int64{}
	job := pageClicks()
	job.Map = func(_ context.Context, row mapreduce.Row, emit func(string, [2]int64)) error {
		if row.Null(0) || row.String(0) == "/panic" {
			return nil
		}
		mu.Lock()
		seen[row.Cursor()]++
		n := seen[row.Cursor()]
		mu.Unlock()
		emit(row.String(0), [2]int64{n, 0})
		return nil
	}
	rec := &recorder{T: t}
	h := mapreducetest.New(t, mapreducetest.Options{})
	h.Load(t, clicks())
	h.KillAndResume(rec, job)
	rec.wantError("page_clicks: the run stopped 21 times", "differs from the uninterrupted run", `  differs ("/", `)
}
