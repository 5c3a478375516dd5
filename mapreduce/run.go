package mapreduce

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"golang.org/x/sync/errgroup"

	"github.com/mrengine/mr/internal/blobs"
	"github.com/mrengine/mr/internal/crashpoint"
	"github.com/mrengine/mr/shuffle"
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
	store    Store
	log      *slog.Logger
	progress Progress
	stats    runStats // what Stats reports beyond the counters below

	// runState holds the plan, the checkpoints (loaded at Open; each map
	// task owns and advances its own) and the replay manifest.
	*runState
	resumed bool
	mapped  bool // every partition is done: the row count is exact

	unlock  func() error  // releases the run's lock
	blobs   *blobs.Bucket // holds shuffle files and dead letters, keys prefixed by the run id
	schema  *arrow.Schema // of shuffle records
	attempt string        // unique to this attempt, in the names of its files

	// Counters, updated by the tasks as they go.
	read, chunks, spilled, groups atomic.Int64
	resumedRows, committedRows    atomic.Int64
	committedFailed               atomic.Int64
	resumedParts, resumedBuckets  atomic.Int64
}

// Open loads the plan of the run with def's identity over src and sink
// from the Store, to resume it, or makes and saves a new one (always, with
// cfg.Fresh). It reads no rows: a Runner that is never Run leaves a plan
// that the next Open resumes, which is how mr run --explain shows the plan
// a run will use. The Runner holds the run until Close: another process
// opening the same run gets an error wrapping ErrRunInUse. A job def that
// Job.Validate refuses is an error; a valid one has its codecs derived on
// a copy, so def itself is left as it was.
func Open(ctx context.Context, def Definition, src Source, sink Sink, cfg Config) (*Runner, error) {
	return open(ctx, def, src, sink, cfg, true)
}

