package sinks_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/mrengine/mr/sinks"
)

// A second run into a table that an unfinished run owns is refused with
// an *OwnedError that names the owner and says how to finish or give it
// up; following its advice lets the second run go.
func TestPostgres_Claim(t *testing.T) {
	t.Parallel()
	b := setupPostgres(t)
	if err := b.sink.Prepare(t.Context(), counts); err != nil {
		t.Fatal(err)
	}
	if _, err := b.sink.Stage(t.Context(), counts, "daily-1", "daily-1.aa"); err != nil {
		t.Fatal(err)
	}
	err := b.sink.Claim(t.Context(), counts, "daily-2", "daily-2.bb")
	var owned *sinks.OwnedError
	if !errors.As(err, &owned) || owned.Run != "daily-1" || owned.Commit != "daily-1.aa" {
		t.Fatalf("Claim by another run: %v, want an *OwnedError naming daily-1", err)
	}
	var schema string
	if err := b.pool.QueryRow(t.Context(), "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	stage := "counts_mr_next_" + stagedSuffix(t, b)
	want := fmt.Sprintf(`table "%[1]s"."counts" in %[2]s is being built by run daily-1 (commit daily-1.aa, since <time>), which has not finished, `+
		`and two runs into one table would leave a mix of both: finish that run first (run its command again), `+
		`or give it up (DELETE FROM "%[1]s"."mr_table_owners" WHERE table_name = 'counts'; DROP TABLE IF EXISTS "%[1]s"."%[3]s"), `+
		`then run this command again`, schema, b.sink, stage)
	if got := regexp.MustCompile(`since [0-9TZ:-]+\)`).ReplaceAllString(err.Error(), "since <time>)"); got != want {
		t.Errorf("Claim error:\ngot  %s\nwant %s", got, want)
	}
	for _, stmt := range strings.Split(owned.Release, "; ") {
		if _, err := b.pool.Exec(t.Context(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := b.sink.Claim(t.Context(), counts, "daily-2", "daily-2.bb"); err != nil {
		t.Errorf("Claim after the owner gave up: %v", err)
	}
}

// Once the sink knows the run, its sessions say mr/<run id> in
// pg_stat_activity.
func TestPostgres_ApplicationName(t *testing.T) {
	t.Parallel()
	b := setupPostgres(t)
	if err := b.sink.Prepare(t.Context(), counts); err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := b.pool.QueryRow(t.Context(), "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	run := "appname-" + schema // unique among the tests sharing the cluster
	b.sink.NameRun(run)
	if err := b.sink.Claim(t.Context(), counts, run, run+".c1"); err != nil {
		t.Fatal(err)
	}
	staged, err := b.sink.Stage(t.Context(), counts, run, run+".c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.sink.Apply(t.Context(), staged, run+".c1", 0, countRows(0, 3, 1)); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(b.query(t, `SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = $1`, "mr/"+run))
	if got != "[[true]]" {
		t.Errorf("sessions named mr/%s in pg_stat_activity: %s, want some", run, got)
	}
}
