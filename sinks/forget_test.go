package sinks_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/sinks"
)

// forgetter is what mr gc calls on a sink.
type forgetter interface {
	mapreduce.Replacer
	Forget(ctx context.Context, table, run, commit string) (int64, error)
}

// rowSlice is a mapreduce.OutputRows over a slice.
type rowSlice struct {
	rows [][]any
	i    int
}

func (r *rowSlice) Next() bool             { r.i++; return r.i <= len(r.rows) }
func (r *rowSlice) Values() ([]any, error) { return r.rows[r.i-1], nil }
func (r *rowSlice) Err() error             { return nil }

// TestForget runs what a run and a replay leave in a sink (two buckets
// staged and swapped in under commit c1, a replay generation re-applying
// one, a claim on a second table never swapped) beside another run's
// commit, then forgets the first run: its records go, the other run's and
// the output table stay, and forgetting again removes nothing.
func TestForget(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(t *testing.T) (forgetter, func(query string) [][]any){
		"SQLite": func(t *testing.T) (forgetter, func(string) [][]any) {
			sink, db := openSQLite(t)
			return sink, func(q string) [][]any { return queryAll(t, db, q) }
		},
		"Postgres": func(t *testing.T) (forgetter, func(string) [][]any) {
			b := setupPostgres(t)
			return b.sink, func(q string) [][]any { return b.query(t, q) }
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			sink, query := open(t)
			out := mapreduce.OutputTable{Name: "totals",
				Keys: []mapreduce.Field{{Name: "k", Type: mapreduce.TypeInt64}}, Values: []mapreduce.Field{{Name: "n", Type: mapreduce.TypeInt64}}}
			other := out
			other.Name = "other"
			for _, tab := range []mapreduce.OutputTable{out, other} {
				if err := sink.Prepare(ctx, tab); err != nil {
					t.Fatal(err)
				}
			}
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(sink.Claim(ctx, out, "run1", "c1"))
			staged, err := sink.Stage(ctx, out, "run1", "c1")
			must(err)
			must(sink.Apply(ctx, staged, "c1", 0, &rowSlice{rows: [][]any{{int64(1), int64(10)}}}))
			must(sink.Apply(ctx, staged, "c1", 1, &rowSlice{rows: [][]any{{int64(2), int64(20)}}}))
			must(sink.Swap(ctx, out, "run1", "c1"))
			must(sink.Apply(ctx, out, "c1.replay1", 0, &rowSlice{rows: [][]any{{int64(1), int64(11)}}}))
			must(sink.Claim(ctx, other, "run1", "c1"))
			must(sink.Apply(ctx, other, "c2", 0, &rowSlice{rows: [][]any{{int64(3), int64(30)}}}))

			commits := func() string {
				return fmt.Sprint(query(`SELECT commit_key, bucket FROM mr_bucket_commits ORDER BY 1, 2`))
			}
			if got, want := commits(), "[[c1 -2] [c1 -1] [c1 0] [c1 1] [c1.replay1 0] [c2 0]]"; got != want {
				t.Fatalf("before Forget the commits are %s, want %s", got, want)
			}
			n, err := sink.Forget(ctx, out.Name, "run1", "c1")
			if err != nil || n != 5 {
				t.Fatalf("Forget = %d, %v; want 5 records removed", n, err)
			}
			if got, want := commits(), "[[c2 0]]"; got != want {
				t.Errorf("after Forget the commits are %s, want %s", got, want)
			}
			if got := query(`SELECT count(*) FROM mr_table_owners`); fmt.Sprint(got) != "[[0]]" {
				t.Errorf("after Forget mr_table_owners holds %v rows, want none", got)
			}
			if got, want := fmt.Sprint(query(`SELECT k, n FROM totals ORDER BY k`)), "[[1 11] [2 20]]"; got != want {
				t.Errorf("after Forget totals holds %s, want %s", got, want)
			}
			if c, err := sink.Committed(ctx, "c2"); err != nil || !slices.Equal(c, []int{0}) {
				t.Errorf("another run's commits after Forget: %v, %v; want [0]", c, err)
			}
			if n, err := sink.Forget(ctx, out.Name, "run1", "c1"); err != nil || n != 0 {
				t.Errorf("Forget again = %d, %v; want 0", n, err)
			}
		})
	}
}

// TestForget_Unprepared forgets a run in databases mr never wrote to.
func TestForget_Unprepared(t *testing.T) {
	t.Parallel()
	sqlite, _ := openSQLite(t)
	for _, sink := range []forgetter{sqlite, setupPostgres(t).sink} {
		if n, err := sink.Forget(t.Context(), "totals", "run1", "c1"); err != nil || n != 0 {
			t.Errorf("%s: Forget = %d, %v; want 0 and no error", sink, n, err)
		}
	}
}

var (
	_ forgetter = (*sinks.SQLite)(nil)
	_ forgetter = (*sinks.Postgres)(nil)
)
