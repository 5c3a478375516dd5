package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/mapreduce"
)

// taskBundle is a migrated coordinator schema with one submitted run, r1
// of plan c1, whose tasks the tests claim and commit as River's workers
// would, without running River's fetch loop: each test decides which
// attempt owns a job by setting its row, as River's fetch and rescuer do.
type taskBundle struct {
	// ctx is a River worker's Work context (see workContext): River's
	// JobCompleteTx and the barrier's inserts (see advance) take the
	// client from it.
	ctx    context.Context
	pool   *pgxpool.Pool
	store  *Store
	client *river.Client[pgx.Tx]
	// app is the application_name of pool's connections, to tell them
	// in pg_stat_activity from every other test's.
	app string
	dsn string
}

const (
	testRun    = "r1"
	testCommit = "c1"
)

// newTaskBundle migrates a fresh schema and submits r1 with partitions
// and buckets at phase.
func newTaskBundle(t *testing.T, partitions, buckets int, phase string) *taskBundle {
	t.Helper()
	schema, dsn := pgtest.Schema(t)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = schema
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := Migrate(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
	ctx := workContext(t, pool)
	_, err = pool.Exec(t.Context(), `INSERT INTO mr_runs (run, command, commit, partitions, buckets, phase) VALUES ($1, '["mr", "run"]', $2, $3, $4, $5)`,
		testRun, testCommit, partitions, buckets, phase)
	if err != nil {
		t.Fatal(err)
	}
	return &taskBundle{
		ctx:    ctx,
		pool:   pool,
		store:  &Store{pool: pool},
		client: river.ClientFromContext[pgx.Tx](ctx),
		app:    schema,
		dsn:    dsn,
	}
}

// probeArgs is the job that workContext has River run.
type probeArgs struct{}

func (probeArgs) Kind() string { return "coordtest_probe" }

// probeWorker hands out the context River works its job in.
type probeWorker struct {
	river.WorkerDefaults[probeArgs]
	ctxs chan context.Context
}

func (w *probeWorker) Work(ctx context.Context, _ *river.Job[probeArgs]) error {
	w.ctxs <- context.WithoutCancel(ctx) // its values, not its job's timeout
	return nil
}

// probeQueue is the queue of the probe, which no mr task is in.
const probeQueue = "coordtest"

// workContext returns the context of a River worker on pool, holding its
// client, as the context a task's commits run in does (see
// taskWorker.Work). River puts its client there only when it works a job
// (rivertest.WorkContext would too, but package rivertest needs testify,
// which this module does not require), so a real client on pool works one
// probe job, and is stopped: its client's inserts and JobCompleteTx run
// in the transactions given them, and need no running client. The client
// knows mr's task kinds, as a worker's does (see Work), since River
// refuses to insert a kind its client has no worker for; it never works
// them, for it fetches from the probe's queue alone.
func workContext(t *testing.T, pool *pgxpool.Pool) context.Context {
	t.Helper()
	w := &probeWorker{ctxs: make(chan context.Context, 1)}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	river.AddWorker(workers, &taskWorker[MapArgs]{})
	river.AddWorker(workers, &taskWorker[ReduceArgs]{})
	river.AddWorker(workers, &taskWorker[FinishArgs]{})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:  map[string]river.QueueConfig{probeQueue: {MaxWorkers: 1}},
		Workers: workers,
		Logger:  runtest.DiscardLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := client.Stop(context.WithoutCancel(t.Context())); err != nil {
			t.Errorf("stop the probe's River client: %v", err)
		}
	}()
	if _, err := client.Insert(t.Context(), probeArgs{}, &river.InsertOpts{Queue: probeQueue}); err != nil {
		t.Fatal(err)
	}
	select {
	case ctx := <-w.ctxs:
		return ctx
	case <-time.After(30 * time.Second):
		t.Fatal("River did not work the probe job within 30s")
		return nil
	}
}

