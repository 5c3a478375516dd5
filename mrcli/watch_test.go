package mrcli

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/mapreduce"
)

// TestStatus_Watch runs a job slowed down to a commit per small chunk over
// many partitions, and watches it with mr status --watch, as text and as
// JSON lines, from its plan to its end: the rows shown only grow, some
// refresh shows the run part-way through its map phase, and the last one
// shows it done, after which the watch exits 0.
func TestStatus_Watch(t *testing.T) {
	t.Parallel()
	source := seedEvents(t, eventgen.Config{Rows: 5000, Seed: 21})
	workdir := t.TempDir()
	args := []string{"run", "daily_rollup", "--source", source, "--workdir", workdir, "--partitions", "12", "--buckets", "4",
		"--workers", "1", "--chunk-size", "100", "--checkpoint-interval", "1ns"}
	explain := runMR(t, append(args, "--explain")...)
	if explain.code != ExitOK {
		t.Fatalf("--explain: exit %d, stderr:\n%s", explain.code, explain.stderr)
	}
	run := runID(t, explain.stdout)

	var wg sync.WaitGroup
	var ran result
	wg.Go(func() { ran = runMR(t, args...) })
	cfg := mapreduce.DefaultConfig()
	cfg.Workdir = workdir
	for { // the watch needs the plan, which the run saves before it maps
		if _, err := mapreduce.Inspect(context.Background(), cfg, run); !errors.Is(err, mapreduce.ErrNoRun) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	var text, lines result
	wg.Go(func() { text = runMR(t, "status", run, "--watch", "--interval", "50ms", "--workdir", workdir) })
	wg.Go(func() {
		lines = runMR(t, "status", run, "--watch", "--json", "--interval", "50ms", "--workdir", workdir)
	})
	wg.Wait()
	if ran.code != ExitOK {
		t.Fatalf("run: exit %d, stderr:\n%s", ran.code, ran.stderr)
	}

	if text.code != ExitOK || text.stderr != "" {
		t.Fatalf("--watch: exit %d, stderr:\n%s", text.code, text.stderr)
	}
	blocks := strings.Split(text.stdout, "\n\n")
	mapLine := regexp.MustCompile(`(?m)^map +(\d+)/5000 rows`)
	var rows []int
	for _, block := range blocks {
		m := mapLine.FindStringSubmatch(block)
		if m == nil {
			t.Fatalf("a block without a map line:\n%s", block)
		}
		n, _ := strconv.Atoi(m[1])
		rows = append(rows, n)
	}
	midway := false
	for i, n := range rows {
		if i > 0 && n < rows[i-1] {
			t.Errorf("rows went down from %d to %d between refreshes", rows[i-1], n)
		}
		midway = midway || n > 0 && n < 5000
	}
	if len(blocks) < 3 || !midway {
		t.Errorf("%d refreshes with rows %v, want some part-way through the map phase", len(blocks), rows)
	}
	last := blocks[len(blocks)-1]
	for _, want := range []string{"run      " + run + " (done) at ", "map      5000/5000 rows, 0 failed, ", "12/12 partitions done",
		"  0 done ", "reduce   4/4 buckets done\n"} {
		if !strings.Contains(last, want) {
			t.Errorf("the last refresh lacks %q:\n%s", want, last)
		}
	}
	for _, block := range blocks {
		if strings.Contains(block, "(mapping)") && regexp.MustCompile(`rows \(\d+\.\d%\), (\d+|-) rows/s, ETA `).FindString(block) == "" {
			t.Errorf("a refresh of the map phase without rate and ETA:\n%s", block)
			break
		}
	}
	t.Logf("%d refreshes; one part-way:\n%s", len(blocks), blocks[len(blocks)/2])

	if lines.code != ExitOK || lines.stderr != "" {
		t.Fatalf("--watch --json: exit %d, stderr:\n%s", lines.code, lines.stderr)
	}
	var prev int64
	var docs []watchJSON
	for line := range strings.Lines(lines.stdout) {
		var doc watchJSON
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatalf("a line that is not one JSON object (%v): %q", err, line)
		}
		if doc.RowsRead < prev {
			t.Errorf("rows_read went down from %d to %d", prev, doc.RowsRead)
		}
		prev = doc.RowsRead
		docs = append(docs, doc)
	}
	end := docs[len(docs)-1]
	if len(docs) < 3 || end.State != "done" || end.Phase != "done" || end.RowsRead != 5000 || end.BucketsDone != 4 ||
		len(end.PartitionCells) != 12 || end.PartitionCells[0] != "done" || end.BytesSpilled <= 0 || end.ETASeconds == nil {
		t.Errorf("%d JSON lines, the last %+v", len(docs), end)
	}
}

// TestWatcher_Rate checks the rate and ETA of refreshes: unknown at the
// first, then the change over the refreshes of the last rateWindow.
func TestWatcher_Rate(t *testing.T) {
	t.Parallel()
	plan := &mapreduce.Plan{RunID: "r", Rows: 1000, Buckets: 2, Partitions: make([]mapreduce.Partition, 1)}
	at := func(rows int64) *mapreduce.RunInfo {
		return &mapreduce.RunInfo{Plan: plan, Checkpoints: []*mapreduce.Checkpoint{{Rows: rows, Seq: 1}}}
	}
	var w watcher
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if v := w.view(at(0), t0); v.known || v.eta() != -1 || v.rateText() != "- rows/s" {
		t.Errorf("first refresh: rate %v known %v, eta %v", v.rate, v.known, v.eta())
	}
	if v := w.view(at(100), t0.Add(time.Second)); v.rate != 100 || v.eta() != 9*time.Second {
		t.Errorf("after 1s and 100 rows: rate %v, eta %v; want 100 and 9s", v.rate, v.eta())
	}
	// 20s on, the first two refreshes are out of the window.
	w.view(at(500), t0.Add(15*time.Second))
	if v := w.view(at(600), t0.Add(20*time.Second)); v.rate != 20 || v.eta() != 20*time.Second || v.etaText() != "ETA 20s" {
		t.Errorf("rate %v, eta %v; want 20 (over the last 5s) and 20s", v.rate, v.eta())
	}
}
