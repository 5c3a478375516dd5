package mrcli

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/jobs"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/shuffle"
)

// TestDLQ_Replay runs daily_rollup, fixes half of the poison rows in the
// source, replays the dead letters, and checks the output against the
// ground truth (which now counts the fixed rows) and the DLQ against the
// rows still poison; a second replay changes nothing.
func TestDLQ_Replay(t *testing.T) {
	t.Parallel()
	b := &crashBundle{demoBundle: setupDemo(t)}
	gen := eventgen.Config{Rows: 8_000, Seed: 11, PoisonRate: 0.004, NullPayloadRate: 0.002, GapEvery: 50}
	if err := eventgen.SeedSQLite(context.Background(), b.db, gen); err != nil {
		t.Fatal(err)
	}
	b.args = []string{"run", "daily_rollup", "--source", b.db, "--workdir", b.workdir,
		"--workers", "2", "--partitions", "6", "--buckets", "4", "--chunk-size", "200"}
	r := runMR(t, b.args...)
	if r.code != ExitOK {
		t.Fatalf("mr run: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	run := runID(t, r.stdout)
	poison := b.ids(t, eventgen.SQLitePoisonIDs)
	if len(poison) < 4 {
		t.Fatalf("only %d poison rows", len(poison))
	}
	var fixed []string
	for i, id := range poison {
		if i%2 == 0 {
			fixed = append(fixed, itoa(id))
		}
	}
	if _, err := b.open(t).Exec(`UPDATE events SET payload = '{}' WHERE id IN (` + strings.Join(fixed, ",") + `)`); err != nil {
		t.Fatal(err)
	}
	// A row deleted since the run is resolved with no output.
	if _, err := b.open(t).Exec(`DELETE FROM events WHERE id = ?`, poison[1]); err != nil {
		t.Fatal(err)
	}
	still := b.ids(t, eventgen.SQLitePoisonIDs)
	if len(still) == 0 || len(still) >= len(poison) {
		t.Fatalf("%d of %d rows still poison", len(still), len(poison))
	}

	replay := append([]string{"dlq", "replay"}, b.args[1:]...)
	check := func(what string) string {
		t.Helper()
		r := runMR(t, replay...)
		if r.code != ExitOK {
			t.Fatalf("%s: exit %d, stderr:\n%s", what, r.code, r.stderr)
		}
		if n := b.count(t, eventgen.SQLiteTruth+` EXCEPT `+output); n != 0 {
			t.Errorf("%s: %d groups of the ground truth are missing or differ", what, n)
		}
		if n := b.count(t, output+` EXCEPT `+eventgen.SQLiteTruth); n != 0 {
			t.Errorf("%s: %d groups too many", what, n)
		}
		if got := b.deadLetterIDs(t, run); !slices.Equal(got, still) {
			t.Errorf("%s: the DLQ holds %v, want the rows still poison %v", what, got, still)
		}
		return r.stdout
	}
	out := check("first replay")
	resolved := len(poison) - len(still)
	want := regexp.MustCompile(`^replayed ` + itoa(int64(len(poison))) + ` dead letters of run ` + run + `: ` + itoa(int64(resolved)) +
		` now succeed, ` + itoa(int64(len(still))) + ` still fail; ([1-4]) buckets re-applied \(generation 1\)\n$`)
	if m := want.FindStringSubmatch(out); m == nil {
		t.Errorf("first replay printed %q, want %q", out, want)
	} else if touched := b.bucketsOf(t, run, fixed); m[1] != itoa(int64(touched)) {
		t.Errorf("first replay re-applied %s buckets, want the %d that the fixed rows' keys hash to", m[1], touched)
	}
	before := b.dump(t)
	manifest, err := os.ReadFile(filepath.Join(b.workdir, run, "replay.json"))
	if err != nil {
		t.Fatal(err)
	}
	out = check("second replay")
	if want := ": 0 now succeed, " + itoa(int64(len(still))) + " still fail; 0 buckets re-applied (generation 1)"; !strings.Contains(out, want) {
		t.Errorf("second replay printed %q, want %q", out, want)
	}
	if after := b.dump(t); after != before {
		t.Error("the second replay changed the output")
	}
	if again, _ := os.ReadFile(filepath.Join(b.workdir, run, "replay.json")); string(again) != string(manifest) {
		t.Error("the second replay changed the manifest")
	}
	cfg := mapreduce.DefaultConfig()
	cfg.Workdir = b.workdir
	runtest.CheckArrowJS(t, cfg, run) // the replay's files too

	// mr run again resumes the finished run and keeps the replayed rows.
	if r := runMR(t, b.args...); r.code != ExitOK {
		t.Fatalf("mr run after replay: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if after := b.dump(t); after != before {
		t.Error("mr run after the replay changed the output")
	}
	if got := b.deadLetterIDs(t, run); !slices.Equal(got, still) {
		t.Errorf("after mr run the DLQ holds %v, want %v", got, still)
	}
}

func TestDLQ_Replay_NotFinished(t *testing.T) {
	t.Parallel()
	b := setupCrash(t, 1000)
	r := runMR(t, append([]string{"dlq", "replay"}, b.args[1:]...)...)
	if r.code != ExitUsage || !strings.Contains(r.stderr, "has not finished: run mr run daily_rollup") {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if entries, _ := os.ReadDir(b.workdir); len(entries) != 0 {
		t.Errorf("replay of a run never started left %d entries in the workdir", len(entries))
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// bucketsOf counts the buckets of run that the keys of the rows ids (as
// strings) hash to: the buckets a replay that fixed them must re-apply.
func (b *demoBundle) bucketsOf(t *testing.T, run string, ids []string) int {
	t.Helper()
	cfg := mapreduce.DefaultConfig()
	cfg.Workdir = b.workdir
	ri, err := mapreduce.Inspect(context.Background(), cfg, run)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := b.open(t).Query(`SELECT account_id, ts, category FROM events WHERE id IN (` + strings.Join(ids, ",") + `)`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	h := shuffle.NewKeyHash(ri.Plan.Seed)
	buckets := map[int]bool{}
	for rows.Next() {
		var k jobs.RollupKey
		var ts string
		if err := rows.Scan(&k.Account, &ts, &k.Category); err != nil {
			t.Fatal(err)
		}
		day, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatal(err)
		}
		k.Day = mapreduce.DateOf(day)
		h.Reset()
		jobs.DailyRollup.Key.Encode(k, h)
		buckets[shuffle.Bucket(h.Sum64(), ri.Plan.Buckets)] = true
	}
	return len(buckets)
}
