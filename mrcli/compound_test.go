package mrcli

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/mrengine/mr/internal/crashpoint"
	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
)

// TestCompoundCursor_PostgresKillMidMap runs daily_rollup --cursor ts,id
// over events whose rows share timestamps by the thousand, kills it with
// SIGKILL between a spill and its checkpoint, and resumes: the output is
// PostgreSQL's GROUP BY, and the DLQ holds every poison row once, named
// by its (ts, id).
func TestCompoundCursor_PostgresKillMidMap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	db := pgtest.PoolFor(t, dsn)
	if err := eventgen.SeedPostgres(ctx, db, eventgen.Config{Rows: 10_000, Seed: 1, PoisonRate: 0.005}, false); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		// Most rows share their hour's first instant; one in ten shares the
		// table's first timestamp, 1,000 rows, ten chunks.
		`UPDATE events SET ts = date_trunc('hour', ts) WHERE id % 4 <> 0`,
		`UPDATE events SET ts = (SELECT min(ts) FROM events) WHERE id % 10 = 1`,
		`CREATE INDEX ON events (ts, id)`,
		`ANALYZE events`,
	} {
		if _, err := db.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	workdir := t.TempDir()
	args := []string{"run", "daily_rollup", "--cursor", "ts,id", "--source", dsn, "--workdir", workdir,
		"--workers", "2", "--partitions", "4", "--buckets", "4", "--chunk-size", "100", "--checkpoint-interval", "1ns"}
	out, err := mrCommand(t, []string{crashpoint.Env + "=" + crashpoint.MapSpilled + ":5"}, args...).CombinedOutput()
	if !killed(err) {
		t.Fatalf("mr was not killed at %s: %v\n%s", crashpoint.MapSpilled, err, out)
	}
	dirs, err := os.ReadDir(workdir)
	if err != nil || len(dirs) != 1 {
		t.Fatalf("workdir holds %v (%v), want one run", dirs, err)
	}
	ri, err := mapreduce.Inspect(ctx, mapreduce.Config{Workdir: workdir}, dirs[0].Name())
	if err != nil {
		t.Fatal(err)
	}
	midTS := false // a checkpoint stands between two rows of one timestamp
	for _, cp := range ri.Checkpoints {
		midTS = midTS || cp != nil && !cp.Done && cp.After != nil
	}
	if !midTS {
		t.Errorf("no checkpoint of the killed run resumes mid-timestamp: %+v", ri.Checkpoints)
	}

	r := runMR(t, args...)
	if r.code != ExitOK || !strings.Contains(r.stdout, "(resumed") {
		t.Fatalf("resumed run: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	const output = `SELECT account_id, day, category, events, total_cents FROM daily_rollup`
	var stale, missing int
	err = db.QueryRow(ctx, `SELECT (SELECT count(*) FROM (`+output+` EXCEPT ALL `+eventgen.PostgresTruth+`) a),
		(SELECT count(*) FROM (`+eventgen.PostgresTruth+` EXCEPT ALL `+output+`) b)`).Scan(&stale, &missing)
	if err != nil {
		t.Fatal(err)
	}
	if stale != 0 || missing != 0 {
		t.Errorf("daily_rollup has %d groups that differ from the GROUP BY over events, and misses %d", stale, missing)
	}

	rows, err := db.Query(ctx, `SELECT id, (extract(epoch FROM date_trunc('second', ts))::int8 * 1000000 + extract(microseconds FROM ts)::int8 % 1000000)
		FROM events WHERE NOT coalesce(mr_is_json_object(payload), false) ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var want [][2]int64
	for rows.Next() {
		var id, us int64
		if err := rows.Scan(&id, &us); err != nil {
			t.Fatal(err)
		}
		want = append(want, [2]int64{id, us})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	show := runMR(t, "dlq", "show", runID(t, r.stdout), "--workdir", workdir)
	if show.code != ExitOK {
		t.Fatalf("mr dlq show: exit %d, stderr:\n%s", show.code, show.stderr)
	}
	var got [][2]int64
	for line := range strings.Lines(show.stdout) {
		var l struct {
			Cursor int64
			Tie    *int64
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil || l.Tie == nil {
			t.Fatalf("dead letter %q: %v, want a cursor and a tie-breaker", line, err)
		}
		got = append(got, [2]int64{*l.Tie, l.Cursor})
	}
	slices.SortFunc(got, func(a, b [2]int64) int { return int(a[0] - b[0]) })
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("the DLQ holds %d letters, want the %d poison rows, each once, by (ts, id)", len(got), len(want))
	}

	inc := runMR(t, append(args, "--incremental")...)
	if inc.code != ExitUsage && inc.code != ExitFailed || !strings.Contains(inc.stderr, "--incremental needs a cursor of one integer column") {
		t.Errorf("mr run --incremental --cursor ts,id: exit %d, stderr:\n%s", inc.code, inc.stderr)
	}
}
