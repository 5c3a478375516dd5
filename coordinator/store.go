package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mrengine/mr/mapreduce"
)

// Store keeps run state in the coordinator database (mr_state), for runs
// that many workers share: it is the mapreduce.Store of a shared run.
// Records are keyed as DirStore names its files, and each holds the
// XXH64 of its body, so that a record changed outside mr is found on load
// (an error wrapping mapreduce.ErrDamaged) and healed as a damaged file
// is.
//
// The commit points, SaveCheckpoint and MarkBucketDone, made under a
// task's context (see task), are fenced: the transaction that makes them
// locks the task's River job and commits only if the job still runs the
// attempt that makes it, so that a zombie attempt's commit changes
// nothing; the commit that ends a task also completes its job and, if it
// is the last of its phase, queues the next phase's tasks.
type Store struct {
	pool *pgxpool.Pool
}

var (
	_ mapreduce.Store             = (*Store)(nil)
	_ mapreduce.CheckpointsLoader = (*Store)(nil)
)

// Record keys, as DirStore's file names.
const planKey, replayKey = "plan", "replay"

func checkpointKey(part int) string { return fmt.Sprintf("checkpoint/%04d", part) }
func doneKey(bucket int) string     { return fmt.Sprintf("done/%04d", bucket) }

// Lock takes a session advisory lock on the run, held on a connection of
// its own until unlock; the server releases it when the connection ends,
// however the process ends. Workers do not lock (see mapreduce.Config.Shared).
func (s *Store) Lock(ctx context.Context, run string) (func() error, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtextextended('mr run ' || $1, 0))", run).Scan(&ok); err != nil {
		conn.Release()
		return nil, fmt.Errorf("lock run %s: %w", run, err)
	}
	if !ok {
		conn.Release()
		return nil, fmt.Errorf("%w: %s is held by another process (see pg_locks in the coordinator database); wait for it to finish, or stop it", mapreduce.ErrRunInUse, run)
	}
	return func() error {
		defer conn.Release()
		_, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtextextended('mr run ' || $1, 0))", run)
		return err
	}, nil
}