// insert queues a task as Submit does, and returns its job.
func (b *taskBundle) insert(t *testing.T, args taskArgs) *rivertype.JobRow {
	t.Helper()
	res, err := b.client.Insert(b.ctx, args, insertOpts())
	if err != nil {
		t.Fatalf("insert %s: %v", args.ref(), err)
	}
	return res.Job
}

// setJob puts job id in state at attempt, as River does when it hands
// the job to an attempt (running), rescues it and runs it again (running
// at the next attempt), or finalizes it (completed, cancelled, discarded:
// River's check constraint wants finalized_at then).
func (b *taskBundle) setJob(t *testing.T, id int64, state rivertype.JobState, attempt int) {
	t.Helper()
	_, err := b.pool.Exec(b.ctx, `UPDATE river_job SET state = $2::river_job_state, attempt = $3::int, attempted_at = now(),
			attempted_by = array_append(attempted_by, 'test-' || $3::text),
			finalized_at = CASE WHEN $2::river_job_state IN ('completed', 'cancelled', 'discarded') THEN now() END
		WHERE id = $1`, id, string(state), attempt)
	if err != nil {
		t.Fatalf("set job %d to %s at attempt %d: %v", id, state, attempt, err)
	}
}

// job reads job id as it is now.
func (b *taskBundle) job(t *testing.T, id int64) *rivertype.JobRow {
	t.Helper()
	row, err := b.client.JobGet(b.ctx, id)
	if err != nil {
		t.Fatalf("get job %d: %v", id, err)
	}
	return row
}

// claim queues the task of args and gives it to attempt 1, as River's
// fetch does, and returns that attempt.
func claim[T taskArgs](t *testing.T, b *taskBundle, args T) *task {
	t.Helper()
	job := b.insert(t, args)
	b.setJob(t, job.ID, rivertype.JobStateRunning, 1)
	return attempt(t, b, args, b.job(t, job.ID))
}

// attempt is the task a worker builds for the job as River handed it
// out (see worker.run), with River's own JobCompleteTx, as
// taskWorker.Work passes it.
func attempt[T taskArgs](t *testing.T, b *taskBundle, args T, job *rivertype.JobRow) *task {
	t.Helper()
	var partitions, buckets int
	if err := b.pool.QueryRow(b.ctx, "SELECT partitions, buckets FROM mr_runs WHERE run = $1", testRun).Scan(&partitions, &buckets); err != nil {
		t.Fatal(err)
	}
	rjob := &river.Job[T]{JobRow: job, Args: args}
	return &task{
		taskRef: args.ref(),
		job:     job,
		completeTx: func(ctx context.Context, tx pgx.Tx) error {
			_, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, rjob)
			return err
		},
		worker:     fmt.Sprintf("test-%d", job.Attempt),
		partitions: partitions,
		buckets:    buckets,
	}
}

// save commits cp under attempt a, as the engine's map task does.
func (b *taskBundle) save(a *task, cp *mapreduce.Checkpoint) error {
	return b.store.SaveCheckpoint(withTask(b.ctx, a), testRun, cp)
}

// body is the raw record of key, to tell that a fenced commit wrote
// nothing: not even the same bytes again (updated_at would move).
func (b *taskBundle) body(t *testing.T, key string) string {
	t.Helper()
	var body []byte
	var at time.Time
	err := b.pool.QueryRow(b.ctx, "SELECT body, updated_at FROM mr_state WHERE run = $1 AND key = $2", testRun, key).Scan(&body, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return "<none>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s at %s", body, at.Format(time.RFC3339Nano))
}

