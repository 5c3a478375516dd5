package jobs_test

import (
	"fmt"
	"testing"

	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/jobs"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/mapreduce/mapreducetest"
)

// sqlitePayloadsTruth is event_payloads' output computed by SQLite's JSON
// functions, over the rows whose payload is a JSON object.
const sqlitePayloadsTruth = `
	SELECT id, account_id, (SELECT count(*) FROM json_each(payload)),
		CASE WHEN json_type(payload, '$.channel') = 'text' THEN json_extract(payload, '$.channel') END,
		CASE WHEN json_type(payload, '$.items') = 'integer' THEN json_extract(payload, '$.items') END
	FROM events
	WHERE CASE WHEN json_valid(payload) THEN json_type(payload) = 'object' ELSE 0 END`

// checkPayloads compares event_payloads' output with SQLite's, and its
// dead letters with the rows SQLite finds poisoned, each exactly once.
func checkPayloads(t *testing.T, h *mapreducetest.Harness, res *mapreducetest.Result) {
	t.Helper()
	if len(res.Rows) == 0 {
		t.Error("event_payloads is empty")
	}
	res.CheckRows(t, h.Query(t, sqlitePayloadsTruth))
	var poison []mapreducetest.Failure
	for _, row := range h.Query(t, eventgen.SQLitePoisonIDs) {
		poison = append(poison, mapreducetest.Failure{Cursor: row[0].(int64), Error: "payload is"})
	}
	if len(poison) == 0 {
		t.Error("the events hold no poison rows")
	}
	res.CheckDeadLetters(t, poison...)
}

func TestEventPayloads_SQLite(t *testing.T) {
	t.Parallel()
	gen := eventgen.Config{Rows: 2_000, Seed: 9, PoisonRate: 0.004, NullPayloadRate: 0.002, GapEvery: 20, Accounts: 300}
	for _, c := range []struct{ partitions, workers, chunk int }{
		{1, 1, 1000}, // the sequential pattern
		{4, 2, 99},
		{16, 4, 5_000},
	} {
		t.Run(fmt.Sprintf("partitions=%d/workers=%d/chunk=%d", c.partitions, c.workers, c.chunk), func(t *testing.T) {
			t.Parallel()
			h := mapreducetest.New(t, mapreducetest.Options{ConfigFunc: func(cfg *mapreduce.Config) {
				cfg.Partitions, cfg.Workers, cfg.ChunkSize = c.partitions, c.workers, c.chunk
			}})
			h.Load(t, events(gen))
			res := h.Run(t, &jobs.EventPayloads)
			checkPayloads(t, h, res)
			if s := res.Summary; s.Processed != gen.Rows || s.Groups != int64(len(res.Rows)) {
				t.Errorf("summary: %d rows processed, %d groups written; want %d and %d", s.Processed, s.Groups, gen.Rows, len(res.Rows))
			}
		})
	}
}

// TestEventPayloads_SQLite_Resume stops the job at every commit point in
// turn, on either side of every chunk's sink commit, and resumes it.
func TestEventPayloads_SQLite_Resume(t *testing.T) {
	t.Parallel()
	gen := eventgen.Config{Rows: 1_000, Seed: 10, PoisonRate: 0.01, GapEvery: 100}
	h := mapreducetest.New(t, mapreducetest.Options{ConfigFunc: func(cfg *mapreduce.Config) {
		cfg.Partitions, cfg.ChunkSize = 3, 100
	}})
	h.Load(t, events(gen))
	res := h.KillAndResume(t, &jobs.EventPayloads)
	checkPayloads(t, h, res)
	if len(res.Stops) < 2*int(gen.Rows)/100 {
		t.Errorf("the run stopped %d times; want twice per chunk", len(res.Stops))
	}
}

// TestEventPayloads_Fields parses payloads at the edges of what the job
// extracts.
func TestEventPayloads_Fields(t *testing.T) {
	t.Parallel()
	tab := events(eventgen.Config{Rows: 0})
	ts := "2026-03-01T10:00:00Z"
	for i, p := range []any{
		`{"channel":"web","items":3,"v":1}`,
		` {"a":1,"a":2} `,                // a key given twice counts once
		`{"channel":5,"items":1.5}`,      // not a string, not an integer
		`{"items":-12,"channel":"p\"s"}`, // an escaped string
		`{}`,
		`[1,2]`,
		`null`,
		`{"channel":`,
		nil,
	} {
		tab.Rows = append(tab.Rows, []any{int64(i + 1), int64(7), ts, "food", int64(1), p})
	}
	res := mapreducetest.Run(t, &jobs.EventPayloads, tab)
	res.CheckRows(t, [][]any{
		{1, 7, 3, "web", 3},
		{2, 7, 1, nil, nil},
		{3, 7, 2, nil, nil},
		{4, 7, 2, `p"s`, -12},
		{5, 7, 0, nil, nil},
	})
	res.CheckDeadLetters(t,
		mapreducetest.Failure{Cursor: 6, Error: "payload is not a JSON object"},
		mapreducetest.Failure{Cursor: 7, Error: "payload is not a JSON object"},
		mapreducetest.Failure{Cursor: 8, Error: "payload is not a JSON object"},
		mapreducetest.Failure{Cursor: 9, Error: "payload is NULL"},
	)
}
