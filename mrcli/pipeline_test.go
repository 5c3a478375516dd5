package mrcli

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mrengine/mr/internal/crashpoint"
	"github.com/mrengine/mr/internal/eventgen"
)

// The built-in pipeline payload_channels (event_payloads, then
// channel_totals over its output) on a real PostgreSQL, killed with
// SIGKILL in its second stage and resumed.

// pgChannelTotalsTruth is channel_totals computed by PostgreSQL alone,
// straight from events (see pgPayloadsTruth).
const pgChannelTotalsTruth = `
	SELECT channel, count(*)::bigint, coalesce(sum(items), 0)::bigint
	FROM (` + pgPayloadsTruth + `) t (id, account_id, keys, channel, items)
	WHERE channel IS NOT NULL GROUP BY channel`

const pgChannelTotalsOutput = `SELECT channel, events, items FROM channel_totals`

// stageSections splits the stdout of mr run PIPELINE at its "stage K of
// N:" lines, into what each stage printed.
func stageSections(t *testing.T, stdout string, stages int) []string {
	t.Helper()
	parts := regexp.MustCompile(`(?m)^stage \d+ of \d+: .*\n`).Split(stdout, -1)
	if len(parts) != stages+1 {
		t.Fatalf("want %d stage sections in:\n%s", stages, stdout)
	}
	return parts[1:]
}

