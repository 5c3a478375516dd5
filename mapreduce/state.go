package mapreduce

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/mrengine/mr/internal/blobs"
	"github.com/mrengine/mr/shuffle"
)

// This file answers what a run's state is: which files are committed, which
// dead letters count, how far each partition got. The engine and the
// command line (mr status, mr dlq, mr inspect) ask the same questions, so
// the answers live here once.

// RunInfo is the state of one run as its Store holds it.
type RunInfo struct {
	Plan *Plan
	// Checkpoints has one entry per partition of the plan: its last
	// checkpoint, or nil if it has none yet.
	Checkpoints []*Checkpoint
	// BucketsDone lists the buckets marked applied to the sink, in order.
	BucketsDone []int
	// Replay is the replay manifest, nil if the run was never replayed.
	Replay *ReplayManifest
	// Damaged lists the partitions whose checkpoint failed its check (see
	// Damage); their Checkpoints entry is nil. The next run re-maps them.
	Damaged []Damage

	cfg Config // that found the run: where its dead letters are
}

// RunState names how far a run got.
type RunState string

// The states of a run, as RunInfo.State tells them.
const (
	StatePlanned  RunState = "planned"  // no partition has committed yet
	StateMapping  RunState = "mapping"  // some partitions are still to be mapped
	StateReducing RunState = "reducing" // every partition is mapped, some buckets are not applied
	StateDone     RunState = "done"     // every bucket is applied
)

// State tells how far the run got.
func (ri *RunInfo) State() RunState {
	switch done := ri.PartitionsDone(); {
	case done == len(ri.Checkpoints) && len(ri.BucketsDone) == ri.Plan.Buckets:
		return StateDone
	case done == len(ri.Checkpoints):
		return StateReducing
	case slices.IndexFunc(ri.Checkpoints, func(cp *Checkpoint) bool { return cp != nil }) >= 0:
		return StateMapping
	}
	return StatePlanned
}

// PartitionsDone counts the partitions whose map task finished.
func (ri *RunInfo) PartitionsDone() int {
	n := 0
	for _, cp := range ri.Checkpoints {
		if cp != nil && cp.Done {
			n++
		}
	}
	return n
}

// Rows returns the rows read and the rows failed, as committed.
func (ri *RunInfo) Rows() (read, failed int64) {
	for _, cp := range ri.Checkpoints {
		if cp != nil {
			read += cp.Rows
			failed += cp.Failed
		}
	}
	return read, failed
}

// Runs returns the state of every run in cfg's Store, by run id.
func Runs(ctx context.Context, cfg Config) ([]*RunInfo, error) {
	ids, err := cfg.store().Runs(ctx)
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	var runs []*RunInfo
	for _, id := range ids {
		ri, err := Inspect(ctx, cfg, id)
		if errors.Is(err, ErrNoRun) {
			continue // removed since it was listed
		}
		if err != nil {
			return nil, err
		}
		runs = append(runs, ri)
	}
	return runs, nil
}

// Inspect returns the state of run in cfg's Store; a run without a plan
// is an error wrapping ErrNoRun.
func Inspect(ctx context.Context, cfg Config, run string) (*RunInfo, error) {
	store := cfg.store()
	plan, err := store.LoadPlan(ctx, run)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w %q in %s", ErrNoRun, run, storeName(cfg))
	}
	if err != nil {
		return nil, err
	}
	if err := plan.check(); err != nil {
		return nil, err
	}
	st, err := loadRunState(ctx, store, plan)
	if err != nil {
		return nil, err
	}
	done, err := store.BucketsDone(ctx, run, plan.Commit)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", run, err)
	}
	return &RunInfo{Plan: plan, Checkpoints: st.checkpoints, BucketsDone: done, Replay: st.replay, Damaged: st.damaged, cfg: cfg}, nil
}

// DeadLetterFilter chooses dead letters.
type DeadLetterFilter struct {
	// Partitions lists the partitions whose letters to return; empty for
	// all.
	Partitions []int
}

// DeadLetters returns the dead letters of run that count: see
// RunInfo.DeadLetters.
func DeadLetters(ctx context.Context, cfg Config, run string, filter DeadLetterFilter) ([]DeadLetter, error) {
	ri, err := Inspect(ctx, cfg, run)
	if err != nil {
		return nil, err
	}
	return ri.DeadLetters(ctx, filter)
}

