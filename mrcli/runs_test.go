package mrcli

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
)

func TestRuns(t *testing.T) {
	t.Parallel()
	b, run, mask := finishedRun(t)

	r := runMR(t, "runs", "--workdir", b.workdir)
	want := regexp.MustCompile(`^RUN +JOB +STATE +AGE +SIZE +SOURCE +SINK\n` +
		`daily_rollup-xxxxxxxx +daily_rollup +done +\d+[smhd] +[0-9.]+ [KM]iB +sqlite:TMP/demo.db +sqlite:TMP/demo.db\n$`)
	if r.code != ExitOK || !want.MatchString(mask(r.stdout)) {
		t.Errorf("exit %d, stdout:\n%s\nwant %s", r.code, mask(r.stdout), want)
	}

	for _, args := range [][]string{{"runs", "--json"}, {"status", "--json"}} {
		r := runMR(t, append(args, "--workdir", b.workdir)...)
		var doc struct{ Runs []runJSON }
		if err := json.Unmarshal([]byte(r.stdout), &doc); r.code != ExitOK || err != nil || len(doc.Runs) != 1 {
			t.Fatalf("%v: exit %d, %v, stdout:\n%s", args, r.code, err, r.stdout)
		}
		got := doc.Runs[0]
		if got.RunID != run || got.Job != "daily_rollup" || got.State != "done" || got.SizeBytes <= 0 || got.Updated.IsZero() ||
			got.RowsRead != 20000 || got.RowsFailed != 2 || got.Partitions != 16 || got.BucketsDone != 16 || got.Source != "sqlite:"+b.db {
			t.Errorf("%v: %+v", args, got)
		}
		// The names are the contract: check them as written.
		for _, field := range []string{`"run_id"`, `"age_seconds"`, `"size_bytes"`, `"rows_failed"`, `"partitions_done"`, `"buckets_done"`} {
			if !strings.Contains(r.stdout, field) {
				t.Errorf("%v: no field %s in\n%s", args, field, r.stdout)
			}
		}
	}

	empty := runMR(t, "runs", "--json", "--workdir", filepath.Join(t.TempDir(), "none"))
	if empty.code != ExitOK || empty.stdout != "{\n  \"runs\": []\n}\n" {
		t.Errorf("no runs: exit %d, stdout %q", empty.code, empty.stdout)
	}
}

func TestStatus_JSON(t *testing.T) {
	t.Parallel()
	b, run, _ := finishedRun(t)
	r := runMR(t, "status", run, "--json", "--workdir", b.workdir)
	var doc runStatusJSON
	if err := json.Unmarshal([]byte(r.stdout), &doc); r.code != ExitOK || err != nil {
		t.Fatalf("exit %d, %v, stdout:\n%s", r.code, err, r.stdout)
	}
	if doc.RunID != run || len(doc.PartitionStates) != 16 || len(doc.BucketStates) != 16 {
		t.Fatalf("%+v", doc)
	}
	var rows int64
	for i, p := range doc.PartitionStates {
		if p.Partition != i || !p.Done || p.Next != p.Hi || p.Lo >= p.Hi {
			t.Errorf("partition %+v", p)
		}
		rows += p.Rows
	}
	if rows != 20000 || !doc.BucketStates[15].Done || !strings.Contains(r.stdout, `"partition_states"`) {
		t.Errorf("%d rows in the partitions, buckets %+v", rows, doc.BucketStates)
	}
}

func TestDLQ_JSON(t *testing.T) {
	t.Parallel()
	b, run, _ := finishedRun(t)

	list := runMR(t, "dlq", "list", run, "--json", "--workdir", b.workdir)
	var errs dlqListJSON
	if err := json.Unmarshal([]byte(list.stdout), &errs); list.code != ExitOK || err != nil {
		t.Fatalf("dlq list: exit %d, %v, stdout:\n%s", list.code, err, list.stdout)
	}
	want := []dlqErrorJSON{{RunID: run, ErrorCount: mapreduce.ErrorCount{
		Error: "payload is not a JSON object", Letters: 2, Partitions: []int{14, 15}, FirstCursor: 19294}}}
	if fmt.Sprint(errs.Errors) != fmt.Sprint(want) || !strings.Contains(list.stdout, `"first_cursor": 19294`) {
		t.Errorf("dlq list --json:\n%s\nwant %+v", list.stdout, want)
	}

	show := runMR(t, "dlq", "show", run, "--json", "--workdir", b.workdir)
	var letters struct {
		RunID       string                 `json:"run_id"`
		DeadLetters []mapreduce.DeadLetter `json:"dead_letters"`
	}
	if err := json.Unmarshal([]byte(show.stdout), &letters); show.code != ExitOK || err != nil {
		t.Fatalf("dlq show: exit %d, %v, stdout:\n%s", show.code, err, show.stdout)
	}
	if letters.RunID != run || len(letters.DeadLetters) != 2 || letters.DeadLetters[0].Cursor != 19294 || letters.DeadLetters[1].Error == "" {
		t.Errorf("dlq show --json:\n%s", show.stdout)
	}
}

