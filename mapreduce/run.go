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
	sum, err := r.Run(ctx)
	if !cfg.Incremental || !r.Resumed() || err != nil && !errors.Is(err, ErrFailureRate) {
		return sum, err
	}
	// The plan was an earlier run's, finished now: go on with the rows
	// added since.
	if err := r.Next(ctx); err != nil {
		return sum, err
	}
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
	resumed  bool
	mapped   bool // every partition is done: the row count is exact
	finished bool // Run applied every bucket of the plan (see Next)

	unlock  func() error  // releases the run's lock
	blobs   *blobs.Bucket // holds shuffle files and dead letters, keys prefixed by the run id
	schema  *arrow.Schema // of shuffle records
	attempt string        // unique to this attempt, in the names of its files

	// Counters, updated by the tasks as they go.
	read, chunks, spilled, groups atomic.Int64
	resumedRows, committedRows    atomic.Int64
	committedFailed               atomic.Int64
	resumedParts, resumedBuckets  atomic.Int64
	healed                        atomic.Int64  // partitions re-mapped because their state was damaged
	halt                          atomic.Bool   // Stop was called
	failures                      *failureGauge // stops the map phase early (see failfast.go)
	// mapKeys and reduceKeys are the peak keys (see combiner.peakKeys)
	// of the last map task and bucket to finish. Partitions of a plan
	// span similar numbers of rows, and buckets take similar shares of
	// the keys, so a new task's combiner is made that big: growing a Go
	// map to a million keys rehashes them as it goes (1.5 to 1.8 of
	// about 20 CPU-seconds, BenchmarkCompare shape=high, 10M rows).
	mapKeys, reduceKeys atomic.Int64
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
	defer func() { err = cfg.diskFull(err) }()
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
	srcID, err := identity(ctx, src)
	if err != nil {
		return nil, err
	}
	sinkID, err := identity(ctx, sink)
	if err != nil {
		return nil, err
	}
	id := runID(spec, srcID, sinkID, in, cfg.Partitions, cfg.Buckets)
	for _, end := range []any{src, sink} {
		if n, ok := end.(RunNamer); ok {
			n.NameRun(id)
		}
	}
	if err := checkCompound(in, src, cfg); err != nil {
		return nil, err
	}
	if cfg.Incremental {
		if err := checkIncremental(spec, src, sink); err != nil {
			return nil, err
		}
	}
	if cfg.Lookback != nil {
		if err := checkLookback(spec, in, src, cfg.Lookback); err != nil {
			return nil, err
		}
	}
	if !create { // checked before the lock, which would make the run's directory
		if _, err := r.store.LoadPlan(ctx, id); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("run %s: %w", id, ErrNotFinished)
		}
	}
	if cfg.Shared {
		if err := checkShared(spec, cfg); err != nil {
			return nil, err
		}
		r.unlock = func() error { return nil }
	} else if r.unlock, err = r.store.Lock(ctx, id); err != nil {
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
	r.failures = newFailureGauge(cfg.MaxFailureRate, plan.Rows)
	r.attempt = newAttempt()
	return r, nil
}

// newAttempt returns a name unique to one attempt, for the keys of the
// files it writes.
func newAttempt() string {
	var a [3]byte
	rand.Read(a[:])
	return hex.EncodeToString(a[:])
}

// identity is what names end, a source or sink, in a run's identity: its
// String, and its Scope if it has one.
func identity(ctx context.Context, end fmt.Stringer) (string, error) {
	sc, ok := end.(Scoper)
	if !ok {
		return end.String(), nil
	}
	scope, err := sc.Scope(ctx)
	if err != nil {
		return "", fmt.Errorf("resolve the schemas of %s: %w", end, err)
	}
	return end.String() + "\x00" + scope, nil
}

// openBlobs opens the blob storage of cfg: Blobs, or Workdir.
func openBlobs(ctx context.Context, cfg Config) (*blobs.Bucket, error) {
	if cfg.Blobs != "" {
		return blobs.Open(ctx, cfg.Blobs)
	}
	return blobs.OpenDir(cfg.Workdir)
}

