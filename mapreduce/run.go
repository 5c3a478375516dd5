package mapreduce

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"golang.org/x/sync/errgroup"
)

// Run opens the run of def over src into sink and runs it: Open, then
// Runner.Run.
func Run(ctx context.Context, def Definition, src Source, sink Sink, cfg Config) (Summary, error) {
	r, err := Open(ctx, def, src, sink, cfg)
	if err != nil {
		return Summary{}, err
	}
	defer r.Close()
	return r.Run(ctx)
}

// Runner is one attempt at a run: its plan is fixed, its rows are not read
// until Run.
type Runner struct {
	def      Definition
	spec     Spec
	in       Input
	src      Source
	sink     Sink
	cfg      Config
	progress Progress

	plan    *Plan
	resumed bool
	mapped  bool          // every partition is done: the row count is exact
	unlock  func() error  // releases the run's lock
	dir     string        // the run's directory: shuffle/, dlq/, reduce/
	schema  *arrow.Schema // of shuffle records
	attempt string        // unique to this attempt, in the names of its files

	// Counters, updated by the tasks as they go.
	read, chunks, spilled, groups atomic.Int64
	resumedRows, committedRows    atomic.Int64
	committedFailed               atomic.Int64
	resumedParts, resumedBuckets  atomic.Int64
}

// Open loads the plan of the run with def's identity over src and sink
// from cfg.Store, to resume it, or makes and saves a new one (always, with
// cfg.Fresh). It reads no rows: a Runner that is never Run leaves a plan
// that the next Open resumes, which is how mr run --explain shows the plan
// a run will use. The Runner holds the run until Close: another process
// opening the same run gets an error.
func Open(ctx context.Context, def Definition, src Source, sink Sink, cfg Config) (*Runner, error) {
	return open(ctx, def, src, sink, cfg, true)
}

// open is Open; without create, a run that has no plan is ErrNotFinished
// rather than planned anew.
func open(ctx context.Context, def Definition, src Source, sink Sink, cfg Config, create bool) (*Runner, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	spec := def.Spec()
	in := spec.Input
	if cfg.Table != "" {
		in.Table = cfg.Table
	}
	if cfg.Cursor != "" {
		in.Cursor = cfg.Cursor
	}
	r := &Runner{def: def, spec: spec, in: in, src: src, sink: sink, cfg: cfg, progress: cfg.Progress}
	if r.progress == nil {
		r.progress = noProgress{}
	}
	id := runID(spec, src.String(), sink.String(), in, cfg.Partitions, cfg.Buckets)
	if !create { // checked before the lock, which would make the run's directory
		if _, err := cfg.Store.LoadPlan(ctx, id); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("run %s %w", id, ErrNotFinished)
		}
	}
	r.dir = filepath.Join(cfg.Workdir, id)
	unlock, err := lockRun(r.dir)
	if err != nil {
		return nil, err
	}
	r.unlock = unlock
	if err := r.loadPlan(ctx, id); err != nil {
		r.Close()
		return nil, err
	}
	r.schema = arrowSchema(spec.Shuffle)
	var a [3]byte
	rand.Read(a[:])
	r.attempt = hex.EncodeToString(a[:])
	return r, nil
}

// loadPlan loads the run's plan, or makes and saves a new one. A new plan
// is saved before the files of an old one are removed: its checkpoints
// name none of them, so a crash in between leaves nothing that counts.
func (r *Runner) loadPlan(ctx context.Context, id string) error {
	cfg := r.cfg
	plan, err := cfg.Store.LoadPlan(ctx, id)
	switch {
	case err == nil && !cfg.Fresh:
		r.resumed = true
		cfg.Logger.Info("resuming run", "run", id, "created", plan.Created)
	case err == nil || errors.Is(err, fs.ErrNotExist):
		if plan, err = newPlan(ctx, id, r.spec, r.src, r.sink, r.in, cfg); err != nil {
			return err
		}
		if err := cfg.Store.SavePlan(ctx, plan); err != nil {
			return fmt.Errorf("save plan of %s: %w", id, err)
		}
		// replay.json names the old plan's commit, so it no longer counts.
		for _, sub := range []string{"shuffle", "dlq", "reduce", "replay", "replay.json"} {
			if err := os.RemoveAll(filepath.Join(r.dir, sub)); err != nil {
				return err
			}
		}
		cfg.Logger.Info("planned run", "run", id, "rows", plan.Rows, "partitions", len(plan.Partitions), "buckets", plan.Buckets)
	default:
		return fmt.Errorf("load plan of %s: %w", id, err)
	}
	r.plan = plan
	return nil
}

// Close releases the run for other processes.
func (r *Runner) Close() error { return r.unlock() }

// Plan returns the run's plan.
func (r *Runner) Plan() *Plan { return r.plan }

// Resumed reports whether the plan was made by an earlier attempt.
func (r *Runner) Resumed() bool { return r.resumed }