// TestGC runs mr gc over a work directory holding a done run and one that
// stopped before its map phase: only the done one goes, and --dry-run
// removes nothing.
func TestGC(t *testing.T) {
	t.Parallel()
	source := seedEvents(t, eventgen.Config{Rows: 300, Seed: 13})
	workdir := t.TempDir()
	done := runMR(t, "run", "daily_rollup", "--source", source, "--workdir", workdir, "--partitions", "2", "--buckets", "2")
	if done.code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", done.code, done.stderr)
	}
	// A sink whose output table cannot take the rows stops the run after
	// its plan: a run that is not done.
	sink := filepath.Join(t.TempDir(), "bad.db")
	db, err := sql.Open("sqlite", sink)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE daily_rollup (x int)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	stopped := runMR(t, "run", "daily_rollup", "--source", source, "--sink", sink, "--workdir", workdir, "--partitions", "2", "--buckets", "2")
	if stopped.code != ExitFailed {
		t.Fatalf("exit %d, stderr:\n%s", stopped.code, stopped.stderr)
	}
	doneID, stoppedID := runID(t, done.stdout), runID(t, stopped.stdout)

	listing := regexp.MustCompile(`^RUN +JOB +AGE +SIZE +COMMIT\n` + doneID + ` +daily_rollup +\d+s +[0-9.]+ KiB +` + doneID + `\.[0-9a-f]+\n`)
	for _, tt := range []struct {
		args []string
		want *regexp.Regexp
	}{
		{[]string{"gc"}, regexp.MustCompile(`^would remove 0 runs \(0 B\); kept 1 not done, 1 done within 7d\n$`)},
		{[]string{"gc", "--older-than", "0"}, regexp.MustCompile(listing.String() + `would remove 1 run \([0-9.]+ KiB\); kept 1 not done, 0 done within 0\n$`)},
	} {
		r := runMR(t, append(tt.args, "--dry-run", "--workdir", workdir)...)
		if r.code != ExitOK || !tt.want.MatchString(r.stdout) {
			t.Errorf("%v --dry-run: exit %d, stdout:\n%s\nwant %s", tt.args, r.code, r.stdout, tt.want)
		}
	}
	for _, id := range []string{doneID, stoppedID} {
		if _, err := os.Stat(filepath.Join(workdir, id, "plan.json")); err != nil {
			t.Errorf("--dry-run removed %s: %v", id, err)
		}
	}

	commits := func() int {
		t.Helper()
		db, err := sql.Open("sqlite", source)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM mr_bucket_commits WHERE commit_key LIKE ?`, doneID+".%").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := commits(); n != 4 { // 2 buckets, the staging table, the swap
		t.Fatalf("before gc the sink holds %d commit records of the done run, want 4", n)
	}
	r := runMR(t, "gc", "--older-than", "0", "--workdir", workdir)
	want := regexp.MustCompile(listing.String() + `removed 1 run \([0-9.]+ KiB\); kept 1 not done, 0 done within 0\n` +
		`forgot 4 bucket commits of 1 run in sqlite:` + regexp.QuoteMeta(source) + `\n$`)
	if r.code != ExitOK || r.stderr != "" || !want.MatchString(r.stdout) {
		t.Errorf("gc: exit %d, stdout:\n%s\nwant %s\nstderr:\n%s", r.code, r.stdout, want, r.stderr)
	}
	if n := commits(); n != 0 {
		t.Errorf("after gc the sink holds %d commit records of the removed run", n)
	}
	db, err = sql.Open("sqlite", source)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var groups int
	if err := db.QueryRow(`SELECT count(*) FROM daily_rollup`).Scan(&groups); err != nil || groups == 0 {
		t.Errorf("after gc the output table holds %d groups (%v), want it kept", groups, err)
	}
	if _, err := os.Stat(filepath.Join(workdir, doneID)); !os.IsNotExist(err) {
		t.Errorf("gc left the done run %s: %v", doneID, err)
	}
	runs := runMR(t, "runs", "--workdir", workdir)
	if !strings.Contains(runs.stdout, stoppedID+"  daily_rollup  planned") || strings.Contains(runs.stdout, doneID) {
		t.Errorf("after gc, mr runs:\n%s", runs.stdout)
	}
}

// TestGC_Postgres removes a done run over PostgreSQL: its commit records
// go from the sink, its output table stays, and the same command then
// recomputes the run in full.
func TestGC_Postgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	db := pgtest.PoolFor(t, dsn)
	if err := eventgen.SeedPostgres(ctx, db, demoEvents(500), true); err != nil {
		t.Fatal(err)
	}
	workdir := t.TempDir()
	args := []string{"run", "daily_rollup", "--source", dsn, "--workdir", workdir, "--partitions", "2", "--buckets", "3"}
	run := runMR(t, args...)
	if run.code != ExitOK {
		t.Fatalf("run: exit %d, stderr:\n%s", run.code, run.stderr)
	}
	id := runID(t, run.stdout)
	commits := func() (n int) {
		t.Helper()
		if err := db.QueryRow(ctx, `SELECT count(*) FROM mr_bucket_commits WHERE starts_with(commit_key, $1)`, id+".").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := commits(); n != 5 {
		t.Fatalf("before gc the sink holds %d commit records of the run, want 5", n)
	}
	r := runMR(t, "gc", "--older-than", "0", "--workdir", workdir)
	if r.code != ExitOK || r.stderr != "" || !regexp.MustCompile(`\nforgot 5 bucket commits of 1 run in postgres://`).MatchString(r.stdout) {
		t.Fatalf("gc: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if n := commits(); n != 0 {
		t.Errorf("after gc the sink holds %d commit records of the removed run", n)
	}
	var groups int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM daily_rollup`).Scan(&groups); err != nil || groups == 0 {
		t.Errorf("after gc the output table holds %d groups (%v), want it kept", groups, err)
	}
	again := runMR(t, args...)
	if again.code != ExitOK || !strings.Contains(again.stdout, "(new)") || !strings.Contains(again.stdout, " 0/3 buckets resumed") {
		t.Errorf("the run after gc: exit %d, want a new run that applies every bucket; stdout:\n%s", again.code, again.stdout)
	}
}

// TestGC_SinkGone removes a done run whose sink file was deleted: gc warns,
// names the SQL that would remove the records, creates no file, and
// removes the run state all the same.
func TestGC_SinkGone(t *testing.T) {
	t.Parallel()
	source := seedEvents(t, eventgen.Config{Rows: 200, Seed: 5})
	sink := filepath.Join(t.TempDir(), "out.db")
	workdir := t.TempDir()
	run := runMR(t, "run", "daily_rollup", "--source", source, "--sink", sink, "--workdir", workdir, "--partitions", "2", "--buckets", "2")
	if run.code != ExitOK {
		t.Fatalf("run: exit %d, stderr:\n%s", run.code, run.stderr)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(sink + suffix)
	}
	r := runMR(t, "gc", "--older-than", "0", "--workdir", workdir)
	if r.code != ExitOK || !strings.Contains(r.stdout, "removed 1 run") ||
		!strings.Contains(r.stderr, "mr gc: warning: sink sqlite:"+sink+" is gone") || !strings.Contains(r.stderr, "DELETE FROM mr_bucket_commits WHERE commit_key = ") {
		t.Fatalf("gc: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(sink); !os.IsNotExist(err) {
		t.Errorf("gc created the deleted sink file again: %v", err)
	}
	if _, err := os.Stat(filepath.Join(workdir, runID(t, run.stdout))); !os.IsNotExist(err) {
		t.Errorf("gc kept the run state of a run whose sink is gone: %v", err)
	}
}

func TestGarbage(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 10, 12, 0, 0, 0, time.UTC)
	entry := func(id string, done bool, updated time.Time) runEntry {
		p := &mapreduce.Plan{RunID: id, Partitions: make([]mapreduce.Partition, 1), Buckets: 1, Created: updated}
		ri := &mapreduce.RunInfo{Plan: p, Checkpoints: []*mapreduce.Checkpoint{{Done: done, Updated: updated}}}
		if done {
			ri.BucketsDone = []int{0}
		}
		return runEntry{info: ri, updated: lastCommit(ri)}
	}
	entries := []runEntry{
		entry("old", true, now.Add(-8*24*time.Hour)),
		entry("exactly7d", true, now.Add(-7*24*time.Hour)),
		entry("recent", true, now.Add(-6*24*time.Hour)),
		entry("old-unfinished", false, now.Add(-30*24*time.Hour)),
	}
	old, kept := garbage(entries, now, 7*24*time.Hour)
	var ids []string
	for _, e := range old {
		ids = append(ids, e.info.Plan.RunID)
	}
	if !slices.Equal(ids, []string{"old", "exactly7d"}) || kept != (keptRuns{unfinished: 1, recent: 1}) {
		t.Errorf("garbage = %v, %+v", ids, kept)
	}
}

func TestParseAge(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "0": 0, "36h": 36 * time.Hour, "90m": 90 * time.Minute, "0d": 0} {
		if got, err := parseAge(in); err != nil || got != want {
			t.Errorf("parseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "7", "-1d", "-2h", "xd", "1w"} {
		if got, err := parseAge(in); err == nil {
			t.Errorf("parseAge(%q) = %v, want an error", in, got)
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := runMR(t, "--version")
	if r.code != ExitOK || !regexp.MustCompile(`^mr \S+ \(.*go1\.\d+.*\)\n$`).MatchString(r.stdout) {
		t.Errorf("mr --version: exit %d, stdout %q", r.code, r.stdout)
	}
	info := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/mrengine/mr", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "10e8467abc"},
			{Key: "vcs.time", Value: "2025-06-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	for _, tt := range []struct {
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{info, true, "mr v1.2.3 (revision 10e8467abc, committed 2025-06-01T10:00:00Z, with uncommitted changes, go1.26.0)"},
		{&debug.BuildInfo{GoVersion: "go1.26.0"}, true, "mr (devel) (go1.26.0)"},
		{nil, false, "mr (unknown version: built without module information)"},
	} {
		if got := version(tt.info, tt.ok); got != tt.want {
			t.Errorf("version = %q, want %q", got, tt.want)
		}
	}
}