// DeadLetters returns the dead letters of the run that count: those the
// partitions' checkpoints committed, without the ones a replay resolved,
// in partition and cursor order, after those of an incremental run's
// earlier batches (see Earlier) unless filter names partitions. Each dead-letter file is checked against
// its recorded size and checksum first: a file changed or lost outside mr
// is an error wrapping ErrDamaged, never fewer letters, and so is a
// damaged checkpoint, whose letters are unknown. A partition the run does
// not have is an error wrapping ErrNoPartition.
func (ri *RunInfo) DeadLetters(ctx context.Context, filter DeadLetterFilter) ([]DeadLetter, error) {
	for _, p := range filter.Partitions {
		if p < 0 || p >= len(ri.Checkpoints) {
			return nil, fmt.Errorf("%w: run %s has partitions 0 to %d, not %d", ErrNoPartition, ri.Plan.RunID, len(ri.Checkpoints)-1, p)
		}
	}
	for _, d := range ri.Damaged {
		if len(filter.Partitions) == 0 || slices.Contains(filter.Partitions, d.Partition) {
			return nil, fmt.Errorf("run %s, partition %d: %w: its dead letters are unknown until it is mapped again; run the same mr run command again to heal it", ri.Plan.RunID, d.Partition, d.Err)
		}
	}
	b, err := openBlobs(ctx, ri.cfg)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	st := &runState{plan: ri.Plan, checkpoints: ri.Checkpoints, replay: ri.Replay}
	var letters []DeadLetter
	if e := ri.Plan.Earlier; e != nil && len(filter.Partitions) == 0 {
		if letters, err = e.letters(ctx, b); err != nil {
			return nil, fmt.Errorf("the dead letters of the earlier batches of run %s: %w", ri.Plan.RunID, err)
		}
	}
	for part := range ri.Checkpoints {
		if len(filter.Partitions) > 0 && !slices.Contains(filter.Partitions, part) {
			continue
		}
		ls, err := st.deadLetters(ctx, b, part)
		if errors.Is(err, ErrDamaged) {
			return nil, fmt.Errorf("%w; run the same mr run command again to heal it (it maps partition %d again)", err, part)
		}
		if err != nil {
			return nil, err
		}
		letters = append(letters, ls...)
	}
	return letters, nil
}

// ErrorCount is one distinct error among a run's dead letters and the
// letters that have it: see RunInfo.DeadLetterErrors.
type ErrorCount struct {
	Error string `json:"error"`
	// Stack is where Map panicked, for a panic: the first letter's. The
	// letters counted here panicked at the same frames (see errorKey),
	// though the words of their functions' arguments may differ.
	Stack   string `json:"stack,omitempty"`
	Letters int    `json:"letters"`
	// Partitions lists the partitions with letters of the error, in
	// order.
	Partitions []int `json:"partitions"`
	// FirstCursor is the lowest cursor among them, for mr dlq show.
	FirstCursor int64 `json:"first_cursor"`
}

// DeadLetterErrors returns the dead letters that count (as DeadLetters
// does, with the same checks) grouped by error, most letters first, then
// by first cursor: a Map bug that failed a million rows is one line of mr
// dlq list, next to the few rows that fail for their own reasons.
func (ri *RunInfo) DeadLetterErrors(ctx context.Context, filter DeadLetterFilter) ([]ErrorCount, error) {
	letters, err := ri.DeadLetters(ctx, filter)
	if err != nil {
		return nil, err
	}
	var counts []ErrorCount
	index := map[string]int{} // errorKey → counts index
	for _, l := range letters {
		key := errorKey(l.Error, l.Stack)
		i, ok := index[key]
		if !ok {
			i = len(counts)
			index[key] = i
			counts = append(counts, ErrorCount{Error: l.Error, Stack: l.Stack, FirstCursor: l.Cursor})
		}
		c := &counts[i]
		c.Letters++
		c.FirstCursor = min(c.FirstCursor, l.Cursor)
		if n := len(c.Partitions); n == 0 || c.Partitions[n-1] != l.Partition { // letters come in partition order
			c.Partitions = append(c.Partitions, l.Partition)
		}
	}
	slices.SortStableFunc(counts, func(a, b ErrorCount) int {
		return cmp.Or(cmp.Compare(b.Letters, a.Letters), cmp.Compare(a.FirstCursor, b.FirstCursor))
	})
	return counts, nil
}

