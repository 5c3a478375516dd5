package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// RunStatus is what the coordinator knows of a submitted run, for mr
// status and for following a run.
type RunStatus struct {
	Run, Commit string
	// Command is the submitted command line, without passwords, that
	// workers rebuild the run from.
	Command []string
	// Phase is map, reduce, finish or done.
	Phase       string
	SubmittedAt time.Time
	FinishedAt  *time.Time
	// Tasks counts the run's tasks (of its plan) by kind and River state.
	Tasks []TaskCount
	// Failed describes each task that River gave up on (discarded or
	// cancelled) and no submission has queued again, with its last
	// error: the run cannot end without it.
	Failed []string
	// Attempts lists the attempts that committed or were fenced, in time.
	Attempts []Attempt
}

// TaskCount is how many of a run's tasks of Kind are in State.
type TaskCount struct {
	Kind, State string
	N           int
}

// Attempt is one attempt at a task that ended in a commit or a fence.
type Attempt struct {
	Task    string
	JobID   int64
	Attempt int
	Worker  string
	Outcome string // committed, or fenced
	Detail  string
	At      time.Time
}

// ErrNotSubmitted reports a run that the coordinator has no record of.
var ErrNotSubmitted = errors.New("run not submitted to this coordinator")

// RunStatus returns the status of run.
func (c *Coordinator) RunStatus(ctx context.Context, run string) (*RunStatus, error) {
	st := &RunStatus{Run: run}
	err := c.db.Pool.QueryRow(ctx, "SELECT command, commit, phase, submitted_at, finished_at FROM mr_runs WHERE run = $1", run).
		Scan(&st.Command, &st.Commit, &st.Phase, &st.SubmittedAt, &st.FinishedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s in %s", ErrNotSubmitted, run, c)
	}
	if err != nil {
		return nil, c.db.Scrub(err)
	}
	rows, _ := c.db.Pool.Query(ctx, `SELECT kind, state::text, count(*) FROM river_job
		WHERE args->>'run' = $1 AND args->>'commit' = $2 GROUP BY 1, 2 ORDER BY 1, 2`, run, st.Commit)
	if st.Tasks, err = pgx.CollectRows(rows, pgx.RowToStructByPos[TaskCount]); err != nil {
		return nil, c.db.Scrub(err)
	}
	// A task given up on counts until a submission queues it anew.
	rows, _ = c.db.Pool.Query(ctx, `SELECT kind, args, coalesce(errors[array_upper(errors, 1)]->>'error', state::text) FROM river_job j
		WHERE args->>'run' = $1 AND args->>'commit' = $2 AND state IN ('discarded', 'cancelled')
			AND NOT EXISTS (SELECT FROM river_job n WHERE n.kind = j.kind AND n.args = j.args AND n.id > j.id)
		ORDER BY id`, run, st.Commit)
	var kind, last string
	var args []byte
	_, err = pgx.ForEachRow(rows, []any{&kind, &args, &last}, func() error {
		ref, err := refOf(kind, args)
		if err != nil {
			return err
		}
		st.Failed = append(st.Failed, fmt.Sprintf("%s: %s", ref, last))
		return nil
	})
	if err != nil {
		return nil, c.db.Scrub(err)
	}
	rows, _ = c.db.Pool.Query(ctx, `SELECT task, job_id, attempt, worker, outcome, detail, at FROM mr_attempts
		WHERE run = $1 ORDER BY at, job_id, attempt`, run)
	if st.Attempts, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Attempt]); err != nil {
		return nil, c.db.Scrub(err)
	}
	return st, nil
}

// Submitted lists the runs submitted to the coordinator, by id.
func (c *Coordinator) Submitted(ctx context.Context) ([]string, error) {
	rows, _ := c.db.Pool.Query(ctx, "SELECT run FROM mr_runs ORDER BY run")
	runs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return runs, c.db.Scrub(err)
}

// Storage returns the --storage of a submitted command line.
func (st *RunStatus) Storage() string {
	for _, arg := range st.Command {
		if s, ok := strings.CutPrefix(arg, "--storage="); ok {
			return s
		}
	}
	return ""
}

// refOf is the task of a job of kind with args.
func refOf(kind string, args []byte) (taskRef, error) {
	var a taskArgs
	switch kind {
	case kindMap:
		a = &MapArgs{}
	case kindReduce:
		a = &ReduceArgs{}
	case kindFinish:
		a = &FinishArgs{}
	default:
		return taskRef{}, fmt.Errorf("job kind %q is not mr's", kind)
	}
	if err := json.Unmarshal(args, a); err != nil {
		return taskRef{}, err
	}
	return a.ref(), nil
}

// Worker is a worker process as the coordinator saw it last.
type Worker struct {
	ID, Host  string
	PID       int
	StartedAt time.Time
	SeenAt    time.Time
	StoppedAt *time.Time
	// Running counts the tasks River has it running now.
	Running int
}

// Workers lists the workers seen within the last since, newest first.
func (c *Coordinator) Workers(ctx context.Context, since time.Duration) ([]Worker, error) {
	rows, _ := c.db.Pool.Query(ctx, `SELECT w.id, w.host, w.pid, w.started_at, w.seen_at, w.stopped_at,
			(SELECT count(*) FROM river_job j WHERE j.state = 'running' AND j.queue = $2 AND j.attempted_by[array_upper(j.attempted_by, 1)] = w.id)::int
		FROM mr_workers w WHERE w.seen_at > now() - $1::interval ORDER BY w.started_at DESC`, since, queue)
	ws, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Worker])
	return ws, c.db.Scrub(err)
}