// Run runs the map phase, then the reduce phase, from wherever earlier
// attempts left them. It returns when every partition is mapped and every
// bucket applied, or at the first error; after an error, running the same
// run again resumes. A Runner runs once.
//
// A run that finishes with a failure rate above cfg.MaxFailureRate returns
// its Summary with an error wrapping ErrFailureRate.
func (r *Runner) Run(ctx context.Context) (Summary, error) {
	start := time.Now()
	for b := range r.plan.Buckets {
		if err := os.MkdirAll(filepath.Join(r.dir, "shuffle", fmt.Sprintf("b%04d", b)), 0o755); err != nil {
			return Summary{}, err
		}
	}
	if err := r.sink.Prepare(ctx, r.spec.Output); err != nil {
		return Summary{}, err
	}
	if err := r.mapPhase(ctx); err != nil {
		return r.summary(start), err
	}
	r.mapped = true
	if err := r.reducePhase(ctx, r.plan.Commit); err != nil {
		return r.summary(start), err
	}
	// A replay that died while re-applying its buckets left some of them
	// with the values from before it: finish its generation.
	m, err := r.loadReplay()
	if err != nil {
		return r.summary(start), err
	}
	if m.Generation > 0 {
		if err := r.reducePhase(ctx, replayCommit(r.plan, m.Generation)); err != nil {
			return r.summary(start), err
		}
	}
	s := r.summary(start)
	if s.FailureRate() > r.cfg.MaxFailureRate {
		return s, fmt.Errorf("%w: %.2f%% of rows failed, more than --max-failure-rate %g; the dead letters are in %s",
			ErrFailureRate, 100*s.FailureRate(), r.cfg.MaxFailureRate, filepath.Join(r.dir, "dlq"))
	}
	return s, nil
}

// mapPhase runs one map task per partition on a pool of cfg.Workers.
func (r *Runner) mapPhase(ctx context.Context) error {
	cps, err := r.loadCheckpoints(ctx)
	if err != nil {
		return err
	}
	if err := r.removeUncommitted(cps); err != nil {
		return fmt.Errorf("remove uncommitted shuffle files of %s: %w", r.plan.RunID, err)
	}
	for part, cp := range cps {
		if cp == nil {
			cps[part] = newCheckpoint(part, r.plan.Partitions[part].Range)
			continue
		}
		r.resumedParts.Add(1)
		r.resumedRows.Add(cp.Rows)
		r.committedRows.Add(cp.Rows)
		r.committedFailed.Add(cp.Failed)
		r.spilled.Add(cp.Spilled)
	}
	r.progress.Start(PhaseMap, r.plan.Rows, r.resumedRows.Load())
	defer r.progress.Finish(PhaseMap)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.Workers)
	for _, cp := range cps {
		if !cp.Done {
			g.Go(func() error { return r.mapPartition(ctx, cp) })
		}
	}
	return g.Wait()
}

// loadCheckpoints returns every partition's checkpoint, nil where a
// partition has none yet.
func (r *Runner) loadCheckpoints(ctx context.Context) ([]*Checkpoint, error) {
	cps := make([]*Checkpoint, len(r.plan.Partitions))
	for part := range cps {
		cp, err := r.cfg.Store.LoadCheckpoint(ctx, r.plan.RunID, part)
		if err != nil {
			return nil, fmt.Errorf("partition %d of %s: %w", part, r.plan.RunID, err)
		}
		cps[part] = cp
	}
	return cps, nil
}

// reducePhase applies every bucket not yet committed to the sink under
// commit (the plan's, or a replay generation's), on a pool of cfg.Workers.
func (r *Runner) reducePhase(ctx context.Context, commit string) error {
	committed, err := r.sink.Committed(ctx, commit)
	if err != nil {
		return fmt.Errorf("read commits of %s from %s: %w", r.plan.RunID, r.sink, err)
	}
	done := make([]bool, r.plan.Buckets)
	for _, b := range committed {
		if b >= 0 && b < len(done) {
			done[b] = true
		}
	}
	files, err := r.committedFiles(ctx)
	if err != nil {
		return err
	}
	r.resumedBuckets.Store(int64(len(committed)))
	r.progress.Start(PhaseReduce, int64(r.plan.Buckets), int64(len(committed)))
	defer r.progress.Finish(PhaseReduce)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.Workers)
	for b := range r.plan.Buckets {
		if done[b] {
			// The sink committed it but the marker may be missing (a crash
			// between the two): the sink is the truth.
			if err := r.cfg.Store.MarkBucketDone(ctx, r.plan.RunID, b); err != nil {
				return err
			}
			continue
		}
		g.Go(func() error { return r.reduceBucket(gctx, commit, b, files[b]) })
	}
	return g.Wait()
}

func (r *Runner) summary(start time.Time) Summary {
	total := r.plan.Rows // an estimate for large tables
	if r.mapped {
		total = r.committedRows.Load()
	}
	return Summary{
		Job:               r.spec.Name,
		RunID:             r.plan.RunID,
		Total:             total,
		Processed:         r.committedRows.Load(),
		Failed:            r.committedFailed.Load(),
		Read:              r.read.Load(),
		Resumed:           r.resumedRows.Load(),
		Chunks:            r.chunks.Load(),
		Elapsed:           time.Since(start),
		BytesSpilled:      r.spilled.Load(),
		PartitionsResumed: int(r.resumedParts.Load()),
		Partitions:        len(r.plan.Partitions),
		Buckets:           r.plan.Buckets,
		BucketsResumed:    int(r.resumedBuckets.Load()),
		Groups:            r.groups.Load(),
	}
}

// removeUncommitted deletes the shuffle files that no checkpoint names: left
// by attempts that died before their commit. Listing the directory is fine
// here; finding inputs never does, it reads the checkpoints' manifests.
func (r *Runner) removeUncommitted(cps []*Checkpoint) error {
	keep := map[string]bool{}
	for _, cp := range cps {
		if cp != nil {
			for _, f := range cp.Files {
				keep[f.Path] = true
			}
		}
	}
	for b := range r.plan.Buckets {
		dir := filepath.Join(r.dir, "shuffle", fmt.Sprintf("b%04d", b))
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			if rel, _ := filepath.Rel(r.dir, path); !keep[rel] {
				if err := os.Remove(path); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