// Runs lists the runs that have a plan.
func (s *Store) Runs(ctx context.Context) ([]string, error) {
	rows, _ := s.pool.Query(ctx, "SELECT run FROM mr_state WHERE key = $1 ORDER BY run", planKey)
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// LoadPlan returns the run's plan, or an error wrapping fs.ErrNotExist.
func (s *Store) LoadPlan(ctx context.Context, run string) (*mapreduce.Plan, error) {
	var p mapreduce.Plan
	found, err := s.get(ctx, run, planKey, &p)
	if err == nil && !found {
		err = fmt.Errorf("run %s has no plan in the coordinator database: %w", run, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// SavePlan replaces the run's plan and removes the records of other
// Commits, in one transaction.
func (s *Store) SavePlan(ctx context.Context, p *mapreduce.Plan) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := put(ctx, tx, p.RunID, planKey, p.Commit, false, p); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM mr_state WHERE run = $1 AND key <> $2 AND commit <> $3", p.RunID, planKey, p.Commit)
		return err
	})
}

// LoadCheckpoint returns partition part's checkpoint, or nil.
func (s *Store) LoadCheckpoint(ctx context.Context, run string, part int) (*mapreduce.Checkpoint, error) {
	var cp mapreduce.Checkpoint
	found, err := s.get(ctx, run, checkpointKey(part), &cp)
	if err != nil || !found {
		return nil, err
	}
	return &cp, nil
}

// LoadCheckpoints loads the checkpoints of partitions 0 to n-1 in one
// query (see mapreduce.CheckpointsLoader).
func (s *Store) LoadCheckpoints(ctx context.Context, run string, n int) ([]*mapreduce.Checkpoint, []error, error) {
	cps, errs := make([]*mapreduce.Checkpoint, n), make([]error, n)
	rows, _ := s.pool.Query(ctx, "SELECT key, body, sum FROM mr_state WHERE run = $1 AND key LIKE 'checkpoint/%'", run)
	var key string
	var body []byte
	var sum int64
	_, err := pgx.ForEachRow(rows, []any{&key, &body, &sum}, func() error {
		part, err := strconv.Atoi(strings.TrimPrefix(key, "checkpoint/"))
		if err != nil || part < 0 || part >= n || key != checkpointKey(part) {
			return nil // not one of the plan's partitions: no LoadCheckpoint would read it
		}
		var cp mapreduce.Checkpoint
		if err := unsealed(run, key, body, sum, &cp); err != nil {
			errs[part] = err
			return nil
		}
		cps[part] = &cp
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read the checkpoints of run %s from mr_state: %w", run, err)
	}
	return cps, errs, nil
}

// SaveCheckpoint replaces a partition's checkpoint, fenced under a task;
// the checkpoint that ends the partition ends the task.
func (s *Store) SaveCheckpoint(ctx context.Context, run string, cp *mapreduce.Checkpoint) error {
	return s.commit(ctx, cp.Done, func(ctx context.Context, tx pgx.Tx) error {
		return put(ctx, tx, run, checkpointKey(cp.Partition), cp.Commit, cp.Done, cp)
	})
}

// MarkBucketDone records the bucket as applied under commit, fenced under
// a task, whose end it is.
func (s *Store) MarkBucketDone(ctx context.Context, run, commit string, bucket int) error {
	return s.commit(ctx, true, markDone(run, commit, bucket))
}

// markDone is the write of MarkBucketDone.
func markDone(run, commit string, bucket int) func(context.Context, pgx.Tx) error {
	return func(ctx context.Context, tx pgx.Tx) error {
		return put(ctx, tx, run, doneKey(bucket), commit, true, struct {
			Commit string `json:"commit"`
			Bucket int    `json:"bucket"`
		}{commit, bucket})
	}
}

// BucketsDone lists the buckets marked done under commit, in order. A
// marker that fails its sum does not count, as with DirStore: the sink's
// own record is the truth, and the bucket's reduce task marks it again.
func (s *Store) BucketsDone(ctx context.Context, run, commit string) ([]int, error) {
	rows, _ := s.pool.Query(ctx, `SELECT key, body, sum FROM mr_state WHERE run = $1 AND commit = $2 AND key LIKE 'done/%' ORDER BY key`, run, commit)
	var done []int
	var key string
	var body []byte
	var sum int64
	_, err := pgx.ForEachRow(rows, []any{&key, &body, &sum}, func() error {
		if b, err := strconv.Atoi(strings.TrimPrefix(key, "done/")); err == nil && int64(xxhash.Sum64(body)) == sum {
			done = append(done, b)
		}
		return nil
	})
	return done, err
}

// LoadReplay returns the run's replay manifest, or nil.
func (s *Store) LoadReplay(ctx context.Context, run string) (*mapreduce.ReplayManifest, error) {
	var m mapreduce.ReplayManifest
	found, err := s.get(ctx, run, replayKey, &m)
	if err != nil || !found {
		return nil, err
	}
	return &m, nil
}

// SaveReplay replaces the run's replay manifest.
func (s *Store) SaveReplay(ctx context.Context, run string, m *mapreduce.ReplayManifest) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return put(ctx, tx, run, replayKey, m.Commit, false, m)
	})
}

// commit runs write in a transaction of the coordinator database: under a
// task's context a fenced one (see task.commit), else a plain one.
func (s *Store) commit(ctx context.Context, final bool, write func(context.Context, pgx.Tx) error) error {
	if t := taskFrom(ctx); t != nil {
		return t.commit(ctx, s.pool, final, write)
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return write(ctx, tx) })
}

// put upserts the record key of run with v as its body.
func put(ctx context.Context, tx pgx.Tx, run, key, commit string, done bool, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO mr_state (run, key, commit, done, body, sum) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (run, key) DO UPDATE SET commit = EXCLUDED.commit, done = EXCLUDED.done, body = EXCLUDED.body,
			sum = EXCLUDED.sum, updated_at = now()`,
		run, key, commit, done, body, int64(xxhash.Sum64(body)))
	return err
}

// get reads the record key of run into v, and reports whether there is
// one. A body that fails its sum or does not parse is an error wrapping
// mapreduce.ErrDamaged.
func (s *Store) get(ctx context.Context, run, key string, v any) (bool, error) {
	var body []byte
	var sum int64
	err := s.pool.QueryRow(ctx, "SELECT body, sum FROM mr_state WHERE run = $1 AND key = $2", run, key).Scan(&body, &sum)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s of run %s from mr_state: %w", key, run, err)
	}
	return true, unsealed(run, key, body, sum, v)
}

// unsealed checks the record key of run against its sum and reads its
// body into v; a record that fails either is an error wrapping
// mapreduce.ErrDamaged.
func unsealed(run, key string, body []byte, sum int64, v any) error {
	where := fmt.Sprintf("the record %s of run %s in mr_state", key, run)
	if got := int64(xxhash.Sum64(body)); got != sum {
		return fmt.Errorf("%w: %s fails its checksum (its body hashes to %016x, its sum says %016x)", mapreduce.ErrDamaged, where, uint64(got), uint64(sum))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %s does not parse (%v)", mapreduce.ErrDamaged, where, err)
	}
	return nil
}
