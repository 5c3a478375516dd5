package coordinator

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// queue is the River queue of mr's tasks.
const queue = "mr"

// The River job kinds of a run's tasks, one per phase.
const (
	kindMap    = "mr_map"
	kindReduce = "mr_reduce"
	kindFinish = "mr_finish"
)

// Phases of a run, in mr_runs.phase: each barrier commit moves a run to
// the next.
const (
	phaseMap    = "map"
	phaseReduce = "reduce"
	phaseFinish = "finish"
	phaseDone   = "done"
)

// MapArgs is a map task: partition Partition of the plan with Commit.
type MapArgs struct {
	Run       string `json:"run"`
	Commit    string `json:"commit"`
	Partition int    `json:"partition"`
}

// ReduceArgs is a reduce task: bucket Bucket of the plan with Commit.
type ReduceArgs struct {
	Run    string `json:"run"`
	Commit string `json:"commit"`
	Bucket int    `json:"bucket"`
}

// FinishArgs is the task that ends a run: it swaps the output table in.
type FinishArgs struct {
	Run    string `json:"run"`
	Commit string `json:"commit"`
}

func (MapArgs) Kind() string    { return kindMap }
func (ReduceArgs) Kind() string { return kindReduce }
func (FinishArgs) Kind() string { return kindFinish }

func (a MapArgs) ref() taskRef    { return taskRef{kindMap, a.Run, a.Commit, a.Partition} }
func (a ReduceArgs) ref() taskRef { return taskRef{kindReduce, a.Run, a.Commit, a.Bucket} }
func (a FinishArgs) ref() taskRef { return taskRef{kindFinish, a.Run, a.Commit, 0} }

// taskArgs are the args of one of the kinds above.
type taskArgs interface {
	river.JobArgs
	ref() taskRef
}

// taskRef names a task.
type taskRef struct {
	kind, run  string
	planCommit string // the Commit of the task's plan
	index      int    // the partition or bucket
}

func (r taskRef) String() string {
	switch r.kind {
	case kindMap:
		return fmt.Sprintf("map task of partition %d", r.index)
	case kindReduce:
		return fmt.Sprintf("reduce task of bucket %d", r.index)
	}
	return "finish task"
}

