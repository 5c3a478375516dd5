package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/mapreduce"
)

// Opener rebuilds the run of a submitted command line for one task,
// opened over the coordinator's Store with mapreduce.Config.Shared and a
// budget of memory for one of concurrency tasks at once; close releases
// it.
type Opener func(ctx context.Context, command []string, concurrency int) (r *mapreduce.Runner, close func() error, err error)

// WorkerConfig is how a worker runs tasks.
type WorkerConfig struct {
	// Concurrency is the number of tasks it runs at once.
	Concurrency int
	// TaskTimeout cancels a task that runs longer (River's JobTimeout);
	// the task is retried, from its last commit.
	TaskTimeout time.Duration
	// RescueAfter is how long a task may run before River gives it to
	// another worker (River's RescueStuckJobsAfter): the time a killed
	// worker's tasks wait. It must be longer than TaskTimeout.
	RescueAfter time.Duration
	// IdleExit, if positive, stops the worker once no task has been
	// queued or running for that long: for a Kubernetes Job, whose pods
	// must end.
	IdleExit time.Duration
	// Logger receives the worker's log lines; nil for slog.Default().
	Logger *slog.Logger
}

// fetchCooldown is the least time between two of a worker's fetches of
// tasks. River's default, 100 ms, held each of a worker's task slots to
// about ten tasks a second (measured with BenchmarkCoordinator's tasks of
// 12 rows, 36 to 90 ms each, which ended 100 ms apart); a fetch is one
// cheap query.
const fetchCooldown = 20 * time.Millisecond

// heartbeat is how often a worker records that it is alive, and looks for
// an idle queue.
const heartbeat = time.Second

// Work runs a worker until ctx is done (it lets its running tasks finish,
// for up to TaskTimeout, as River's Stop does) or, with IdleExit, until
// the queue is idle.
func (c *Coordinator) Work(ctx context.Context, open Opener, cfg WorkerConfig) (err error) {
	if cfg.RescueAfter <= cfg.TaskTimeout {
		return fmt.Errorf("the rescue time %s must be longer than the task timeout %s: River would give running tasks to other workers", cfg.RescueAfter, cfg.TaskTimeout)
	}
	w := &worker{c: c, open: open, id: workerID(), log: cfg.Logger, concurrency: cfg.Concurrency, taskTimeout: cfg.TaskTimeout}
	if w.log == nil {
		w.log = slog.Default()
	}
	w.log = w.log.With("worker", w.id)
	workers := river.NewWorkers()
	river.AddWorker(workers, &taskWorker[MapArgs]{w: w})
	river.AddWorker(workers, &taskWorker[ReduceArgs]{w: w})
	river.AddWorker(workers, &taskWorker[FinishArgs]{w: w})
	client, err := river.NewClient(riverpgxv5.New(c.db.Pool), &river.Config{
		ID:                   w.id,
		Queues:               map[string]river.QueueConfig{queue: {MaxWorkers: cfg.Concurrency}},
		Workers:              workers,
		JobTimeout:           cfg.TaskTimeout,
		RescueStuckJobsAfter: cfg.RescueAfter,
		RetryPolicy:          retryPolicy{},
		FetchCooldown:        fetchCooldown,
		Logger:               w.log,
	})
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	if _, err := c.db.Pool.Exec(ctx, "INSERT INTO mr_workers (id, host, pid) VALUES ($1, $2, $3)", w.id, host, os.Getpid()); err != nil {
		return c.db.Scrub(fmt.Errorf("register worker in %s: %w", c, err))
	}
	defer func() {
		_, serr := c.db.Pool.Exec(context.WithoutCancel(ctx), "UPDATE mr_workers SET stopped_at = now(), seen_at = now() WHERE id = $1", w.id)
		err = errors.Join(err, serr)
	}()
	// River's client stops on its own context's end by cancelling its
	// tasks; a worker asked to stop lets them finish first, so the
	// client runs under a context that only Stop ends.
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return c.db.Scrub(fmt.Errorf("start River on %s: %w", c, err))
	}
	w.log.Info("worker started", "coordinator", c.String(), "concurrency", cfg.Concurrency)
	w.wait(ctx, cfg.IdleExit)
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.TaskTimeout)
	defer cancel()
	if err := client.Stop(stopCtx); err != nil {
		return errors.Join(err, client.StopAndCancel(context.WithoutCancel(ctx)))
	}
	return nil
}