// Damage is run state of one partition that failed its check: its
// checkpoint (a seal that does not match, or contents that do not fit the
// plan), or a file that the checkpoint names. Nothing the partition
// committed can be trusted then, so it is mapped again from the start of
// its range.
type Damage struct {
	Partition int
	Err       error // wraps ErrDamaged
}

func (d Damage) String() string { return fmt.Sprintf("partition %d: %v", d.Partition, d.Err) }

// runState is what the Store holds of one run under its plan.
type runState struct {
	plan        *Plan
	checkpoints []*Checkpoint   // one per partition, nil where none yet or damaged
	replay      *ReplayManifest // nil if none under this plan
	damaged     []Damage        // in partition order
}

// loadRunState loads the checkpoints and replay manifest of plan's run,
// checking each against the plan. A checkpoint that fails is left out and
// listed in damaged; a replay manifest that fails is an error, since the
// rows its files hold are in no checkpoint.
func loadRunState(ctx context.Context, store Store, plan *Plan) (*runState, error) {
	st := &runState{plan: plan, checkpoints: make([]*Checkpoint, len(plan.Partitions))}
	load := func(part int) (*Checkpoint, error) { return store.LoadCheckpoint(ctx, plan.RunID, part) }
	if cl, ok := store.(CheckpointsLoader); ok {
		cps, errs, err := cl.LoadCheckpoints(ctx, plan.RunID, len(plan.Partitions))
		if err != nil {
			return nil, fmt.Errorf("checkpoints of %s: %w", plan.RunID, err)
		}
		load = func(part int) (*Checkpoint, error) { return cps[part], errs[part] }
	}
	for part := range st.checkpoints {
		cp, err := load(part)
		switch {
		case errors.Is(err, ErrDamaged):
			st.damaged = append(st.damaged, Damage{part, fmt.Errorf("checkpoint damaged: %w", err)})
		case err != nil:
			return nil, fmt.Errorf("partition %d of %s: %w", part, plan.RunID, err)
		case cp == nil || cp.Commit != plan.Commit: // none yet, or left by an earlier plan
		default:
			if err := cp.check(plan, part); err != nil {
				st.damaged = append(st.damaged, Damage{part, fmt.Errorf("%w: checkpoint damaged: it %w", ErrDamaged, err)})
				continue
			}
			st.checkpoints[part] = cp
		}
	}
	m, err := store.LoadReplay(ctx, plan.RunID)
	if errors.Is(err, ErrDamaged) {
		return nil, fmt.Errorf("replay manifest of %s: %w: the rows that mr dlq replay resolved are recorded nowhere else; start over with --fresh", plan.RunID, err)
	}
	if err != nil {
		return nil, fmt.Errorf("replay manifest of %s: %w", plan.RunID, err)
	}
	if m != nil && m.Commit == plan.Commit { // else left by an earlier plan
		if err := m.check(plan); err != nil {
			return nil, fmt.Errorf("%w: replay manifest of %s %w; start over with --fresh", ErrDamaged, plan.RunID, err)
		}
		st.replay = m
	}
	return st, nil
}

// checkDeadLetters reads every dead-letter file that the checkpoints name,
// a pending chunk's too (see maponly.go), checking each against its
// recorded size and checksum, and moves a partition whose files fail to
// damaged: a map task that starts again writes them anew. It returns
// other errors (storage unreachable, say).
func (st *runState) checkDeadLetters(ctx context.Context, b *blobs.Bucket) error {
	for part, cp := range st.checkpoints {
		if cp == nil {
			continue
		}
		_, err := readDLQFiles(ctx, b, cp.deadLetterFiles())
		if errors.Is(err, ErrDamaged) {
			st.checkpoints[part] = nil
			st.damaged = append(st.damaged, Damage{part, err})
			continue
		}
		if err != nil {
			return fmt.Errorf("partition %d of %s: %w", part, st.plan.RunID, err)
		}
	}
	slices.SortFunc(st.damaged, func(a, b Damage) int { return a.Partition - b.Partition })
	return nil
}

