package coordinator

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/mrengine/mr/internal/pgtest"
)

// openCoordinator returns a Coordinator on a fresh, migrated schema.
func openCoordinator(t *testing.T) *Coordinator {
	t.Helper()
	dsn := pgtest.DSN(t)
	if _, err := Migrate(t.Context(), pgtest.PoolFor(t, dsn)); err != nil {
		t.Fatal(err)
	}
	return openOn(t, dsn)
}

// openOn opens the Coordinator on dsn, closed in t.Cleanup.
func openOn(t *testing.T, dsn string) *Coordinator {
	t.Helper()
	c, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCoordinator_RunStatus checks what mr status shows of a run: its
// tasks of the current plan by River state, the tasks River gave up on
// with their last error (which the run cannot end without), and the
// attempts that committed or were fenced.
func TestCoordinator_RunStatus(t *testing.T) {
	t.Parallel()

	// A run never submitted says so, rather than showing an empty run.
	t.Run("NotSubmitted", func(t *testing.T) {
		t.Parallel()
		c := openCoordinator(t)
		st, err := c.RunStatus(t.Context(), "daily_rollup-nope")
		if !errors.Is(err, ErrNotSubmitted) || st != nil {
			t.Fatalf("RunStatus of an unknown run = %+v, %v; want nil and an error wrapping ErrNotSubmitted", st, err)
		}
		if !strings.Contains(err.Error(), "daily_rollup-nope") {
			t.Errorf("error %q does not name the run", err)
		}
	})

	t.Run("Submitted", func(t *testing.T) {
		t.Parallel()
		b := newTaskBundle(t, 3, 1, phaseMap)
		c := openOn(t, b.dsn)
		done := claim(t, b, MapArgs{Run: testRun, Commit: testCommit, Partition: 0})
		if err := b.save(done, testCheckpoint(testCommit, 0, true)); err != nil {
			t.Fatal(err)
		}
		claim(t, b, MapArgs{Run: testRun, Commit: testCommit, Partition: 1})
		failed := claim(t, b, MapArgs{Run: testRun, Commit: testCommit, Partition: 2})
		b.setJob(t, failed.job.ID, rivertype.JobStateDiscarded, 1)
		_, err := b.pool.Exec(b.ctx, `UPDATE river_job SET errors = ARRAY[jsonb_build_object('at', now(), 'attempt', 1, 'error', 'source gone', 'trace', '')] WHERE id = $1`, failed.job.ID)
		if err != nil {
			t.Fatal(err)
		}
		// A task of an earlier plan of the run, and one of another run:
		// neither is this run's now.
		b.insert(t, MapArgs{Run: testRun, Commit: "c0", Partition: 0})
		b.insert(t, MapArgs{Run: "r2", Commit: testCommit, Partition: 0})
		if _, err := b.pool.Exec(b.ctx, `INSERT INTO mr_attempts (run, task, job_id, attempt, worker, outcome, detail, at)
			VALUES ($1, 'map task of partition 1', 99, 1, 'w9', 'fenced', 'attempt fenced: …', now() + interval '1 second')`, testRun); err != nil {
			t.Fatal(err)
		}

		st, err := c.RunStatus(b.ctx, testRun)
		if err != nil {
			t.Fatal(err)
		}
		if st.Run != testRun || st.Commit != testCommit || st.Phase != phaseMap || st.SubmittedAt.IsZero() || st.FinishedAt != nil {
			t.Errorf("RunStatus = %+v; want run r1 of c1 at phase map, submitted, not finished", st)
		}
		wantTasks := []TaskCount{{kindMap, "completed", 1}, {kindMap, "discarded", 1}, {kindMap, "running", 1}}
		if !slices.Equal(st.Tasks, wantTasks) {
			t.Errorf("Tasks = %v; want %v", st.Tasks, wantTasks)
		}
		if want := []string{"map task of partition 2: source gone"}; !slices.Equal(st.Failed, want) {
			t.Errorf("Failed = %q; want %q", st.Failed, want)
		}
		var got []string
		for _, a := range st.Attempts {
			got = append(got, fmt.Sprintf("%s/%d/%d/%s/%s", a.Task, a.JobID, a.Attempt, a.Worker, a.Outcome))
		}
		want := []string{fmt.Sprintf("map task of partition 0/%d/1/test-1/committed", done.job.ID), "map task of partition 1/99/1/w9/fenced"}
		if !slices.Equal(got, want) {
			t.Errorf("Attempts = %q; want %q", got, want)
		}
	})
}

// TestCoordinator_Workers checks what mr workers shows: the workers seen
// lately, newest first, each with the mr tasks River runs on it now, so
// that an operator can tell a stuck worker from an idle one.
func TestCoordinator_Workers(t *testing.T) {
	t.Parallel()
	b := newTaskBundle(t, 3, 1, phaseMap)
	c := openOn(t, b.dsn)
	_, err := b.pool.Exec(b.ctx, `INSERT INTO mr_workers (id, host, pid, started_at, seen_at, stopped_at) VALUES
		('w-gone', 'h1', 1, now() - interval '3 hours', now() - interval '2 hours', NULL),
		('w-a', 'h1', 2, now() - interval '10 minutes', now(), NULL),
		('w-b', 'h2', 3, now() - interval '5 minutes', now(), now())`)
	if err != nil {
		t.Fatal(err)
	}
	// Two mr tasks River runs on w-a (one retried from w-b), a task of
	// w-a's that River no longer runs, and a job of another queue that
	// w-a runs: not an mr task.
	for p, by := range []string{"{w-a}", "{w-b,w-a}", "{w-a}"} {
		a := claim(t, b, MapArgs{Run: testRun, Commit: testCommit, Partition: p})
		if p == 2 {
			b.setJob(t, a.job.ID, rivertype.JobStateRetryable, 1)
		}
		if _, err := b.pool.Exec(b.ctx, "UPDATE river_job SET attempted_by = $2 WHERE id = $1", a.job.ID, by); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.pool.Exec(b.ctx, "UPDATE river_job SET state = 'running', finalized_at = NULL, attempted_by = '{w-a}' WHERE kind = $1", probeArgs{}.Kind()); err != nil {
		t.Fatal(err)
	}

	ws, err := c.Workers(b.ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range ws {
		got = append(got, fmt.Sprintf("%s@%s pid %d running %d stopped %v", w.ID, w.Host, w.PID, w.Running, w.StoppedAt != nil))
	}
	want := []string{"w-b@h2 pid 3 running 0 stopped true", "w-a@h1 pid 2 running 2 stopped false"}
	if !slices.Equal(got, want) {
		t.Errorf("Workers(1h) = %q; want %q", got, want)
	}
}
