package mapreducetest_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/mapreduce/mapreducetest"
	"github.com/mrengine/mr/rollup"
)

// edgeClicks is the clicks table with cursors at both ends of int64, their
// neighbours, the cuts of the harness's three equal-width partitions over
// all of int64 (partition.Split) and the values beside them, and ordinary
// ones; the click at math.MaxInt64 has no page, so its dead letter names
// the largest cursor.
func edgeClicks() mapreducetest.Table {
	const cut1, cut2 = -3074457345618258603, 3074457345618258602
	ids := []int64{math.MinInt64, math.MinInt64 + 1, math.MinInt64 + 2, cut1 - 1, cut1, cut1 + 1, -1, 0, 1, 2, 1000,
		cut2 - 1, cut2, cut2 + 1, math.MaxInt64 - 2, math.MaxInt64 - 1, math.MaxInt64}
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
	for i, id := range ids {
		var page any = pages[i%3]
		if id == math.MaxInt64 {
			page = nil
		}
		tab.Rows = append(tab.Rows, []any{id, page, 10 * i, day.Add(time.Duration(i) * 10 * time.Minute)})
	}
	return tab
}

// edgeRollup keeps the extreme cursors themselves in the output: an id
// read twice or not at all shows in the counts, and one read wrong in the
// bounds.
const edgeRollup = `SELECT page, count(*) AS clicks, sum(ms) AS total_ms, min(id) AS first, max(id) AS last
	FROM clicks WHERE page IS NOT NULL GROUP BY 1`

// TestInt64Edges runs a job and a rollup over cursors at math.MinInt64 and
// math.MaxInt64, uninterrupted and stopped at every commit point, on each
// backend: SQLite plans equal widths and reads by chunks, PostgreSQL
// splits by its statistics and streams (the rollup aggregating in the
// database). The output must equal the database's own GROUP BY.
func TestInt64Edges(t *testing.T) {
	t.Parallel()
	onEachEdgeBackend(t, func(t *testing.T, opts mapreducetest.Options) {
		h := loadEdges(t, opts)
		truth := h.Query(t, `SELECT page, count(*), sum(ms) FROM clicks WHERE page IS NOT NULL GROUP BY page`)
		rollupTruth := h.Query(t, `SELECT page, count(*), sum(ms), min(id), max(id) FROM clicks WHERE page IS NOT NULL GROUP BY page`)
		if len(truth) != 3 || len(rollupTruth) != 3 {
			t.Fatalf("the fixture's truth has %d and %d groups, want 3", len(truth), len(rollupTruth))
		}
		failed := mapreducetest.Failure{Cursor: math.MaxInt64, Error: "click without a page"}

		for _, run := range []struct {
			name string
			run  func(t mapreducetest.TB, def mapreduce.Definition) *mapreducetest.Result
		}{{"Run", h.Run}, {"KillAndResume", h.KillAndResume}} {
			res := run.run(t, pageClicks())
			res.CheckRows(t, truth)
			res.CheckDeadLetters(t, failed)
			if s, rows := res.Summary, len(edgeClicks().Rows); s.Processed != int64(rows) || s.Failed != 1 {
				t.Errorf("%s: summary %+v, want %d rows, 1 failed", run.name, s, rows)
			}

			res = run.run(t, h.Rollup(t, edgeRollup, rollup.Options{Into: "edge_clicks"}))
			res.CheckRows(t, rollupTruth)
			res.CheckDeadLetters(t)
			if run.name == "KillAndResume" && len(res.Stops) < 10 {
				t.Errorf("the rollup stopped %d times, want one per commit point", len(res.Stops))
			}
		}
	})
}

// TestInt64Edges_Replay fixes the click at math.MaxInt64 and replays the
// dead letters: the replay reads that one row (a range of one cursor, with
// no bound above it) and the output comes out as if it never failed.
func TestInt64Edges_Replay(t *testing.T) {
	t.Parallel()
	onEachEdgeBackend(t, func(t *testing.T, opts mapreducetest.Options) {
		workdir := t.TempDir() // the run's and the replay's
		opts.ConfigFunc = func(cfg *mapreduce.Config) { cfg.Workdir = workdir }
		h := loadEdges(t, opts)
		res := h.Run(t, pageClicks())
		res.CheckDeadLetters(t, mapreducetest.Failure{Cursor: math.MaxInt64, Error: "click without a page"})
		h.Exec(t, `UPDATE clicks SET page = '/docs' WHERE id = 9223372036854775807`)
		cfg := mapreducetest.Config(t)
		opts.ConfigFunc(&cfg)
		rr, err := mapreduce.Replay(t.Context(), pageClicks(), h.Source(), h.Sink(), cfg)
		if err != nil || rr.Letters != 1 || rr.Succeeded != 1 || rr.Failed != 0 {
			t.Fatalf("Replay = %+v, %v; want the one letter replayed", rr, err)
		}
		got := h.Query(t, `SELECT page, clicks, total_ms FROM page_clicks ORDER BY page`)
		want := h.Query(t, `SELECT page, count(*), sum(ms) FROM clicks GROUP BY page ORDER BY page`)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("after the replay page_clicks holds %v, want %v", got, want)
		}
	})
}

// onEachEdgeBackend runs test in parallel subtests with the Options of
// each backend: a fresh SQLite file, and a fresh schema of the PostgreSQL
// that pgtest gives.
func onEachEdgeBackend(t *testing.T, test func(t *testing.T, opts mapreducetest.Options)) {
	for _, b := range []struct {
		name string
		opts func(t *testing.T) mapreducetest.Options
	}{
		{"SQLite", func(*testing.T) mapreducetest.Options { return mapreducetest.Options{} }},
		{"Postgres", func(t *testing.T) mapreducetest.Options { return mapreducetest.Options{DSN: pgtest.DSN(t)} }},
	} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b.opts(t))
		})
	}
}

// loadEdges opens a Harness with opts and loads edgeClicks into it.
func loadEdges(t *testing.T, opts mapreducetest.Options) *mapreducetest.Harness {
	t.Helper()
	h := mapreducetest.New(t, opts)
	h.Load(t, edgeClicks())
	return h
}