// wait returns when ctx is done or, with idle > 0, once the queue has been
// empty for idle; it records the worker as seen meanwhile.
func (w *worker) wait(ctx context.Context, idle time.Duration) {
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	busy := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := w.c.db.Pool.Exec(ctx, "UPDATE mr_workers SET seen_at = now() WHERE id = $1", w.id); err != nil && ctx.Err() == nil {
			w.log.Warn("cannot record the worker as alive", "err", w.c.db.Scrub(err))
		}
		if idle <= 0 {
			continue
		}
		var left bool
		err := w.c.db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM river_job WHERE queue = $1
			AND state IN ('available', 'pending', 'retryable', 'running', 'scheduled'))`, queue).Scan(&left)
		switch {
		case err != nil && ctx.Err() == nil:
			w.log.Warn("cannot look for queued tasks", "err", w.c.db.Scrub(err))
		case left || err != nil:
			busy = time.Now()
		case time.Since(busy) >= idle:
			w.log.Info("no task left: stopping", "idle", idle)
			return
		}
	}
}

// workerID names a worker process: its host and pid, which say where to
// look, and a random suffix, since pids repeat.
func workerID() string {
	host, _ := os.Hostname()
	var b [3]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// retryPolicy retries a failed task after a second per attempt so far, up
// to half a minute: a task resumes from its last commit, so a retry costs
// little, and a task failed by a fence (see ErrFenced) should go on soon.
// With maxAttempts, River gives a task up after about 40 minutes of
// failures: a database or storage outage shorter than that loses nothing.
type retryPolicy struct{}

func (retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	return time.Now().Add(time.Duration(min(job.Attempt, 30)) * time.Second)
}

// A worker runs the tasks River gives it.
type worker struct {
	c           *Coordinator
	open        Opener
	id          string
	log         *slog.Logger
	concurrency int
	taskTimeout time.Duration // the longest a live attempt runs (see yield)
}

// taskWorker is the River worker of one kind of task.
type taskWorker[T taskArgs] struct {
	river.WorkerDefaults[T]
	w *worker
}

func (tw *taskWorker[T]) Work(ctx context.Context, job *river.Job[T]) error {
	complete := func(ctx context.Context, tx pgx.Tx) error {
		_, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job)
		return err
	}
	return tw.w.run(ctx, job.JobRow, job.Args.ref(), complete)
}

// run runs one attempt at a task. A task of a plan that was replaced
// since (mr run --fresh) has nothing to do. A task whose work is
// committed already (its last commit came before a crash, or a zombie
// attempt's did) ends with a commit of its own.
func (w *worker) run(ctx context.Context, job *rivertype.JobRow, ref taskRef, complete func(context.Context, pgx.Tx) error) error {
	log := w.log.With("run", ref.run, "task", ref.String(), "job", job.ID, "attempt", job.Attempt)
	rec, err := w.c.loadRun(ctx, ref.run)
	if err != nil {
		return w.c.db.Scrub(err)
	}
	if rec == nil || rec.commit != ref.planCommit {
		log.Info("the task's plan was replaced: nothing to do")
		return nil
	}
	t := &task{taskRef: ref, job: job, completeTx: complete, worker: w.id, partitions: rec.partitions, buckets: rec.buckets}
	ctx = withTask(ctx, t)
	if ref.kind == kindReduce {
		ctx = pg.WithTxHook(ctx, &pg.TxHook{Namespace: w.c.namespace, Run: func(ctx context.Context, tx pgx.Tx) error {
			return t.inTx(ctx, tx, true, markDone(ref.run, ref.planCommit, ref.index))
		}})
	}
	start := time.Now()
	err = w.do(ctx, rec.command, ref)
	if err == nil {
		err = t.commit(ctx, w.c.db.Pool, true, nil)
	}
	if errors.Is(err, ErrFenced) {
		log.Warn("attempt fenced: another attempt owns the task", "err", err)
		_, rerr := w.c.db.Pool.Exec(context.WithoutCancel(ctx), `INSERT INTO mr_attempts (run, task, job_id, attempt, worker, outcome, detail)
			VALUES ($1, $2, $3, $4, $5, 'fenced', $6) ON CONFLICT DO NOTHING`,
			ref.run, ref.String(), job.ID, job.Attempt, w.id, err.Error())
		yield(ctx, w.c.db.Pool, job, w.taskTimeout+commitTimeout)
		return errors.Join(err, rerr)
	}
	if err != nil {
		log.Warn("task failed; River retries it", "err", err)
		// A zombie fails otherwise too (its timeout ended while it was
		// paused): whatever the error, it must not report it over a
		// live attempt.
		yield(ctx, w.c.db.Pool, job, w.taskTimeout+commitTimeout)
		return err
	}
	log.Info("task done", "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// yieldPoll is how often yield looks at the job.
const yieldPoll = 500 * time.Millisecond

// yield waits, after job's attempt was fenced, until no other attempt
// runs the job, or for limit at the most: River's completer, which records
// the error this attempt returns, sets the state of a running job
// whatever attempt runs it (it checks the state, not the attempt), so it
// would mark the live attempt's job failed, fence that attempt's next
// commit and start a third while the second still works. Once the live
// attempt has ended, the completer finds the job not running and leaves
// it as it is. The wait outlives ctx, which a zombie's timeout has ended.
func yield(ctx context.Context, pool *pgxpool.Pool, job *rivertype.JobRow, limit time.Duration) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), limit)
	defer cancel()
	for {
		var state string
		var attempt int
		err := pool.QueryRow(ctx, "SELECT state, attempt FROM river_job WHERE id = $1", job.ID).Scan(&state, &attempt)
		if err != nil || state != string(rivertype.JobStateRunning) || attempt == job.Attempt {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(yieldPoll):
		}
	}
}

// do opens the run of command and runs the task ref on it.
func (w *worker) do(ctx context.Context, command []string, ref taskRef) (err error) {
	r, closeRun, err := w.open(ctx, command, w.concurrency)
	if errors.Is(err, mapreduce.ErrNoRun) {
		return fmt.Errorf("%w\nthe command of run %s opens another run here: does this worker see the same databases (its PG* environment, host names) and mr version as the one that submitted it?", err, ref.run)
	}
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeRun()) }()
	if p := r.Plan(); p.RunID != ref.run || p.Commit != ref.planCommit {
		return fmt.Errorf("the command of run %s opens run %s with plan %s here, not plan %s: does this worker see the same databases and mr version as the one that submitted it?",
			ref.run, p.RunID, p.Commit, ref.planCommit)
	}
	switch ref.kind {
	case kindMap:
		return r.MapTask(ctx, ref.index)
	case kindReduce:
		return r.ReduceTask(ctx, ref.index)
	default:
		return r.FinishTask(ctx)
	}
}