// insertOpts are every task's: a task is unique by its args among the
// jobs not yet given up, so that submitting a run again, or two barrier
// commits, never queue one task twice.
func insertOpts() *river.InsertOpts {
	return &river.InsertOpts{Queue: queue, MaxAttempts: maxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// maxAttempts is how often River runs a task before it gives it up (see
// retryPolicy): River's default, 25, gave up after five minutes of a
// database outage.
const maxAttempts = 100

// ErrFenced reports a commit of an attempt that no longer owns its task:
// River gave the task to another attempt (its process stopped answering
// past the rescue time), or the task is finished. The commit changed
// nothing.
var ErrFenced = errors.New("attempt fenced")

// commitTimeout bounds a commit transaction, which runs to its end even
// when the task's context is done (see task.commit).
const commitTimeout = time.Minute

// A task is one attempt at one task, carried in the context of the work
// it does, so that the Store's commits under it are fenced (see commit).
type task struct {
	taskRef
	job *rivertype.JobRow
	// completeTx completes the job in a transaction (River's
	// JobCompleteTx, which is generic in the job's args).
	completeTx func(ctx context.Context, tx pgx.Tx) error
	worker     string
	partitions int // the run's, for the barriers
	buckets    int
}

type taskKey struct{}

func withTask(ctx context.Context, t *task) context.Context {
	return context.WithValue(ctx, taskKey{}, t)
}

func taskFrom(ctx context.Context) *task {
	t, _ := ctx.Value(taskKey{}).(*task)
	return t
}

// errCommitted stops a commit that finds its task completed by this very
// attempt: the commit is made already (by the sink's transaction, see
// hook).
var errCommitted = errors.New("committed already by this attempt")

// commit runs write in a transaction on pool that first fences the
// attempt (see fence) and, when final, ends the task (see end). The
// transaction runs to its end, for up to commitTimeout, even when ctx is
// done: whether a late commit counts is the fence's to say, not a clock's
// (a process paused past its task's timeout wakes up between any two
// statements).
func (t *task) commit(ctx context.Context, pool *pgxpool.Pool, final bool, write func(context.Context, pgx.Tx) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	// Read committed, whatever the database's default: the barrier's
	// count must see the commits that ended before its statement.
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error { return t.inTx(ctx, tx, final, write) })
	if errors.Is(err, errCommitted) {
		return nil
	}
	return err
}

// inTx is commit's work in tx, which may be another package's (see
// pg.TxHook). From the fence on, tx holds the task's job row, which River
// must update to rescue the task: a process that froze before its COMMIT
// would hold it until it woke up, so the server is told to end the
// session if it idles that long (see idleInTransaction), also where tx
// is a sink's, on a connection the coordinator did not set up.
func (t *task) inTx(ctx context.Context, tx pgx.Tx, final bool, write func(context.Context, pgx.Tx) error) error {
	var isolation string
	if err := tx.QueryRow(ctx, "SELECT current_setting('transaction_isolation'), set_config('idle_in_transaction_session_timeout', $1, true)",
		strconv.FormatInt(idleInTransaction.Milliseconds(), 10)).Scan(&isolation, new(string)); err != nil {
		return err
	}
	if isolation != "read committed" { // a sink's transaction, on a database whose default is another
		return fmt.Errorf("the %s of run %s commits in a transaction at isolation %s; the coordinator's commits need read committed (set default_transaction_isolation)",
			t, t.run, isolation)
	}
	if err := t.fence(ctx, tx, final); err != nil {
		return err
	}
	if write != nil {
		if err := write(ctx, tx); err != nil {
			return err
		}
	}
	if final {
		return t.end(ctx, tx)
	}
	return nil
}

// fence locks the run's row in tx (for update in a final commit, which
// ends the task and may advance the run; shared otherwise), then the
// task's job row, in the order Submit takes them, and returns an error
// wrapping ErrFenced unless the job is running this attempt of the run's
// current plan (a task of a plan that mr run --fresh replaced would write
// over the new plan's state), or errCommitted if this attempt completed
// it already. (A job completed at this attempt's number was completed by
// this attempt: River's completer completes a job only for a Work that
// returned nil, and no attempt that is not the job's returns nil, see
// yield.) The job row's lock holds until tx ends: River's rescuer and
// completer update the row, so they wait for the commit or see its
// outcome, and no other attempt can start meanwhile.
func (t *task) fence(ctx context.Context, tx pgx.Tx, final bool) error {
	lock := "FOR SHARE"
	if final {
		lock = "FOR UPDATE"
	}
	var commit string
	if err := tx.QueryRow(ctx, "SELECT commit FROM mr_runs WHERE run = $1 "+lock, t.run).Scan(&commit); err != nil {
		return fmt.Errorf("read the plan of run %s: %w", t.run, err)
	}
	var state string
	var attempt int
	err := tx.QueryRow(ctx, "SELECT state, attempt FROM river_job WHERE id = $1 FOR UPDATE", t.job.ID).Scan(&state, &attempt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%w: attempt %d of the %s of run %s: its job %d is gone", ErrFenced, t.job.Attempt, t, t.run, t.job.ID)
	case err != nil:
		return err
	case attempt == t.job.Attempt && state == string(rivertype.JobStateCompleted):
		return errCommitted
	case attempt != t.job.Attempt || state != string(rivertype.JobStateRunning):
		return fmt.Errorf("%w: attempt %d of the %s of run %s: its job %d is %s at attempt %d, so this attempt's commit changes nothing",
			ErrFenced, t.job.Attempt, t, t.run, t.job.ID, state, attempt)
	case commit != t.planCommit:
		return fmt.Errorf("%w: the %s of run %s belongs to plan %s, which was replaced by plan %s (mr run --fresh)",
			ErrFenced, t, t.run, t.planCommit, commit)
	}
	return nil
}

// end completes the task's job in tx, records the attempt, and, if the
// task is the last of its phase to end, moves the run to the next phase
// and queues its tasks: the barrier between map and reduce, and between
// reduce and finish. The fence locked the run's row for update, so the
// last two tasks of a phase to end cannot both miss each other's commit.
func (t *task) end(ctx context.Context, tx pgx.Tx) error {
	if err := t.completeTx(ctx, tx); err != nil {
		return fmt.Errorf("complete job %d: %w", t.job.ID, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO mr_attempts (run, task, job_id, attempt, worker, outcome)
		VALUES ($1, $2, $3, $4, $5, 'committed') ON CONFLICT DO NOTHING`, t.run, t.String(), t.job.ID, t.job.Attempt, t.worker); err != nil {
		return err
	}
	var phase string
	if err := tx.QueryRow(ctx, "SELECT phase FROM mr_runs WHERE run = $1", t.run).Scan(&phase); err != nil {
		return fmt.Errorf("read the phase of run %s: %w", t.run, err)
	}
	switch {
	case t.kind == kindMap && phase == phaseMap:
		if n, err := countDone(ctx, tx, t.run, t.planCommit, "checkpoint/%"); err != nil || n < t.partitions {
			return err
		}
		return advance(ctx, tx, t.run, phaseReduce, reduceTasks(t.run, t.planCommit, t.buckets))
	case t.kind == kindReduce && phase == phaseReduce:
		if n, err := countDone(ctx, tx, t.run, t.planCommit, "done/%"); err != nil || n < t.buckets {
			return err
		}
		return advance(ctx, tx, t.run, phaseFinish, []river.InsertManyParams{{Args: FinishArgs{t.run, t.planCommit}, InsertOpts: insertOpts()}})
	case t.kind == kindFinish && phase == phaseFinish:
		_, err := tx.Exec(ctx, "UPDATE mr_runs SET phase = $2, finished_at = now() WHERE run = $1", t.run, phaseDone)
		return err
	}
	return nil
}

// countDone counts the run's records under commit whose keys are like
// pattern and that are done: ended partitions, applied buckets.
func countDone(ctx context.Context, tx pgx.Tx, run, commit, pattern string) (int, error) {
	var n int
	err := tx.QueryRow(ctx, "SELECT count(*) FROM mr_state WHERE run = $1 AND commit = $2 AND done AND key LIKE $3",
		run, commit, pattern).Scan(&n)
	return n, err
}

// advance moves run to phase and queues tasks, in tx, through the River
// client of ctx (a worker's).
func advance(ctx context.Context, tx pgx.Tx, run, phase string, tasks []river.InsertManyParams) error {
	if _, err := tx.Exec(ctx, "UPDATE mr_runs SET phase = $2 WHERE run = $1", run, phase); err != nil {
		return err
	}
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return err
	}
	_, err = client.InsertManyTx(ctx, tx, tasks)
	return err
}

func mapTasks(run, commit string, parts []int) []river.InsertManyParams {
	tasks := make([]river.InsertManyParams, len(parts))
	for i, p := range parts {
		tasks[i] = river.InsertManyParams{Args: MapArgs{run, commit, p}, InsertOpts: insertOpts()}
	}
	return tasks
}

func reduceTasks(run, commit string, buckets int) []river.InsertManyParams {
	tasks := make([]river.InsertManyParams, buckets)
	for b := range buckets {
		tasks[b] = river.InsertManyParams{Args: ReduceArgs{run, commit, b}, InsertOpts: insertOpts()}
	}
	return tasks
}