// open is Open; without create, a run that has no plan is an error
// wrapping ErrNotFinished rather than planned anew.
func open(ctx context.Context, def Definition, src Source, sink Sink, cfg Config, create bool) (_ *Runner, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if def, err = def.checked(); err != nil {
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
	r := &Runner{
		def: def, spec: spec, in: in, src: src, sink: sink, cfg: cfg,
		store: cfg.store(), log: cfg.logger(), progress: cfg.Progress,
		schema: shuffle.Schema(spec.Shuffle),
	}
	if r.progress == nil {
		r.progress = noProgress{}
	}
	r.progress = r.trackProgress(r.progress)
	id := runID(spec, src.String(), sink.String(), in, cfg.Partitions, cfg.Buckets)
	if !create { // checked before the lock, which would make the run's directory
		if _, err := r.store.LoadPlan(ctx, id); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("run %s: %w", id, ErrNotFinished)
		}
	}
	if r.unlock, err = r.store.Lock(ctx, id); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if r.blobs, err = openBlobs(ctx, cfg); err != nil {
		return nil, err
	}
	plan, err := r.loadPlan(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := r.loadState(ctx, plan); err != nil {
		return nil, err
	}
	var a [3]byte
	rand.Read(a[:])
	r.attempt = hex.EncodeToString(a[:])
	return r, nil
}

// openBlobs opens the blob storage of cfg: Blobs, or Workdir.
func openBlobs(ctx context.Context, cfg Config) (*blobs.Bucket, error) {
	if cfg.Blobs != "" {
		return blobs.Open(ctx, cfg.Blobs)
	}
	return blobs.OpenDir(cfg.Workdir)
}

// loadPlan loads the run's plan, or makes and saves a new one, which voids
// the state of an old one (see Store).
func (r *Runner) loadPlan(ctx context.Context, id string) (*Plan, error) {
	plan, err := r.store.LoadPlan(ctx, id)
	switch {
	case err == nil && !r.cfg.Fresh:
		if err := plan.checkFormat(); err != nil {
			return nil, err
		}
		r.resumed = true
		r.log.Info("resuming run", "run", id, "created", plan.Created)
	case err == nil || errors.Is(err, fs.ErrNotExist):
		if plan, err = newPlan(ctx, id, r.spec, r.src, r.sink, r.in, r.cfg); err != nil {
			return nil, err
		}
		if err := r.store.SavePlan(ctx, plan); err != nil {
			return nil, fmt.Errorf("save plan of %s: %w", id, err)
		}
		r.log.Info("planned run", "run", id, "rows", plan.Rows, "partitions", len(plan.Partitions), "buckets", plan.Buckets)
	default:
		return nil, fmt.Errorf("load plan of %s: %w", id, err)
	}
	return plan, nil
}

// loadState loads the checkpoints and the replay manifest, then removes
// the blobs that none of them names: left by attempts that died before
// their commit, or by an earlier plan. Listing storage is fine here;
// finding inputs never does, it reads the manifests.
func (r *Runner) loadState(ctx context.Context, plan *Plan) (err error) {
	if r.runState, err = loadRunState(ctx, r.store, plan); err != nil {
		return err
	}
	keep, err := r.committedKeys()
	if err != nil {
		return err
	}
	for _, prefix := range blobPrefixes() {
		keys, err := r.blobs.List(ctx, r.plan.RunID+"/"+prefix)
		if err != nil {
			return fmt.Errorf("list %s of %s: %w", prefix, r.plan.RunID, err)
		}
		for _, k := range keys {
			if !keep[k] {
				if err := r.blobs.Delete(ctx, k); err != nil {
					return fmt.Errorf("remove uncommitted %s of %s: %w", k, r.plan.RunID, err)
				}
			}
		}
	}
	return nil
}

// Close releases the run for other processes.
func (r *Runner) Close() error {
	var err error
	if r.blobs != nil {
		err = r.blobs.Close()
	}
	return errors.Join(err, r.unlock())
}

// Plan returns the run's plan.
func (r *Runner) Plan() *Plan { return r.plan }

// Resumed reports whether the plan was made by an earlier attempt.
func (r *Runner) Resumed() bool { return r.resumed }

// Run runs the map phase, then the reduce phase, from wherever earlier
// attempts left them. It returns when every partition is mapped and every
// bucket applied, or at the first error; after an error, running the same
// run again resumes. A Runner runs once.
//
// A run replaces its output table: when it ends, the table holds exactly
// the groups it computed, none left from rows deleted since an earlier
// run. Over a sink that is a Replacer it builds the buckets in a staging
// table and swaps that in with one transaction at the end, so readers see
// the old table until then (see reduceRun). Over any other sink it
// upserts into the table, and groups it did not write stay.
//
// A run that finishes with a failure rate above cfg.MaxFailureRate returns
// its Summary with an error wrapping ErrFailureRate.
func (r *Runner) Run(ctx context.Context) (Summary, error) {
	start := time.Now()
	defer r.stats.setPhase(PhaseDone)
	if err := r.sink.Prepare(ctx, r.spec.Output); err != nil {
		return Summary{}, err
	}
	if err := r.mapPhase(ctx); err != nil {
		return r.summary(start), err
	}
	r.mapped = true
	if err := r.reduceRun(ctx); err != nil {
		return r.summary(start), err
	}
	// A replay that died while re-applying its buckets left some of them
	// with the values from before it; only the replay knows how to finish.
	if pending, err := r.unappliedReplay(ctx); err != nil || len(pending) > 0 {
		return r.summary(start), cmp.Or(err, fmt.Errorf("a replay of the dead letters of run %s did not finish: %d buckets wait to be re-applied; "+
			"run mr dlq replay with the same arguments to finish it", r.plan.RunID, len(pending)))
	}
	s := r.summary(start)
	if s.FailureRate() > r.cfg.MaxFailureRate {
		return s, fmt.Errorf("%w: %.2f%% of rows failed, more than --max-failure-rate %g; see mr dlq list %s",
			ErrFailureRate, 100*s.FailureRate(), r.cfg.MaxFailureRate, r.plan.RunID)
	}
	return s, nil
}

// mapPhase runs one map task per partition on a pool of cfg.Workers.
func (r *Runner) mapPhase(ctx context.Context) error {
	for part, cp := range r.checkpoints {
		if cp == nil {
			r.checkpoints[part] = newCheckpoint(r.plan, part)
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
	left := slices.IndexFunc(r.checkpoints, func(cp *Checkpoint) bool { return !cp.Done }) >= 0
	if snap, ok := r.src.(Snapshotter); ok && left {
		release, err := snap.Snapshot(ctx)
		if err != nil {
			return err
		}
		defer release()
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.Workers)
	for _, cp := range r.checkpoints {
		if !cp.Done {
			g.Go(func() error { return r.mapPartition(ctx, cp) })
		}
	}
	return g.Wait()
}

// reduceRun applies the run's own buckets and, for a plan that replaces
// (see Plan.Replace), builds them in the sink's staging table and swaps it
// in for the output table at the end, so that the output holds exactly the
// groups of this run. Every partition must be mapped. Each step is
// idempotent under the plan's commit, so a run resumed after a crash
// anywhere here (before, inside or after the swap's transaction) finishes
// with the same table; after the swap, Stage returns the output table and
// every bucket is committed, so nothing is applied twice.
func (r *Runner) reduceRun(ctx context.Context) error {
	out := r.spec.Output
	rep, ok := r.sink.(Replacer)
	if !r.plan.Replace || !ok {
		if r.plan.Replace {
			r.log.Warn("the sink cannot replace its table: groups this run does not write stay in it", "sink", r.sink.String(), "table", out.Name)
		}
		return r.reducePhase(ctx, out, r.plan.Commit, nil)
	}
	staged, err := rep.Stage(ctx, out, r.plan.RunID, r.plan.Commit)
	if err != nil {
		return err
	}
	if err := r.reducePhase(ctx, staged, r.plan.Commit, nil); err != nil {
		return err
	}
	if staged.Name == out.Name {
		return nil // swapped already, before a crash
	}
	crashpoint.Hit(ctx, crashpoint.BeforeSwap)
	if err := rep.Swap(ctx, out, r.plan.RunID, r.plan.Commit); err != nil {
		return err
	}
	crashpoint.Hit(ctx, crashpoint.Swapped)
	return nil
}

// reducePhase applies to table t, under commit (the plan's, or a replay
// generation's), the given buckets (nil for all) that the sink has not yet
// committed under it, on a pool of cfg.Workers. Every partition must be
// mapped.
func (r *Runner) reducePhase(ctx context.Context, t OutputTable, commit string, buckets []int) error {
	if buckets == nil {
		for b := range r.plan.Buckets {
			buckets = append(buckets, b)
		}
	}
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
	files, err := r.committedFiles()
	if err != nil {
		return err
	}
	var todo []int
	for _, b := range buckets {
		if done[b] {
			// The sink committed it but the marker may be missing (a crash
			// between the two): the sink is the truth.
			if err := r.store.MarkBucketDone(ctx, r.plan.RunID, r.plan.Commit, b); err != nil {
				return err
			}
			continue
		}
		todo = append(todo, b)
	}
	r.resumedBuckets.Store(int64(len(buckets) - len(todo)))
	r.progress.Start(PhaseReduce, int64(len(buckets)), int64(len(buckets)-len(todo)))
	defer r.progress.Finish(PhaseReduce)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.Workers)
	for _, b := range todo {
		g.Go(func() error { return r.reduceBucket(gctx, t, commit, b, files[b]) })
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
