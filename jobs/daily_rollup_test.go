package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/jobs"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/mapreduce/mapreducetest"
)

// events is the events table eventgen seeds, as a fixture: timestamps as
// RFC 3339 text with their zone's offset, as SQLite keeps them, so that
// the job must find each instant's UTC day itself.
func events(gen eventgen.Config) mapreducetest.Table {
	tab := mapreducetest.Table{
		Name: eventgen.Table,
		Columns: []mapreducetest.Column{
			{Name: "id", Type: "INTEGER PRIMARY KEY"},
			{Name: "account_id", Type: "BIGINT NOT NULL"},
			{Name: "ts", Type: "TEXT NOT NULL"},
			{Name: "category", Type: "TEXT NOT NULL"},
			{Name: "amount_cents", Type: "BIGINT NOT NULL"},
			{Name: "payload", Type: "TEXT"},
		},
	}
	for e := range gen.All() {
		var payload any
		if e.Payload.Valid {
			payload = e.Payload.String
		}
		tab.Rows = append(tab.Rows, []any{e.ID, e.AccountID, e.TSText(), e.Category, e.AmountCents, payload})
	}
	return tab
}

// checkTruth compares daily_rollup's output with the same aggregate
// computed by SQLite, and its dead letters with the rows SQLite finds
// poisoned, each exactly once.
func checkTruth(t *testing.T, h *mapreducetest.Harness, res *mapreducetest.Result) {
	t.Helper()
	if len(res.Rows) == 0 {
		t.Error("daily_rollup is empty")
	}
	res.CheckRows(t, h.Query(t, eventgen.SQLiteTruth))
	var poison []mapreducetest.Failure
	for _, row := range h.Query(t, eventgen.SQLitePoisonIDs) {
		poison = append(poison, mapreducetest.Failure{Cursor: row[0].(int64), Error: "payload is"})
	}
	if len(poison) == 0 {
		t.Error("the events hold no poison rows")
	}
	res.CheckDeadLetters(t, poison...)
}

func TestDailyRollup_SQLite(t *testing.T) {
	t.Parallel()
	gen := eventgen.Config{Rows: 5_000, Seed: 7, PoisonRate: 0.004, NullPayloadRate: 0.002, GapEvery: 20, Accounts: 300}
	for _, c := range []struct {
		partitions, buckets, workers, chunk int
		hole                                bool // delete the middle 40% of the ids
	}{
		{1, 1, 1, 1000, false},
		{4, 8, 2, 999, false},
		{3, 5, 4, 1, false},
		{10, 3, 2, 64, true}, // partitions 4 to 6 are empty
		{16, 16, 8, 5_000, true},
	} {
		t.Run(fmt.Sprintf("partitions=%d/buckets=%d/workers=%d/chunk=%d/hole=%t", c.partitions, c.buckets, c.workers, c.chunk, c.hole), func(t *testing.T) {
			t.Parallel()
			h := mapreducetest.New(t, mapreducetest.Options{ConfigFunc: func(cfg *mapreduce.Config) {
				cfg.Partitions, cfg.Buckets, cfg.Workers, cfg.ChunkSize = c.partitions, c.buckets, c.workers, c.chunk
				cfg.CheckpointInterval = mapreduce.DefaultConfig().CheckpointInterval // commit at the end, as users run it
			}})
			h.Load(t, events(gen))
			if c.hole {
				h.Exec(t, `DELETE FROM events WHERE id BETWEEN
					(SELECT min(id) + (max(id) - min(id)) * 3 / 10 FROM events) AND
					(SELECT min(id) + (max(id) - min(id)) * 7 / 10 FROM events)`)
			}
			res := h.Run(t, &jobs.DailyRollup)
			checkTruth(t, h, res)
			rows := h.Query(t, `SELECT count(*) FROM events`)[0][0].(int64)
			if s := res.Summary; s.Processed != rows || s.Total != rows {
				t.Errorf("summary: %d/%d rows processed, want %d", s.Processed, s.Total, rows)
			}
		})
	}
}

// TestDailyRollup_SQLite_Resume stops the job at every commit point in
// turn and resumes it: the output and the dead letters must come out as
// SQLite computes them, and no attempt may read again a chunk that an
// earlier one committed.
func TestDailyRollup_SQLite_Resume(t *testing.T) {
	t.Parallel()
	gen := eventgen.Config{Rows: 4_000, Seed: 8, PoisonRate: 0.005, GapEvery: 100}
	const chunk = 250 // about 4 chunks per partition, each a commit point
	h := mapreducetest.New(t, mapreducetest.Options{ConfigFunc: func(cfg *mapreduce.Config) {
		cfg.Partitions, cfg.Buckets, cfg.ChunkSize = 4, 4, chunk
	}})
	h.Load(t, events(gen))
	res := h.KillAndResume(t, &jobs.DailyRollup)
	checkTruth(t, h, res)

	// A stop before a checkpoint loses the chunk read since the last one
	// (commits follow every chunk), which the next attempt reads again.
	var read int64
	for _, s := range res.Attempts {
		read += s.Read
	}
	lost := int64(chunk * len(slices.DeleteFunc(slices.Clone(res.Stops), func(p string) bool { return p != "map-spilled" })))
	if read < gen.Rows || read > gen.Rows+lost {
		t.Errorf("%d attempts read %d rows in all; want %d rows, plus at most %d re-read after %d stops", len(res.Attempts), read, gen.Rows, lost, len(res.Stops))
	}
}

// TestDailyRollup_Overflow sums one account's cents past the largest
// bigint: the run stops, naming the group, and writes no wrapped negative
// total.
func TestDailyRollup_Overflow(t *testing.T) {
	t.Parallel()
	tab := events(eventgen.Config{Rows: 0})
	ts := "2026-03-01T10:00:00Z"
	tab.Rows = [][]any{
		{int64(1), int64(7), ts, "food", int64(math.MaxInt64 - 100), "{}"},
		{int64(2), int64(7), ts, "rent", int64(60), "{}"},
		{int64(3), int64(7), ts, "food", int64(60), "{}"},
		{int64(4), int64(7), ts, "food", int64(60), "{}"}, // past the largest bigint
	}
	h := mapreducetest.New(t, mapreducetest.Options{})
	h.Load(t, tab)
	_, err := mapreduce.Run(context.Background(), &jobs.DailyRollup, h.Source(), h.Sink(), mapreducetest.Config(t))
	const want = "the values of key {7 2026-03-01 food} overflow as they combine (integer overflow: "
	if !errors.Is(err, mapreduce.ErrOverflow) || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to contain %q", err, want)
	}
	if n := h.Query(t, `SELECT count(*) FROM daily_rollup`)[0][0].(int64); n != 0 {
		t.Errorf("daily_rollup has %d rows after the failed run", n)
	}
}