// loadPlan loads the run's plan, or makes and saves a new one (always,
// with cfg.Fresh), which voids the state of an old one (see Store). A
// damaged plan is planned again (see rebuildPlan).
func (r *Runner) loadPlan(ctx context.Context, id string) (*Plan, error) {
	if !r.cfg.Fresh {
		plan, err := r.store.LoadPlan(ctx, id)
		if err == nil {
			err = plan.check()
		}
		switch {
		case err == nil:
			r.resumed = true
			r.log.Info("resuming run", "run", id, "created", plan.Created)
			return plan, nil
		case errors.Is(err, ErrDamaged):
			return r.rebuildPlan(ctx, id, err)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	plan, err := newPlan(ctx, id, r.spec, r.src, r.sink, r.in, r.cfg, nil)
	if err != nil {
		return nil, err
	}
	if err := r.store.SavePlan(ctx, plan); err != nil {
		return nil, fmt.Errorf("save plan of %s: %w", id, err)
	}
	r.log.Info("planned run", "run", id, "rows", plan.Rows, "partitions", len(plan.Partitions), "buckets", plan.Buckets)
	return plan, nil
}

// rebuildPlan heals a damaged plan by planning the run again, and keeps
// the new plan only if it is the one the run's sound state was committed
// under, which is all that can be known of the damaged one: everything
// else that shapes a plan (job, input, source, sink, partition and bucket
// counts, hash seed) is in the run id, which is the same. The checkpoints
// must all name one Commit, which the new plan takes, so that the sink's
// record of applied buckets still counts, and each must have the range
// the new plan gives its partition; a source that changed since the plan
// was made gives other ranges, and then only --fresh can tell what the
// run covers. Without any checkpoint nothing was committed, and the new
// plan starts the run over under a new Commit.
func (r *Runner) rebuildPlan(ctx context.Context, id string, damage error) (*Plan, error) {
	plan, err := newPlan(ctx, id, r.spec, r.src, r.sink, r.in, r.cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("%w; planning the run again, to heal it, failed: %w", damage, err)
	}
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("%w; planning the run again gives another plan (%s), so what the run committed cannot be trusted: start over with --fresh",
			damage, fmt.Sprintf(format, args...))
	}
	var commit string
	for part, want := range plan.Partitions {
		cp, err := r.store.LoadCheckpoint(ctx, id, part)
		if err != nil || cp == nil {
			continue // a damaged checkpoint is healed with the others, under the new plan
		}
		switch {
		case commit != "" && cp.Commit != commit:
			return nil, refuse("the checkpoints name two plans, %s and %s", commit, cp.Commit)
		case cp.Range != want.Range:
			return nil, refuse("partition %d was %s, is now %s", part, cp.Range, want.Range)
		}
		commit = cp.Commit
	}
	if m, err := r.store.LoadReplay(ctx, id); err == nil && m != nil && commit != "" && m.Commit != commit {
		return nil, refuse("the replay manifest names plan %s, the checkpoints %s", m.Commit, commit)
	}
	if commit != "" {
		plan.Commit = commit
	}
	if err := r.store.SavePlan(ctx, plan); err != nil {
		return nil, fmt.Errorf("save plan of %s: %w", id, err)
	}
	r.resumed = commit != ""
	r.log.Warn("plan damaged; planned the run again, which gives the plan its checkpoints were committed under", "run", id, "damage", damage)
	return plan, nil
}

// loadState loads the checkpoints and the replay manifest and checks them
// and the dead-letter files they name (see runState.damaged), then removes
// the blobs that none of them names: left by attempts that died before
// their commit, or by an earlier plan. While any state is damaged it
// removes nothing, since a damaged checkpoint's files are unknown. Listing
// storage is fine here; finding inputs never does, it reads the manifests.
// A shared run loads nothing here: a task reads the state it needs when it
// starts, and the files in flight of other processes are among those that
// no checkpoint names yet.
func (r *Runner) loadState(ctx context.Context, plan *Plan) (err error) {
	if r.cfg.Shared { // each task loads the state it needs (see shared.go)
		r.runState = &runState{plan: plan, checkpoints: make([]*Checkpoint, len(plan.Partitions))}
		return nil
	}
	if r.runState, err = loadRunState(ctx, r.store, plan); err != nil {
		return err
	}
	if err := r.checkDeadLetters(ctx, r.blobs); err != nil {
		return err
	}
	if len(r.damaged) > 0 {
		r.log.Warn("run state damaged: uncommitted files are kept until it is healed", "run", plan.RunID, "partitions", len(r.damaged))
		return nil
	}
	_, err = r.collect(ctx, r.blobs, false)
	return err
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
// run again resumes. A Runner runs its plan once; with Config.Incremental,
// Next then plans another for Run.
//
// A run replaces its output table: when it ends, the table holds exactly
// the groups it computed, none left from rows deleted since an earlier
// run. An incremental batch (Plan.Merges) merges into it instead (see
// Next). Over a sink that is a Replacer it builds the buckets in a staging
// table and swaps that in with one transaction at the end, so readers see
// the old table until then (see reduceRun). Over any other sink it
// upserts into the table, and groups it did not write stay. A map-only
// job's run has no reduce phase: it upserts each chunk as its map task
// reads it (see maponly.go).
//
// Damaged run state heals: a partition whose checkpoint, dead-letter
// files or shuffle files fail their checks is mapped again from the start
// of its range (see remap), before the map phase or when the reduce phase
// finds the damage, and the run goes on.
//
// A full disk stops the run with a *DiskFullError; Stop stops it at its
// next commit point, with an error wrapping ErrStopped.
//
// A run that finishes with a failure rate above cfg.MaxFailureRate returns
// its Summary with an error wrapping ErrFailureRate. So does a run whose
// map phase that rate stopped early, once it had mapped a sample of rows
// (see failfast.go), with Summary.MapStopped set: it committed what it
// had mapped, did not reduce, and resumes like any run that stopped.
func (r *Runner) Run(ctx context.Context) (_ Summary, err error) {
	start := time.Now()
	defer func() { err = r.cfg.diskFull(err) }()
	defer r.stats.setPhase(PhaseDone)
	if err := r.sink.Prepare(ctx, r.spec.Output); err != nil {
		return Summary{}, err
	}
	if rep, ok := r.sink.(Replacer); ok && r.plan.Replace {
		if err := rep.Claim(ctx, r.spec.Output, r.plan.RunID, r.plan.Commit); err != nil {
			return Summary{}, err
		}
	}
	r.countResumed()
	remapped := map[int]bool{}
	for _, d := range r.damaged {
		if err := r.remap(ctx, d); err != nil {
			return r.summary(start), err
		}
		remapped[d.Partition] = true
	}
	r.damaged = nil
	reduce := r.reduceRun
	if r.plan.MapOnly { // its map tasks applied every chunk
		reduce = func(context.Context) error { return nil }
	}
	if err := r.healing(ctx, remapped, reduce); err != nil {
		return r.summary(start), err
	}
	// A replay that died while re-applying its buckets left some of them
	// with the values from before it; only the replay knows how to finish.
	if pending, err := r.unappliedReplay(ctx); err != nil || len(pending) > 0 {
		return r.summary(start), cmp.Or(err, fmt.Errorf("a replay of the dead letters of run %s did not finish: %d buckets wait to be re-applied; "+
			"run mr dlq replay with the same arguments to finish it", r.plan.RunID, len(pending)))
	}
	r.finished = true
	s := r.summary(start)
	if s.FailureRate() > r.cfg.MaxFailureRate {
		return s, fmt.Errorf("%w: %.2f%% of rows failed, more than --max-failure-rate %g; see mr dlq list %s",
			ErrFailureRate, 100*s.FailureRate(), r.cfg.MaxFailureRate, r.plan.RunID)
	}
	return s, nil
}

// countResumed counts what earlier attempts committed, for the summary.
func (r *Runner) countResumed() {
	for _, cp := range r.checkpoints {
		if cp == nil {
			continue
		}
		if cp.Seq > 0 {
			r.resumedParts.Add(1)
		}
		r.resumedRows.Add(cp.Rows)
		r.committedRows.Add(cp.Rows)
		r.committedFailed.Add(cp.Failed)
		r.spilled.Add(cp.Spilled)
	}
}

// healing runs the map phase, then reduce, and heals the damage that
// reduce finds: a committed shuffle file that is missing or fails its
// checksum. The partition that wrote it is mapped again (see remap) and
// both phases run again, which reduce only the buckets not yet applied;
// those read the partition's new files with everyone else's, and those
// already applied included the partition's rows from its old files, which
// were whole when read. A partition is re-mapped at most once per run,
// in remapped (those healed already), so a storage that keeps damaging
// files ends the run with an error instead of a loop; the next run heals
// again.
func (r *Runner) healing(ctx context.Context, remapped map[int]bool, reduce func(context.Context) error) error {
	for {
		if err := r.mapPhase(ctx); err != nil {
			return err
		}
		r.mapped = true
		err := reduce(ctx)
		var bad *damagedFileError
		if !errors.As(err, &bad) {
			return err
		}
		part := r.producer(bad.file.Key)
		switch {
		case part < 0:
			return fmt.Errorf("%w; it holds the rows that mr dlq replay resolved, recorded nowhere else: start over with --fresh", err)
		case remapped[part]:
			return fmt.Errorf("%w; this run wrote it when it mapped partition %d again: the storage damages files (check %s); running again heals it again", err, part, r.blobs)
		}
		remapped[part] = true
		r.mapped = false
		if err := r.remap(ctx, Damage{part, bad}); err != nil {
			return err
		}
	}
}

// producer returns the partition whose checkpoint names the shuffle file
// key, or -1 if none does (a replay's file).
func (r *Runner) producer(key string) int {
	for part, cp := range r.checkpoints {
		for _, f := range cp.Files {
			if f.Key == key {
				return part
			}
		}
	}
	return -1
}

// remap heals damage to a partition's state: it saves a checkpoint at the
// start of the partition's range, so that nothing the partition committed
// counts any longer (its shuffle files, its dead letters, its counts), and
// the map phase maps it again. The rows are the same, so the result is
// exact: a bucket already applied to the sink is applied as a whole and
// is never applied again, and one not yet applied is reduced from the
// partition's new files. Rows that a replay of the dead letters resolved
// are skipped (see mapTask.mapRow): their pairs are in the replay's files.
// A new attempt name keeps the new files from taking the names of the
// dropped ones.
func (r *Runner) remap(ctx context.Context, d Damage) error {
	part := d.Partition
	r.log.Warn(d.String()+"; re-mapping it", "run", r.plan.RunID)
	cp := newCheckpoint(r.plan, part)
	if err := r.store.SaveCheckpoint(ctx, r.plan.RunID, cp); err != nil {
		return fmt.Errorf("partition %d: reset its damaged checkpoint: %w", part, err)
	}
	if old := r.checkpoints[part]; old != nil { // counted already
		r.committedRows.Add(-old.Rows)
		r.committedFailed.Add(-old.Failed)
		r.spilled.Add(-old.Spilled)
	}
	r.checkpoints[part] = cp
	r.healed.Add(1)
	r.attempt = newAttempt()
	return nil
}

// mapPhase runs one map task per partition not yet done on a pool of
// cfg.Workers, until the failure gauge or Stop stops them.
func (r *Runner) mapPhase(ctx context.Context) error {
	for part, cp := range r.checkpoints {
		if cp == nil {
			r.checkpoints[part] = newCheckpoint(r.plan, part)
		}
	}
	if err := r.resolveChunks(ctx); err != nil {
		return err
	}
	r.progress.Start(PhaseMap, r.plan.Rows, r.committedRows.Load())
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
			g.Go(func() error {
				if r.failures.stopped() || r.stopping() {
					return nil
				}
				// A task the gauge or Stop stopped committed: it must not
				// cancel the others before they commit too.
				if err := r.mapPartition(ctx, cp); !errors.Is(err, errStopped) {
					return err
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if r.stopping() {
		return r.stoppedErr()
	}
	if r.failures.stopped() {
		return r.failures.err(r.plan.RunID)
	}
	return nil
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
	empty := 0
	for _, b := range buckets {
		if r.plan.Merges() && r.plan.Window == nil && len(files[b]) == 0 && !done[b] {
			// Nothing to merge: the stored groups are the bucket's. (A
			// window's may be gone, which the bucket must delete.)
			if err := r.store.MarkBucketDone(ctx, r.plan.RunID, r.plan.Commit, b); err != nil {
				return err
			}
			empty++
			continue
		}
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
	r.resumedBuckets.Store(int64(len(buckets) - len(todo) - empty))
	r.progress.Start(PhaseReduce, int64(len(buckets)), int64(len(buckets)-len(todo)))
	defer r.progress.Finish(PhaseReduce)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.Workers)
	for _, b := range todo {
		g.Go(func() error {
			if r.stopping() { // the buckets started go on to commit
				return nil
			}
			return r.applyBucket(gctx, t, commit, b, files[b])
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if r.stopping() {
		return r.stoppedErr()
	}
	return nil
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
		PartitionsHealed:  int(r.healed.Load()),
		Groups:            r.groups.Load(),
		MapStopped:        r.failures.stopped(),
		Batch:             r.plan.Batch,
		Mark:              r.plan.Mark,
	}
}