// attempts lists the attempts recorded as committed, as job/attempt/worker.
func (b *taskBundle) attempts(t *testing.T) []string {
	t.Helper()
	rows, _ := b.pool.Query(b.ctx, "SELECT job_id || '/' || attempt || '/' || worker FROM mr_attempts WHERE outcome = 'committed' ORDER BY job_id, attempt")
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// checkFenced checks that err is the fence of attempt a, naming its job.
func checkFenced(t *testing.T, err error, a *task, what string) {
	t.Helper()
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("%s = %v; want an error wrapping ErrFenced", what, err)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("job %d", a.job.ID)) || !strings.Contains(msg, fmt.Sprintf("attempt %d", a.job.Attempt)) {
		t.Errorf("%s: error %q should name the job and the attempt", what, msg)
	}
}

// TestTask_Fence checks the fence around every commit point: an attempt
// commits only while River runs its job at that attempt, so that a zombie
// (a process paused past its task's rescue, which wakes up while another
// attempt does the same work) changes nothing. The checkpoint a fenced
// commit would have replaced must be left as it was, byte for byte.
func TestTask_Fence(t *testing.T) {
	t.Parallel()
	args := MapArgs{Run: testRun, Commit: testCommit, Partition: 0}
	key := checkpointKey(0)

	t.Run("NonFinalCommitWrites", func(t *testing.T) {
		t.Parallel()
		b := newTaskBundle(t, 2, 1, phaseMap)
		a1 := claim(t, b, args)
		if err := b.save(a1, testCheckpoint(testCommit, 0, false)); err != nil {
			t.Fatalf("non-final commit of the running attempt: %v", err)
		}
		if cp, err := b.store.LoadCheckpoint(b.ctx, testRun, 0); err != nil || cp == nil || cp.Seq != 3 {
			t.Errorf("LoadCheckpoint after the commit = %+v, %v; want the checkpoint", cp, err)
		}
		if j := b.job(t, a1.job.ID); j.State != rivertype.JobStateRunning || j.Attempt != 1 {
			t.Errorf("job after a non-final commit is %s at attempt %d; want running at 1", j.State, j.Attempt)
		}
		if got := b.attempts(t); len(got) != 0 {
			t.Errorf("a non-final commit recorded attempts %v", got)
		}
	})

	t.Run("RescuedAttemptFenced", func(t *testing.T) {
		t.Parallel()
		b := newTaskBundle(t, 2, 1, phaseMap)
		a1 := claim(t, b, args)
		if err := b.save(a1, testCheckpoint(testCommit, 0, false)); err != nil {
			t.Fatal(err)
		}
		before := b.body(t, key)
		// River rescues the job and runs it again: attempt 2 owns it.
		b.setJob(t, a1.job.ID, rivertype.JobStateRunning, 2)

		late := testCheckpoint(testCommit, 0, false)
		late.Seq = 4
		checkFenced(t, b.save(a1, late), a1, "non-final commit of the rescued attempt 1")
		late.Done = true
		checkFenced(t, b.save(a1, late), a1, "final commit of the rescued attempt 1")
		if got := b.body(t, key); got != before {
			t.Errorf("fenced commits changed the checkpoint:\n was %s\n now %s", before, got)
		}
		if j := b.job(t, a1.job.ID); j.State != rivertype.JobStateRunning || j.Attempt != 2 {
			t.Errorf("a fenced final commit left the job %s at attempt %d; want running at 2", j.State, j.Attempt)
		}
		if got := b.attempts(t); len(got) != 0 {
			t.Errorf("fenced commits recorded attempts %v", got)
		}

		// The owner commits as usual.
		a2 := attempt(t, b, args, b.job(t, a1.job.ID))
		if err := b.save(a2, late); err != nil {
			t.Fatalf("final commit of attempt 2, which owns the job: %v", err)
		}
		if cp, err := b.store.LoadCheckpoint(b.ctx, testRun, 0); err != nil || cp == nil || cp.Seq != 4 || !cp.Done {
			t.Errorf("LoadCheckpoint after attempt 2's commit = %+v, %v; want Seq 4, Done", cp, err)
		}
		if got, want := b.attempts(t), []string{fmt.Sprintf("%d/2/test-2", a1.job.ID)}; !slices.Equal(got, want) {
			t.Errorf("committed attempts = %v; want %v", got, want)
		}
	})

	t.Run("JobGone", func(t *testing.T) {
		t.Parallel()
		b := newTaskBundle(t, 2, 1, phaseMap)
		a1 := claim(t, b, args)
		if _, err := b.pool.Exec(b.ctx, "DELETE FROM river_job WHERE id = $1", a1.job.ID); err != nil {
			t.Fatal(err)
		}
		for _, done := range []bool{false, true} {
			err := b.save(a1, testCheckpoint(testCommit, 0, done))
			checkFenced(t, err, a1, fmt.Sprintf("commit (final %v) of a job that is gone", done))
			if !strings.Contains(err.Error(), "gone") {
				t.Errorf("error %q should say the job is gone", err)
			}
		}
		if got := b.body(t, key); got != "<none>" {
			t.Errorf("fenced commits wrote the checkpoint %s", got)
		}
	})

	t.Run("FinalCommitCompletes", func(t *testing.T) {
		t.Parallel()
		b := newTaskBundle(t, 2, 1, phaseMap)
		a1 := claim(t, b, args)
		if err := b.save(a1, testCheckpoint(testCommit, 0, true)); err != nil {
			t.Fatalf("final commit: %v", err)
		}
		j := b.job(t, a1.job.ID)
		if j.State != rivertype.JobStateCompleted || j.Attempt != 1 || j.FinalizedAt == nil {
			t.Errorf("job after the final commit is %s at attempt %d (finalized %v); want completed at 1", j.State, j.Attempt, j.FinalizedAt)
		}
		if got, want := b.attempts(t), []string{fmt.Sprintf("%d/1/test-1", a1.job.ID)}; !slices.Equal(got, want) {
			t.Errorf("committed attempts = %v; want %v", got, want)
		}
		before := b.body(t, key)

		// The same attempt commits again, as the worker does after a
		// reduce whose sink's transaction ended the task (see
		// worker.run): it is done already, so nil, and no write.
		again := testCheckpoint(testCommit, 0, true)
		again.Seq = 9
		if err := b.save(a1, again); err != nil {
			t.Errorf("second final commit by the attempt that completed the job = %v; want nil", err)
		}
		a1.job = b.job(t, a1.job.ID) // as fresh as can be: still attempt 1's
		if err := a1.commit(b.ctx, b.pool, true, nil); err != nil {
			t.Errorf("worker's closing commit after the task's end = %v; want nil", err)
		}
		if got := b.body(t, key); got != before {
			t.Errorf("the second final commit changed the checkpoint:\n was %s\n now %s", before, got)
		}
		if got := b.attempts(t); len(got) != 1 {
			t.Errorf("committed attempts after the second commit = %v; want one", got)
		}
	})

	t.Run("CompletedByAnotherAttempt", func(t *testing.T) {
		t.Parallel()
		b := newTaskBundle(t, 2, 1, phaseMap)
		a1 := claim(t, b, args)
		if err := b.save(a1, testCheckpoint(testCommit, 0, false)); err != nil {
			t.Fatal(err)
		}
		before := b.body(t, key)
		b.setJob(t, a1.job.ID, rivertype.JobStateCompleted, 2)
		checkFenced(t, b.save(a1, testCheckpoint(testCommit, 0, true)), a1, "final commit of attempt 1 when attempt 2 completed the job")
		if got := b.body(t, key); got != before {
			t.Errorf("the fenced commit changed the checkpoint:\n was %s\n now %s", before, got)
		}
		if got := b.attempts(t); len(got) != 0 {
			t.Errorf("the fenced commit recorded attempts %v", got)
		}
	})

	// A job River gave up on at this very attempt (cancelled from the UI,
	// or discarded) is no longer the attempt's to commit.
	t.Run("GivenUpAtThisAttempt", func(t *testing.T) {
		t.Parallel()
		b := newTaskBundle(t, 2, 1, phaseMap)
		for i, state := range []rivertype.JobState{rivertype.JobStateCancelled, rivertype.JobStateDiscarded, rivertype.JobStateRetryable} {
			a := claim(t, b, MapArgs{Run: testRun, Commit: testCommit, Partition: i})
			b.setJob(t, a.job.ID, state, 1)
			checkFenced(t, b.save(a, testCheckpoint(testCommit, i, false)), a, fmt.Sprintf("commit of attempt 1 of a job %s at attempt 1", state))
			if got := b.body(t, checkpointKey(i)); got != "<none>" {
				t.Errorf("fenced commit wrote %s", got)
			}
		}
	})

	// A commit runs to its end even when the task's context is done: a
	// process paused past its task's timeout wakes up between any two
	// statements, and whether its commit counts is the fence's to say.
	t.Run("CancelledContextStillCommits", func(t *testing.T) {
		t.Parallel()
		b := newTaskBundle(t, 2, 1, phaseMap)
		a1 := claim(t, b, args)
		ctx, cancel := context.WithCancel(withTask(b.ctx, a1))
		cancel()
		if err := b.store.SaveCheckpoint(ctx, testRun, testCheckpoint(testCommit, 0, true)); err != nil {
			t.Fatalf("final commit under a cancelled context: %v", err)
		}
		if j := b.job(t, a1.job.ID); j.State != rivertype.JobStateCompleted {
			t.Errorf("job after the commit is %s; want completed", j.State)
		}
	})
}