// committedKeys returns the blob keys that the checkpoints (their pending
// chunks included, until resolved) and the replay manifest name: every
// other blob of the run is garbage, unless some state was damaged (see
// Runner.loadState).
func (st *runState) committedKeys() map[string]bool {
	keep := map[string]bool{}
	var keys []string
	for _, cp := range st.checkpoints {
		if cp == nil {
			continue
		}
		for _, f := range cp.Files {
			keys = append(keys, f.Key)
		}
		for _, f := range cp.deadLetterFiles() {
			keys = append(keys, f.Key)
		}
	}
	if st.replay != nil {
		for _, f := range st.replay.Files {
			keys = append(keys, f.Key)
		}
	}
	if e := st.plan.Earlier; e != nil {
		for _, f := range e.DeadLetters {
			keys = append(keys, f.Key)
		}
	}
	for _, k := range keys {
		keep[k] = true
	}
	return keep
}

// collect removes the blobs of the run in b that the state does not name
// (see committedKeys), and returns how many it removed; with dry, it only
// counts them. Listing storage is fine here; finding inputs never does,
// it reads the manifests.
func (st *runState) collect(ctx context.Context, b *blobs.Bucket, dry bool) (int, error) {
	keep, removed := st.committedKeys(), 0
	for _, prefix := range blobPrefixes() {
		keys, err := b.List(ctx, st.plan.RunID+"/"+prefix)
		if err != nil {
			return removed, fmt.Errorf("list %s of %s: %w", prefix, st.plan.RunID, err)
		}
		for _, k := range keys {
			if keep[k] {
				continue
			}
			if dry {
				removed++
				continue
			}
			if err := b.Delete(ctx, k); err != nil {
				return removed, fmt.Errorf("remove uncommitted %s of %s: %w", k, st.plan.RunID, err)
			}
			removed++
		}
	}
	return removed, nil
}

// Collect removes the files of run that no committed state names: those
// of attempts that died, or were fenced, before their commit. It is for a
// shared run that no worker runs any longer (see Config.Shared), whose
// files no process collects on its own; a run in one process collects
// them each time it starts. It refuses a run whose state is damaged,
// since a damaged checkpoint's files are unknown. With dry, it removes
// nothing and counts what it would remove.
func Collect(ctx context.Context, cfg Config, run string, dry bool) (removed int, err error) {
	ri, err := Inspect(ctx, cfg, run)
	if err != nil {
		return 0, err
	}
	if len(ri.Damaged) > 0 {
		return 0, fmt.Errorf("run %s: %s; its files are kept until a run heals it", run, ri.Damaged[0])
	}
	b, err := openBlobs(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer func() { err = errors.Join(err, b.Close()) }()
	st := &runState{plan: ri.Plan, checkpoints: ri.Checkpoints, replay: ri.Replay}
	return st.collect(ctx, b, dry)
}

// blobPrefixes are the key prefixes, after "<run>/", of every blob a run
// writes: for garbage collection, which alone may list them.
func blobPrefixes() []string { return append(slices.Clone(shuffle.Prefixes), dlqPrefix) }

// committedFiles returns the committed shuffle files of each bucket: the
// checkpoints' and the replay manifest's. Every partition must be mapped.
func (st *runState) committedFiles() ([][]shuffle.File, error) {
	files := make([][]shuffle.File, st.plan.Buckets)
	for part, cp := range st.checkpoints {
		if cp == nil || !cp.Done {
			return nil, fmt.Errorf("partition %d of %s has not finished its map task", part, st.plan.RunID)
		}
		for _, f := range cp.Files {
			files[f.Bucket] = append(files[f.Bucket], f)
		}
	}
	if st.replay != nil {
		for _, f := range st.replay.Files {
			files[f.Bucket] = append(files[f.Bucket], f.File)
		}
	}
	return files, nil
}

// resolved reports whether a replay resolved the dead letter at cursor.
func (st *runState) resolved(cursor int64) bool {
	if st.replay == nil {
		return false
	}
	_, ok := slices.BinarySearch(st.replay.Cursors, cursor)
	return ok
}

// deadLetters returns the letters of partition part that count.
func (st *runState) deadLetters(ctx context.Context, b *blobs.Bucket, part int) ([]DeadLetter, error) {
	cp := st.checkpoints[part]
	if cp == nil {
		return nil, nil
	}
	all, err := readDLQFiles(ctx, b, cp.DeadLetters)
	if err != nil {
		return nil, fmt.Errorf("partition %d of %s: %w", part, st.plan.RunID, err)
	}
	letters := all[:0]
	for _, l := range all {
		if !st.resolved(l.Cursor) {
			letters = append(letters, l)
		}
	}
	return letters, nil
}
