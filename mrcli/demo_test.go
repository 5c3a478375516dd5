package mrcli

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mrengine/mr/internal/eventgen"
)

const output = `SELECT account_id, day, category, events, total_cents FROM daily_rollup`

// demoBundle is a demo run in its own directory.
type demoBundle struct {
	db, workdir string
	sql         *sql.DB
}

func setupDemo(t *testing.T) *demoBundle {
	t.Helper()
	dir := t.TempDir()
	b := &demoBundle{db: filepath.Join(dir, "demo.db"), workdir: filepath.Join(dir, ".mr")}
	t.Cleanup(func() {
		if b.sql != nil {
			b.sql.Close()
		}
	})
	return b
}

func (b *demoBundle) demo(t *testing.T, rows int64) result {
	t.Helper()
	r := runMR(t, "demo", "--rows", fmt.Sprint(rows), "--db", b.db, "--workdir", b.workdir, "--workers", "2")
	if r.code != ExitOK {
		t.Fatalf("mr demo: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	return r
}

func (b *demoBundle) open(t *testing.T) *sql.DB {
	t.Helper()
	if b.sql == nil {
		db, err := sql.Open("sqlite", b.db)
		if err != nil {
			t.Fatal(err)
		}
		b.sql = db
	}
	return b.sql
}

// count returns the row count of a query.
func (b *demoBundle) count(t *testing.T, query string) int {
	t.Helper()
	var n int
	if err := b.open(t).QueryRow(`SELECT count(*) FROM (` + query + `)`).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// ids returns the int64 column of a query.
func (b *demoBundle) ids(t *testing.T, query string) []int64 {
	t.Helper()
	rows, err := b.open(t).Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// dump returns the output table, sorted, as text.
func (b *demoBundle) dump(t *testing.T) string {
	t.Helper()
	rows, err := b.open(t).Query(output + ` ORDER BY account_id, day, category`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var s strings.Builder
	for rows.Next() {
		var account, events, cents int64
		var day, category string
		if err := rows.Scan(&account, &day, &category, &events, &cents); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&s, account, day, category, events, cents)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return s.String()
}

// deadLetterIDs returns the cursors of a run's dead letters, via mr dlq show.
func (b *demoBundle) deadLetterIDs(t *testing.T, run string) []int64 {
	t.Helper()
	return letterIDs(t, b.workdir, run)
}

func TestDemo_GroundTruth(t *testing.T) {
	t.Parallel()
	const rows = 20_000 // finishedRun's
	b, _, _ := finishedRun(t)
	r := finished.demo
	for _, want := range []string{"seeded 20000 events", "(new)", "20000/20000 items", "daily_rollup: ", "account_id"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, want := range []string{"phase started", "phase finished"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}

	if n := b.count(t, eventgen.SQLiteTruth); n < rows/2 {
		t.Fatalf("ground truth has %d groups, too few for %d rows", n, rows)
	}
	if n := b.count(t, eventgen.SQLiteTruth+` EXCEPT `+output); n != 0 {
		t.Errorf("%d groups of the ground truth are missing from daily_rollup or differ", n)
	}
	if n := b.count(t, output+` EXCEPT `+eventgen.SQLiteTruth); n != 0 {
		t.Errorf("daily_rollup has %d groups that the ground truth has not", n)
	}

	// The dead letters are exactly the poison rows, as SQL and the
	// generator see them.
	poison := b.ids(t, eventgen.SQLitePoisonIDs)
	var generated []int64
	for e := range demoEvents(rows).All() {
		if e.Poison {
			generated = append(generated, e.ID)
		}
	}
	if len(poison) == 0 || !slices.Equal(poison, generated) {
		t.Fatalf("poison ids: SQL finds %v, the generator made %v", poison, generated)
	}
	if got := b.deadLetterIDs(t, runID(t, r.stdout)); !slices.Equal(got, poison) {
		t.Errorf("dead letters for ids %v, want the poison ids %v", got, poison)
	}
}

func TestDemo_Twice(t *testing.T) {
	t.Parallel()
	const rows = 5_000
	b := setupDemo(t)
	first := b.demo(t, rows)
	before := b.dump(t)

	second := b.demo(t, rows)
	complete := regexp.MustCompile(`(?m)^run ` + runID(t, first.stdout) + ` is complete \(finished at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\); nothing to do$`)
	if !strings.HasPrefix(second.stdout, "reusing the 5000 events") || !complete.MatchString(second.stdout) || strings.Contains(second.stdout, "items/s") {
		t.Errorf("second demo: stdout does not say the run is complete, or prints a summary:\n%s", second.stdout)
	}
	if after := b.dump(t); after != before {
		t.Errorf("the second demo changed daily_rollup")
	}
	if top := func(s string) string { _, top, _ := strings.Cut(s, "daily_rollup: "); return top }; top(first.stdout) != top(second.stdout) {
		t.Errorf("the top rows differ:\n%s\n%s", top(first.stdout), top(second.stdout))
	}

	// Other rows: the demo seeds anew, starts a fresh run and writes the
	// new truth only.
	third := b.demo(t, rows+1000)
	if !strings.Contains(third.stdout, "seeded 6000 events") || !strings.Contains(third.stdout, "(new)") {
		t.Errorf("third demo: stdout:\n%s", third.stdout)
	}
	if n := b.count(t, output+` EXCEPT `+eventgen.SQLiteTruth); n != 0 {
		t.Errorf("after a reseed daily_rollup has %d stale groups", n)
	}
	if n := b.count(t, eventgen.SQLiteTruth+` EXCEPT `+output); n != 0 {
		t.Errorf("after a reseed %d groups are missing from daily_rollup", n)
	}
}

func TestEventgen_SeededByDemo(t *testing.T) {
	t.Parallel()
	b := setupDemo(t)
	b.demo(t, 1000)
	ok, err := eventgen.Seeded(context.Background(), b.db, demoEvents(1000))
	if err != nil || !ok {
		t.Fatalf("Seeded = %v, %v after the demo", ok, err)
	}
}