// TestTask_Rescue checks the fence against River's own rescue statement
// (its driver's JobRescueMany, which the rescuer runs on a job it found
// running past the rescue time), on either side of a final commit.
func TestTask_Rescue(t *testing.T) {
	t.Parallel()
	args := MapArgs{Run: testRun, Commit: testCommit, Partition: 0}

	// The rescuer picked the job while attempt 1 was paused, and its
	// update comes while attempt 1's final commit holds the job's row:
	// it waits for the commit and then finds the job completed, so the
	// task is not run again.
	t.Run("DuringCommit", func(t *testing.T) {
		t.Parallel()
		b := newTaskBundle(t, 2, 1, phaseMap)
		a1 := claim(t, b, args)
		inTx, proceed := make(chan struct{}), make(chan struct{})
		var commitErr, rescueErr error
		var wg sync.WaitGroup
		wg.Go(func() {
			commitErr = a1.commit(b.ctx, b.pool, true, func(ctx context.Context, tx pgx.Tx) error {
				close(inTx)
				<-proceed
				return put(ctx, tx, testRun, checkpointKey(0), testCommit, true, testCheckpoint(testCommit, 0, true))
			})
		})
		<-inTx
		wg.Go(func() { rescueErr = b.rescue(a1.job) })
		waiting := b.waitForLockWaiters(t, 1, "river_job")
		close(proceed)
		wg.Wait()
		if waiting != 1 {
			t.Errorf("River's rescue did not wait for the commit holding the job's row")
		}
		if commitErr != nil || rescueErr != nil {
			t.Fatalf("commit: %v; rescue: %v", commitErr, rescueErr)
		}
		if j := b.job(t, a1.job.ID); j.State != rivertype.JobStateCompleted || j.Attempt != 1 || len(j.Errors) != 0 {
			t.Errorf("job after the commit and the rescue is %s at attempt %d with %d errors; want completed at 1, none", j.State, j.Attempt, len(j.Errors))
		}
		if cp, err := b.store.LoadCheckpoint(b.ctx, testRun, 0); err != nil || cp == nil || !cp.Done {
			t.Errorf("LoadCheckpoint = %+v, %v; want the final checkpoint", cp, err)
		}
	})

	// The rescue comes first: attempt 1's commit, after it, is fenced,
	// although River has not given the job to another attempt yet.
	t.Run("BeforeCommit", func(t *testing.T) {
		t.Parallel()
		b := newTaskBundle(t, 2, 1, phaseMap)
		a1 := claim(t, b, args)
		if err := b.rescue(a1.job); err != nil {
			t.Fatal(err)
		}
		if j := b.job(t, a1.job.ID); j.State != rivertype.JobStateRetryable {
			t.Fatalf("job after River's rescue is %s; want retryable", j.State)
		}
		checkFenced(t, b.save(a1, testCheckpoint(testCommit, 0, true)), a1, "final commit after River's rescue")
		if got := b.body(t, checkpointKey(0)); got != "<none>" {
			t.Errorf("the fenced commit wrote %s", got)
		}
	})
}

