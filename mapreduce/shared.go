package mapreduce

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// A shared run (Config.Shared) is run by many processes at once, each
// running some of its tasks as a queue hands them out (mr worker): one
// task is one partition's map, one bucket's reduce, or the finish that
// swaps the output table in. The engine keeps to what it does for a run
// in one process, task by task; the queue decides who runs what, and the
// Store, which sees the task in the context of each commit, decides
// whether a commit still counts (a task may run twice: the queue rescues
// tasks whose process stopped answering, and that process may wake up).
//
// Each task reads the state the Store holds when it starts, since other
// processes commit theirs meanwhile, and a task that finds its work done
// does nothing. Each runs on a Runner of its own, opened for it, so that
// nothing a task learns outlives it.

// errShared refuses what a shared run cannot do yet.
func errShared(what string) error {
	return fmt.Errorf("%s cannot run on workers yet: run it in one process, without --coordinator", what)
}

// checkShared refuses the plans whose tasks need more than one
// partition's or one bucket's state: an incremental batch merges into the
// stored groups through a mark that the whole run takes, and a map-only
// job applies its chunks from the map tasks.
func checkShared(spec Spec, cfg Config) error {
	switch {
	case cfg.Incremental:
		return errShared("an --incremental run")
	case spec.MapOnly:
		return errShared(fmt.Sprintf("the map-only job %s", spec.Name))
	}
	return nil
}

// OpenTask opens the run of a task of a shared run for a worker: Open,
// but a run that has no plan in the Store is an error wrapping ErrNoRun,
// never planned anew, since a new plan would void the state every other
// process committed under the old one; cfg must be Shared, not Fresh.
func OpenTask(ctx context.Context, def Definition, src Source, sink Sink, cfg Config) (*Runner, error) {
	if !cfg.Shared || cfg.Fresh {
		return nil, errors.New("mapreduce: OpenTask opens a shared run as it is: set Config.Shared, not Fresh")
	}
	r, err := open(ctx, def, src, sink, cfg, false)
	if errors.Is(err, ErrNotFinished) {
		return nil, fmt.Errorf("%w: %w; the run was removed since its tasks were queued (mr gc?): submit it again", ErrNoRun, err)
	}
	return r, err
}

// Prepare readies the sink for a shared run before its first task: it
// creates the output table if need be and claims it for the run (see
// Replacer), so that a second run into the table is refused before a
// worker reads a row. Tasks prepare again; it is idempotent.
func (r *Runner) Prepare(ctx context.Context) error {
	if err := r.sink.Prepare(ctx, r.spec.Output); err != nil {
		return err
	}
	if rep, ok := r.sink.(Replacer); ok && r.plan.Replace {
		return rep.Claim(ctx, r.spec.Output, r.plan.RunID, r.plan.Commit)
	}
	return nil
}

// MapTask runs the map task of partition part from the checkpoint the
// Store holds now, to the end of the partition's range. A damaged
// checkpoint, or dead-letter file it names, is healed as Run heals it:
// the partition is mapped again from the start of its range (see remap).
func (r *Runner) MapTask(ctx context.Context, part int) (err error) {
	if part < 0 || part >= len(r.plan.Partitions) {
		return fmt.Errorf("run %s has no partition %d", r.plan.RunID, part)
	}
	defer func() { err = r.cfg.diskFull(err) }()
	cp, err := r.store.LoadCheckpoint(ctx, r.plan.RunID, part)
	if err == nil && cp != nil && cp.Commit == r.plan.Commit {
		if cerr := cp.check(r.plan, part); cerr != nil {
			err = fmt.Errorf("%w: checkpoint damaged: it %w", ErrDamaged, cerr)
		}
	}
	if err == nil && cp != nil && cp.Commit == r.plan.Commit {
		_, err = readDLQFiles(ctx, r.blobs, cp.deadLetterFiles())
	}
	switch {
	case errors.Is(err, ErrDamaged):
		if err := r.remap(ctx, Damage{part, err}); err != nil {
			return err
		}
		cp = r.checkpoints[part]
	case err != nil:
		return fmt.Errorf("partition %d of %s: %w", part, r.plan.RunID, err)
	case cp == nil || cp.Commit != r.plan.Commit:
		cp = newCheckpoint(r.plan, part)
	}
	if cp.Done {
		return nil
	}
	r.checkpoints[part] = cp
	return r.mapPartition(ctx, cp)
}

// ReduceTask applies bucket b to the sink, once every partition of the
// run is mapped; a bucket the sink holds already is only marked done.
func (r *Runner) ReduceTask(ctx context.Context, b int) (err error) {
	if b < 0 || b >= r.plan.Buckets {
		return fmt.Errorf("run %s has no bucket %d", r.plan.RunID, b)
	}
	defer func() { err = r.cfg.diskFull(err) }()
	if err := r.reload(ctx); err != nil {
		return err
	}
	files, err := r.committedFiles()
	if err != nil {
		return err
	}
	t, err := r.target(ctx)
	if err != nil {
		return err
	}
	committed, err := r.sink.Committed(ctx, r.plan.Commit)
	if err != nil {
		return fmt.Errorf("read commits of %s from %s: %w", r.plan.RunID, r.sink, err)
	}
	if slices.Contains(committed, b) {
		return r.store.MarkBucketDone(ctx, r.plan.RunID, r.plan.Commit, b)
	}
	return r.applyBucket(ctx, t, r.plan.Commit, b, files[b])
}

// FinishTask ends a shared run once every bucket is applied: for a plan
// that replaces its table, it swaps the staging table in (see reduceRun).
func (r *Runner) FinishTask(ctx context.Context) error {
	rep, ok := r.sink.(Replacer)
	if !ok || !r.plan.Replace {
		return nil
	}
	out := r.spec.Output
	staged, err := rep.Stage(ctx, out, r.plan.RunID, r.plan.Commit)
	if err != nil || staged.Name == out.Name { // swapped already
		return err
	}
	return rep.Swap(ctx, out, r.plan.RunID, r.plan.Commit)
}

// reload replaces the state loaded at Open with the Store's now. Damage is
// an error: it is healed by mapping its partition again, which is not a
// reduce task's to do.
func (r *Runner) reload(ctx context.Context) error {
	st, err := loadRunState(ctx, r.store, r.plan)
	if err != nil {
		return err
	}
	if len(st.damaged) > 0 {
		return fmt.Errorf("run %s: %s", r.plan.RunID, st.damaged[0])
	}
	r.runState = st
	return nil
}

// target returns the table the run's buckets go to: the staging table of
// a plan that replaces (see reduceRun), else the output table.
func (r *Runner) target(ctx context.Context) (OutputTable, error) {
	if err := r.Prepare(ctx); err != nil {
		return OutputTable{}, err
	}
	rep, ok := r.sink.(Replacer)
	if !ok || !r.plan.Replace {
		return r.spec.Output, nil
	}
	return rep.Stage(ctx, r.spec.Output, r.plan.RunID, r.plan.Commit)
}