func TestRunPipeline_PostgresKilledInStage2(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupMapOnly(t, 6_000)
	args := slices.Concat([]string{"run", "payload_channels"}, b.args[2:], []string{"--buckets", "4"})

	// Stage 1 is map-only and applies no bucket, so the first bucket
	// applied is stage 2's: the kill comes after PostgreSQL committed it.
	out, err := mrCommand(t, []string{crashpoint.Env + "=" + crashpoint.BucketApplied + ":1"}, args...).CombinedOutput()
	if !killed(err) {
		t.Fatalf("mr was not killed in stage 2: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "stage 2 of 2: channel_totals (pipeline payload_channels)") {
		t.Fatalf("mr was killed before stage 2:\n%s", out)
	}
	for _, q := range []string{pgPayloadsOutput + ` EXCEPT ALL ` + pgPayloadsTruth, pgPayloadsTruth + ` EXCEPT ALL ` + pgPayloadsOutput} {
		if n, err := b.count(q); err != nil || n != 0 {
			t.Errorf("after the kill in stage 2, %d rows of stage 1 differ from the ground truth (%v): %s", n, err, q)
		}
	}

	r := runMR(t, args...)
	if r.code != ExitOK {
		t.Fatalf("resumed pipeline: exit %d; stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("resumed pipeline:\n%s", r.stdout)
	stages := stageSections(t, r.stdout, 2)
	if !strings.Contains(stages[0], " is complete (finished at ") || !strings.Contains(stages[0], "nothing to do; --fresh recomputes every stage") {
		t.Errorf("stage 1 was not complete, reading no row:\n%s", stages[0])
	}
	resumed := regexp.MustCompile(`(\d)/4 buckets resumed`).FindStringSubmatch(stages[1])
	if !strings.Contains(stages[1], "(resumed") || resumed == nil || resumed[1] == "0" || resumed[1] == "4" {
		t.Errorf("stage 2 did not resume with 1 to 3 of 4 buckets applied:\n%s", stages[1])
	}
	for _, q := range []string{pgChannelTotalsOutput + ` EXCEPT ALL ` + pgChannelTotalsTruth, pgChannelTotalsTruth + ` EXCEPT ALL ` + pgChannelTotalsOutput} {
		if n, err := b.count(q); err != nil || n != 0 {
			t.Errorf("%d rows of channel_totals differ from the ground truth (%v): %s", n, err, q)
		}
	}
	if n, err := b.count(pgChannelTotalsOutput); err != nil || n != 4 {
		t.Errorf("channel_totals holds %d channels (%v), want eventgen's 4", n, err)
	}

	// Each stage's dead letters: stage 1's are the poison events, once
	// each; stage 2 reads only parsed payloads, and fails none.
	rows, err := b.db.Query(ctx, eventgen.PostgresPoisonIDs)
	if err != nil {
		t.Fatal(err)
	}
	poison, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	dlq := &demoBundle{workdir: b.workdir}
	run1, run2 := runID(t, stages[0]), runID(t, stages[1])
	if got := dlq.deadLetterIDs(t, run1); len(poison) == 0 || !slices.Equal(got, poison) {
		t.Errorf("stage 1's DLQ holds %d letters, want the %d poison rows exactly once", len(got), len(poison))
	}
	if got := dlq.deadLetterIDs(t, run2); len(got) != 0 {
		t.Errorf("stage 2's DLQ holds %d letters, want none", len(got))
	}

	// mr status and mr runs --json say which stage each run is.
	st := runMR(t, "status", "--workdir", b.workdir)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^` + run1 + `\s+event_payloads\s+payload_channels 1/2\s+\S+\s+done\s`),
		regexp.MustCompile(`(?m)^` + run2 + `\s+channel_totals\s+payload_channels 2/2\s+\S+\s+done\s`),
	} {
		if !want.MatchString(st.stdout) {
			t.Errorf("mr status does not match %s:\n%s", want, st.stdout)
		}
	}
	if st := runMR(t, "status", run2, "--workdir", b.workdir); !strings.Contains(st.stdout, "\npipeline payload_channels, stage 2 of 2\n") {
		t.Errorf("mr status %s does not name its pipeline and stage:\n%s", run2, st.stdout)
	}
	var doc struct {
		Runs []struct {
			RunID         string `json:"run_id"`
			Pipeline      string
			Stage, Stages int
		}
	}
	js := runMR(t, "runs", "--json", "--workdir", b.workdir)
	if err := json.Unmarshal([]byte(js.stdout), &doc); err != nil {
		t.Fatalf("mr runs --json: %v\n%s", err, js.stdout)
	}
	for _, r := range doc.Runs {
		want := map[string]int{run1: 1, run2: 2}[r.RunID]
		if r.Pipeline != "payload_channels" || r.Stage != want || r.Stages != 2 {
			t.Errorf("mr runs --json: run %s has pipeline %q stage %d of %d; want payload_channels, %d of 2", r.RunID, r.Pipeline, r.Stage, r.Stages, want)
		}
	}
	if len(doc.Runs) != 2 {
		t.Errorf("mr runs --json lists %d runs, want the 2 stages", len(doc.Runs))
	}
}

// TestRunPipeline_StaleStage reruns stage 1's job alone with --fresh over
// more events, after the pipeline finished: the pipeline then finds stage
// 1 complete but plans stage 2 afresh, since its plan predates its input.
// --fresh recomputes every stage.
func TestRunPipeline_StaleStage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupMapOnly(t, 2_000)
	args := slices.Concat([]string{"run", "payload_channels"}, b.args[2:], []string{"--buckets", "2"})
	check := func(when string) {
		t.Helper()
		for _, q := range []string{pgChannelTotalsOutput + ` EXCEPT ALL ` + pgChannelTotalsTruth, pgChannelTotalsTruth + ` EXCEPT ALL ` + pgChannelTotalsOutput} {
			if n, err := b.count(q); err != nil || n != 0 {
				t.Errorf("%s: %d rows of channel_totals differ from the ground truth (%v)", when, n, err)
			}
		}
	}
	if r := runMR(t, args...); r.code != ExitOK {
		t.Fatalf("first pipeline run: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	check("first run")
	if _, err := b.db.Exec(ctx, `INSERT INTO events (id, account_id, ts, category, amount_cents, payload)
		SELECT id + 100000, account_id, ts, category, amount_cents, payload FROM events WHERE id <= 500`); err != nil {
		t.Fatal(err)
	}
	if r := runMR(t, append(slices.Clone(b.args), "--fresh")...); r.code != ExitOK {
		t.Fatalf("mr run event_payloads --fresh: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r := runMR(t, args...)
	if r.code != ExitOK {
		t.Fatalf("pipeline after its first stage changed: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	stages := stageSections(t, r.stdout, 2)
	if !strings.Contains(stages[0], " is complete (finished at ") {
		t.Errorf("stage 1 was not complete:\n%s", stages[0])
	}
	if !strings.Contains(stages[1], "before the stage before it last committed") || !strings.Contains(stages[1], "(new)") {
		t.Errorf("stage 2 was not planned afresh:\n%s", stages[1])
	}
	check("after stage 1 changed")

	r = runMR(t, append(slices.Clone(args), "--fresh")...)
	if r.code != ExitOK {
		t.Fatalf("pipeline --fresh: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	for i, s := range stageSections(t, r.stdout, 2) {
		if !strings.Contains(s, "(new)") || strings.Contains(s, "afresh") {
			t.Errorf("pipeline --fresh: stage %d was not planned anew, once:\n%s", i+1, s)
		}
	}
	check("after --fresh")
}