// rescue runs River's rescue of job as its rescuer does for a job running
// past the rescue time (here any running job: the horizon is ahead).
func (b *taskBundle) rescue(job *rivertype.JobRow) error {
	errData, err := json.Marshal(rivertype.AttemptError{At: time.Now(), Attempt: job.Attempt, Error: "Stuck job rescued by JobRescuer"})
	if err != nil {
		return err
	}
	_, err = riverpgxv5.New(b.pool).GetExecutor().JobRescueMany(b.ctx, &riverdriver.JobRescueManyParams{
		ID:           []int64{job.ID},
		Error:        [][]byte{errData},
		FinalizedAt:  []*time.Time{nil},
		ScheduledAt:  []time.Time{time.Now()},
		State:        []string{string(rivertype.JobStateRetryable)},
		StuckHorizon: time.Now().Add(time.Hour),
	})
	return err
}

// countAdvances logs the updates of r1's row in mr_runs from now on, with
// a trigger: end is the only writer of the row during a phase, so each
// update is one barrier commit that moved the run on. The log says what
// that commit saw done, in its own transaction: a barrier must move on
// only once every task of its phase is. The tasks queued alone could not
// tell one advance from two, since their insert is unique by args.
func (b *taskBundle) countAdvances(t *testing.T) func() []string {
	t.Helper()
	_, err := b.pool.Exec(b.ctx, `
		CREATE TABLE test_advances (seq serial, phase text NOT NULL, partitions bigint NOT NULL, buckets bigint NOT NULL);
		CREATE FUNCTION test_log_advance() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				INSERT INTO test_advances (phase, partitions, buckets) VALUES (NEW.phase,
					(SELECT count(*) FROM mr_state WHERE run = NEW.run AND commit = NEW.commit AND done AND key LIKE 'checkpoint/%'),
					(SELECT count(*) FROM mr_state WHERE run = NEW.run AND commit = NEW.commit AND done AND key LIKE 'done/%'));
				RETURN NEW;
			END $$;
		CREATE TRIGGER test_advances AFTER UPDATE ON mr_runs FOR EACH ROW EXECUTE FUNCTION test_log_advance()`)
	if err != nil {
		t.Fatal(err)
	}
	return func() []string {
		t.Helper()
		rows, _ := b.pool.Query(b.ctx, "SELECT format('%s after %s partitions and %s buckets', phase, partitions, buckets) FROM test_advances ORDER BY seq")
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
}

// phase is r1's phase in mr_runs.
func (b *taskBundle) phase(t *testing.T) (phase string, finished bool) {
	t.Helper()
	if err := b.pool.QueryRow(b.ctx, "SELECT phase, finished_at IS NOT NULL FROM mr_runs WHERE run = $1", testRun).Scan(&phase, &finished); err != nil {
		t.Fatal(err)
	}
	return phase, finished
}

// queued lists the tasks of kind that River would hand out, in the
// order they were queued.
func (b *taskBundle) queued(t *testing.T, kind string) []taskRef {
	t.Helper()
	rows, _ := b.pool.Query(b.ctx, "SELECT args FROM river_job WHERE kind = $1 AND queue = $2 AND state = 'available' ORDER BY id", kind, queue)
	args, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		t.Fatal(err)
	}
	var refs []taskRef
	for _, a := range args {
		ref, err := refOf(kind, a)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	return refs
}

// TestTask_End checks the barriers between phases: the commit that ends
// the last task of a phase, and only it, moves the run on and queues the
// next phase's tasks, in the commit's own transaction.
func TestTask_End(t *testing.T) {
	t.Parallel()

	// The last two map tasks end at once, each on its own connection
	// with its own job. The test holds r1's row so that both have written
	// their Done checkpoint, uncommitted, and wait at end's lock of the
	// row when it lets go: the interleaving where, without that lock,
	// each would count the other's partition as not done and neither
	// would queue the reduce phase (a run that never ends). With it the
	// second to take the row sees the first's commit.
	t.Run("LastTwoMapTasksAtOnce", func(t *testing.T) {
		t.Parallel()
		const partitions, buckets = 4, 3
		b := newTaskBundle(t, partitions, buckets, phaseMap)
		advances := b.countAdvances(t)
		var tasks []*task
		for p := range partitions {
			tasks = append(tasks, claim(t, b, MapArgs{Run: testRun, Commit: testCommit, Partition: p}))
		}
		for p := range 2 {
			if err := b.save(tasks[p], testCheckpoint(testCommit, p, true)); err != nil {
				t.Fatal(err)
			}
			if phase, _ := b.phase(t); phase != phaseMap {
				t.Fatalf("the run is at phase %s after %d of %d map tasks ended; want map", phase, p+1, partitions)
			}
		}

		blocker, err := b.pool.Begin(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer blocker.Rollback(context.WithoutCancel(b.ctx))
		if _, err := blocker.Exec(b.ctx, "SELECT FROM mr_runs WHERE run = $1 FOR UPDATE", testRun); err != nil {
			t.Fatal(err)
		}
		errs := make([]error, partitions)
		var wg sync.WaitGroup
		for p := 2; p < partitions; p++ {
			wg.Go(func() { errs[p] = b.save(tasks[p], testCheckpoint(testCommit, p, true)) })
		}
		waiting := b.waitForLockWaiters(t, 2, "FROM mr_runs")
		if err := blocker.Rollback(b.ctx); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if waiting != 2 {
			t.Errorf("%d of the last two commits waited for r1's row; want both (does end still lock it?)", waiting)
		}
		for p, err := range errs {
			if err != nil {
				t.Errorf("final commit of partition %d: %v", p, err)
			}
		}
		if phase, _ := b.phase(t); phase != phaseReduce {
			t.Errorf("the run is at phase %s after every map task ended; want reduce", phase)
		}
		if got, want := advances(), []string{"reduce after 4 partitions and 0 buckets"}; !slices.Equal(got, want) {
			t.Errorf("the barrier commits moved the run: %q; want %q, exactly once", got, want)
		}
		want := []taskRef{ReduceArgs{testRun, testCommit, 0}.ref(), ReduceArgs{testRun, testCommit, 1}.ref(), ReduceArgs{testRun, testCommit, 2}.ref()}
		if got := b.queued(t, kindReduce); !slices.Equal(got, want) {
			t.Errorf("queued reduce tasks = %v; want %v", got, want)
		}
		for _, a := range tasks {
			if j := b.job(t, a.job.ID); j.State != rivertype.JobStateCompleted {
				t.Errorf("the job of the %s is %s; want completed", a, j.State)
			}
		}
	})

	// The reduce barrier counts done markers, and the finish task ends
	// the run.
	t.Run("ReduceThenFinish", func(t *testing.T) {
		t.Parallel()
		const buckets = 2
		b := newTaskBundle(t, 1, buckets, phaseReduce)
		advances := b.countAdvances(t)
		for bucket := range buckets {
			a := claim(t, b, ReduceArgs{Run: testRun, Commit: testCommit, Bucket: bucket})
			if err := b.store.MarkBucketDone(withTask(b.ctx, a), testRun, testCommit, bucket); err != nil {
				t.Fatalf("MarkBucketDone of bucket %d: %v", bucket, err)
			}
			if j := b.job(t, a.job.ID); j.State != rivertype.JobStateCompleted {
				t.Errorf("the job of the %s is %s; want completed", a, j.State)
			}
		}
		if got, want := advances(), []string{"finish after 0 partitions and 2 buckets"}; !slices.Equal(got, want) {
			t.Fatalf("the barrier commits moved the run: %q; want %q, exactly once", got, want)
		}
		if got, want := b.queued(t, kindFinish), []taskRef{FinishArgs{testRun, testCommit}.ref()}; !slices.Equal(got, want) {
			t.Fatalf("queued finish tasks = %v; want %v", got, want)
		}
		if got, err := b.store.BucketsDone(b.ctx, testRun, testCommit); err != nil || !slices.Equal(got, []int{0, 1}) {
			t.Errorf("BucketsDone = %v, %v; want [0 1]", got, err)
		}

		a := claim(t, b, FinishArgs{Run: testRun, Commit: testCommit})
		if err := a.commit(b.ctx, b.pool, true, nil); err != nil {
			t.Fatalf("the finish task's commit: %v", err)
		}
		if phase, finished := b.phase(t); phase != phaseDone || !finished {
			t.Errorf("the run is at phase %s (finished %v) after its finish task; want done, finished", phase, finished)
		}
		if got := advances(); len(got) != 2 || got[1] != "done after 0 partitions and 2 buckets" {
			t.Errorf("the commits moved the run: %q; want the finish task's last", got)
		}
	})

	// A task of a plan replaced since (mr run --fresh resubmitted the run
	// with a new Commit) is fenced: its commit would write over the new
	// plan's record of the partition, and must not move the new plan's
	// run on. (Its next attempt finds the plan replaced and ends with
	// nothing to do, see worker.run.)
	t.Run("PlanReplaced", func(t *testing.T) {
		t.Parallel()
		b := newTaskBundle(t, 1, 1, phaseMap)
		a := claim(t, b, MapArgs{Run: testRun, Commit: testCommit, Partition: 0})
		if _, err := b.pool.Exec(b.ctx, "UPDATE mr_runs SET commit = 'c2' WHERE run = $1", testRun); err != nil {
			t.Fatal(err)
		}
		for _, final := range []bool{false, true} {
			if err := b.save(a, testCheckpoint(testCommit, 0, final)); !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), "replaced by plan c2") {
				t.Fatalf("commit (final %v) of the old plan's task: %v; want it fenced, naming the new plan", final, err)
			}
		}
		if cp, err := b.store.LoadCheckpoint(b.ctx, testRun, 0); err != nil || cp != nil {
			t.Errorf("the old plan's task wrote checkpoint %+v (%v); want none", cp, err)
		}
		if j := b.job(t, a.job.ID); j.State != rivertype.JobStateRunning {
			t.Errorf("the old plan's job is %s; want still running, for River to retry", j.State)
		}
		if phase, _ := b.phase(t); phase != phaseMap {
			t.Errorf("the new plan's run is at phase %s; want map", phase)
		}
		if got := b.queued(t, kindReduce); len(got) != 0 {
			t.Errorf("the old plan's task queued reduce tasks %v", got)
		}
	})
}

// waitForLockWaiters waits, for up to 10 seconds, until n of the bundle's
// connections wait for a lock in a statement containing query, and
// returns how many do at the end.
func (b *taskBundle) waitForLockWaiters(t *testing.T, n int, query string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got int
		err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock' AND strpos(query, $2) > 0`, b.app, query).Scan(&got)
		if err != nil {
			t.Fatal(err)
		}
		if got >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}
