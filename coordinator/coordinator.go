// Package coordinator runs a run's tasks on many worker processes, which
// share a PostgreSQL database, the coordinator, and object storage for
// the shuffle. The tasks are River jobs (github.com/riverqueue/river): River
// hands them out, retries them, and rescues the tasks of processes that
// stopped answering; this package adds what River cannot know, the exact
// commit points of a task.
//
// A run is submitted once (Submit): its plan goes to the Store, its
// command line to mr_runs (from which each worker rebuilds the run), and
// one map task per partition to River's queue. The commit that ends the
// last map task queues the reduce tasks, one per bucket, and the last of
// those the finish task, which swaps the output table in (see task.end).
//
// River may run a task twice: an attempt whose process was paused past
// the rescue time wakes up and goes on while another attempt does the
// same work. Every commit point is a transaction in the coordinator that
// locks the task's job and commits only while the job runs the attempt
// making it (see task.fence), and the commit that ends a task completes
// its job in the same transaction (River's JobCompleteTx). A zombie
// attempt's commit changes nothing, and it reports its failure to River
// only once the live attempt has ended (see yield); its files, written
// under names of its own, are named by no committed checkpoint and are
// collected by mr gc.
// A reduce into the coordinator database itself commits its bucket, the
// bucket's record and the task's end in one transaction (see pg.TxHook);
// into another database, the sink's per-bucket ledger makes the bucket's
// apply idempotent, and the task ends in a transaction of its own after.
package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/mapreduce"
)

// Coordinator is a connection to a coordinator database.
type Coordinator struct {
	db    *pg.DB
	store *Store
	// namespace is the coordinator's pg.Namespace, to tell a sink in
	// the same database and schema (see pg.TxHook).
	namespace string
}

// idleInTransaction bounds how long a coordinator session may sit in an
// open transaction: every transaction of mr's and River's there is a few
// statements long, and one left open is a process that froze inside it
// (SIGSTOP, a paused VM), whose locks (a task's job row, River's leader
// row) would stop the other workers until it woke up. The server ends
// such a session, which rolls its transaction back.
const idleInTransaction = 10 * time.Second

// Open connects to the coordinator database at dsn and checks that it is
// migrated (see Migrate): if not, the error wraps ErrNotMigrated and says
// to run mr migrate.
func Open(ctx context.Context, dsn string) (*Coordinator, error) {
	db, err := pg.Open(ctx, dsn, pg.Options{MaxConns: 8, IdleInTransaction: idleInTransaction})
	if err != nil {
		return nil, err
	}
	c := &Coordinator{db: db, store: &Store{pool: db.Pool}}
	if err := CheckSchema(ctx, db.Pool); err != nil {
		db.Close()
		if errors.Is(err, ErrNotMigrated) {
			return nil, fmt.Errorf("%w (%s); run mr migrate --coordinator URL first", err, db)
		}
		return nil, db.Scrub(fmt.Errorf("check the coordinator database %s: %w", db, err))
	}
	if c.namespace, err = pg.Namespace(ctx, db.Pool); err != nil {
		db.Close()
		return nil, db.Scrub(err)
	}
	return c, nil
}

// Close closes the connection.
func (c *Coordinator) Close() error {
	c.db.Close()
	return nil
}

// String names the coordinator database, without its password.
func (c *Coordinator) String() string { return c.db.String() }

// Store returns the coordinator's run state store.
func (c *Coordinator) Store() *Store { return c.store }

// Submit queues the tasks of the run that r opened (with
// mapreduce.Config.Shared and this coordinator's Store), which command
// (mr's arguments, without passwords) rebuilds in a worker: the run's
// row in mr_runs, then the tasks of the phase the run is in, all in one
// transaction. A run planned anew starts at the map phase; one submitted
// before goes on where it is, and tasks that are queued or done already
// are not queued again (see insertOpts).
func (c *Coordinator) Submit(ctx context.Context, r *mapreduce.Runner, command []string) error {
	plan := r.Plan()
	cmd, err := json.Marshal(command)
	if err != nil {
		return err
	}
	client, err := river.NewClient(riverpgxv5.New(c.db.Pool), &river.Config{})
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, c.db.Pool, func(tx pgx.Tx) error {
		var phase string
		err := tx.QueryRow(ctx, `INSERT INTO mr_runs AS r (run, command, commit, partitions, buckets, phase) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (run) DO UPDATE SET command = EXCLUDED.command, submitted_at = now(),
				commit = EXCLUDED.commit, partitions = EXCLUDED.partitions, buckets = EXCLUDED.buckets,
				phase = CASE WHEN r.commit = EXCLUDED.commit THEN r.phase ELSE EXCLUDED.phase END,
				finished_at = CASE WHEN r.commit = EXCLUDED.commit THEN r.finished_at END
			RETURNING phase`,
			plan.RunID, cmd, plan.Commit, len(plan.Partitions), plan.Buckets, phaseMap).Scan(&phase)
		if err != nil {
			return err
		}
		var tasks []river.InsertManyParams
		switch phase {
		case phaseMap:
			var parts []int
			for p := range plan.Partitions {
				parts = append(parts, p)
			}
			tasks = mapTasks(plan.RunID, plan.Commit, parts)
		case phaseReduce:
			tasks = reduceTasks(plan.RunID, plan.Commit, plan.Buckets)
		case phaseFinish:
			tasks = []river.InsertManyParams{{Args: FinishArgs{plan.RunID, plan.Commit}, InsertOpts: insertOpts()}}
		}
		if len(tasks) == 0 {
			return nil
		}
		_, err = client.InsertManyTx(ctx, tx, tasks)
		return err
	})
	if err != nil {
		return c.db.Scrub(fmt.Errorf("submit run %s to %s: %w", plan.RunID, c, err))
	}
	return nil
}

// runRecord is a run's row in mr_runs.
type runRecord struct {
	command             []string
	commit, phase       string
	partitions, buckets int
}

// loadRun reads the run's row, or returns nil if it has none.
func (c *Coordinator) loadRun(ctx context.Context, run string) (*runRecord, error) {
	var rec runRecord
	var cmd []byte
	err := c.db.Pool.QueryRow(ctx, "SELECT command, commit, phase, partitions, buckets FROM mr_runs WHERE run = $1", run).
		Scan(&cmd, &rec.commit, &rec.phase, &rec.partitions, &rec.buckets)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &rec, json.Unmarshal(cmd, &rec.command)
}
