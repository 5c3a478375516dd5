package mapreduce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mrengine/mr/partition"
	"github.com/mrengine/mr/shuffle"
)

// ErrNotFinished is returned by Replay for a run whose map phase has not
// finished (or that has no plan at all).
var ErrNotFinished = errors.New("the run's map phase has not finished")

// ReplayManifest is the commit record of mr dlq replay, kept by the Store.
// Its files count as committed shuffle files of the run, next to the
// checkpoints' files, and the dead letters whose cursors it lists are
// resolved: they no longer count, whatever a dead-letter file still says.
type ReplayManifest struct {
	// Commit is the plan's: a manifest left by an earlier plan of the run
	// (mr run --fresh) does not count.
	Commit string `json:"commit"`
	// Generation counts the replays that resolved letters; the sink
	// records the buckets re-applied by generation g under the commit key
	// Plan.Commit + ".replay<g>".
	Generation int          `json:"generation"`
	Files      []ReplayFile `json:"files"`
	Cursors    []int64      `json:"cursors"` // the letters resolved, sorted
}

// check reports a manifest that does not fit plan p (see
// Checkpoint.check for why a sealed file is checked at all).
func (m *ReplayManifest) check(p *Plan) error {
	for _, f := range m.Files {
		_, attempt, _ := cutLast(strings.TrimSuffix(f.Key, path.Ext(f.Key)), "-")
		switch {
		case f.Bucket < 0 || f.Bucket >= p.Buckets:
			return fmt.Errorf("names shuffle file %s of bucket %d; the plan has %d buckets", f.Key, f.Bucket, p.Buckets)
		case f.Generation < 1 || f.Generation > m.Generation:
			return fmt.Errorf("names shuffle file %s of generation %d; it is at generation %d", f.Key, f.Generation, m.Generation)
		case f.Key != shuffle.ReplayKey(p.RunID, f.Generation, f.Bucket, attempt):
			return fmt.Errorf("names shuffle file %s, which is not one of replay generation %d, bucket %d", f.Key, f.Generation, f.Bucket)
		}
	}
	if !slices.IsSorted(m.Cursors) {
		return errors.New("lists the cursors it resolved out of order")
	}
	return nil
}

// ReplayFile is a shuffle file written by replay generation Generation.
type ReplayFile struct {
	Generation int `json:"generation"`
	shuffle.File
}

// latest returns, for each bucket that a replay touched, the last
// generation that wrote a file of it: the commit key under which the
// bucket's value includes every replayed row.
func (m *ReplayManifest) latest() map[int]int {
	gens := map[int]int{}
	if m != nil {
		for _, f := range m.Files {
			gens[f.Bucket] = max(gens[f.Bucket], f.Generation)
		}
	}
	return gens
}

// ReplayResult is what a replay did.
type ReplayResult struct {
	RunID      string
	Generation int // the manifest's generation after the replay
	Letters    int // dead letters replayed
	Succeeded  int // of which now map (or whose row is gone)
	Failed     int // of which still fail, and stay in the DLQ
	Buckets    int // buckets re-applied to the sink
}

func (s ReplayResult) String() string {
	return fmt.Sprintf("replayed %d dead letters of run %s: %d now succeed, %d still fail; %d buckets re-applied (generation %d)",
		s.Letters, s.RunID, s.Succeeded, s.Failed, s.Buckets, s.Generation)
}

// Replay opens the existing, finished run with def's identity over src and
// sink (as Run would, with the same cfg) and replays its dead letters: see
// Runner.Replay. A run that has no plan yet returns ErrNotFinished, without
// making one.
func Replay(ctx context.Context, def Definition, src Source, sink Sink, cfg Config) (ReplayResult, error) {
	cfg.Fresh = false
	r, err := open(ctx, def, src, sink, cfg, false)
	if err != nil {
		return ReplayResult{}, err
	}
	defer r.Close()
	return r.Replay(ctx)
}

// Replay re-maps the dead letters of a finished run, after their cause was
// fixed, and re-applies the buckets whose keys they touch, so that the rows
// that now succeed count.
//
// Each letter's row is read again from the source by its cursor (a row
// that is gone is resolved, with no output) and mapped through a combiner
// with the usual retries. The order of the writes makes the replay
// manifest its single commit point:
//
//  1. The pairs of the rows that now map are spilled to new shuffle files,
//     named by generation and attempt, each durable. A crash here leaves
//     files that no manifest names: garbage, removed by the next Open.
//  2. The manifest is saved, adding the files (under the new generation)
//     and the resolved cursors. This is the commit: from now on the files
//     count and the resolved letters do not, even where a dead-letter file
//     still holds them, since every reader of letters drops the
//     manifest's cursors.
//  3. Each changed partition's letters that still fail are written to a
//     new dead-letter file, their attempts updated, and the partition's
//     checkpoint is saved naming it instead of the old ones, with the new
//     Failed count. A crash between two partitions leaves old files whose
//     resolved letters do not count; the next replay rewrites them.
//  4. The buckets of the run that its own reduce phase did not apply yet
//     (a run that stopped there) are applied under Plan.Commit, and the
//     run's staging table is swapped in if it was not yet (see
//     Runner.Run): finishing the run is the run's own work. Then each
//     bucket that a generation wrote files for is reduced again from all
//     committed files and applied under that generation's commit key
//     (Plan.Commit + ".replay<g>"): the sink upserts each key's full
//     aggregate into the output table, which is exact; a replay never
//     replaces the table, so groups that it does not touch, and rows put
//     into the table since the run, stay. Buckets no replay touched are not
//     re-applied. Buckets already applied under their key are skipped, so
//     the next replay finishes one that crashed here.
//
// A replay that resolves nothing commits no new generation and re-applies
// nothing that was already applied, so replaying twice is harmless.
func (r *Runner) Replay(ctx context.Context) (_ ReplayResult, err error) {
	res := ReplayResult{RunID: r.plan.RunID}
	if r.plan.Input.Compound() {
		// A replay reads each row back by its cursor, and the letters it
		// resolves are kept, and skipped on a re-map, by cursor alone
		// (ReplayManifest.Cursors, Earlier.Resolved): under a compound
		// cursor many rows share one, so it would resolve the wrong rows.
		return res, fmt.Errorf("run %s pages by the compound cursor %q, and mr dlq replay reads rows back by a cursor of one column: "+
			"fix the rows' cause and run again with --fresh, or run with --cursor %s to replay", r.plan.RunID, r.plan.Input.Cursor, tieOf(r.plan.Input))
	}
	defer func() { err = r.cfg.diskFull(err) }()
	if len(r.damaged) > 0 {
		d := r.damaged[0]
		return res, fmt.Errorf("run %s, partition %d: %w; run the same mr run command again to heal it, then replay", r.plan.RunID, d.Partition, d.Err)
	}
	// A replay applies each bucket it touches anew from all of the plan's
	// files, which in a batch hold only the batch's rows.
	if r.plan.Merges() {
		return res, fmt.Errorf("run %s has merged %d incremental batches into its table, whose buckets a replay cannot apply anew: "+
			"fix the rows at the source and recompute with --fresh (rows inserted anew are read by the next --incremental run)", r.plan.RunID, r.plan.Batch)
	}
	if r.plan.MapOnly {
		return res, fmt.Errorf("run %s is of a map-only job, whose dead letters mr dlq replay cannot replay yet: "+
			"fix the rows at the source or the job, then run it again with --fresh, which upserts every row anew", r.plan.RunID)
	}
	for part, cp := range r.checkpoints {
		if cp == nil || !cp.Done {
			return res, fmt.Errorf("run %s: %w (partition %d is not mapped yet)", r.plan.RunID, ErrNotFinished, part)
		}
	}
	m := r.replay
	if m == nil {
		m = &ReplayManifest{Commit: r.plan.Commit}
	}
	res.Generation = m.Generation

	// Re-map the letters still in force.
	comb := r.def.newCombiner(0)
	var (
		newCursors []int64
		remaining  = make([][]DeadLetter, len(r.checkpoints))
		changed    = make([]bool, len(r.checkpoints))
		batch      = NewBatch(r.in.Names())
	)
	for part, cp := range r.checkpoints {
		letters, err := readDLQFiles(ctx, r.blobs, cp.DeadLetters)
		if err != nil {
			return res, fmt.Errorf("partition %d of %s: %w", part, r.plan.RunID, err)
		}
		for _, l := range letters {
			if r.resolved(l.Cursor) {
				changed[part] = true // left by a replay that crashed in step 3
				continue
			}
			res.Letters++
			batch.Reset()
			err := r.src.ReadChunk(ctx, r.in, partition.Through(l.Cursor, l.Cursor), 1, batch)
			if errors.Is(err, io.EOF) || err == nil && batch.Len() == 0 {
				res.Succeeded++ // the row is gone: nothing to map
				newCursors = append(newCursors, l.Cursor)
				changed[part] = true
				continue
			}
			if err != nil {
				return res, fmt.Errorf("read cursor %d: %w", l.Cursor, err)
			}
			attempts, err := r.mapRetrying(ctx, comb, batch.Row(0))
			if ctx.Err() != nil {
				return res, context.Cause(ctx)
			}
			changed[part] = true
			if err == nil {
				res.Succeeded++
				newCursors = append(newCursors, l.Cursor)
				continue
			}
			res.Failed++
			var panicked *PanicError
			errors.As(err, &panicked)
			l.Row = batch.Row(0).Columns()
			l.Error = err.Error()
			l.Stack = panicked.stack()
			l.Attempts += attempts
			l.Time = time.Now().UTC()
			remaining[part] = append(remaining[part], l)
		}
	}

	// Steps 1 and 2: spill, then commit the manifest.
	if len(newCursors) > 0 {
		gen := m.Generation + 1
		w := shuffle.NewWriter(r.schema, r.plan.Buckets, r.plan.Seed, memory.NewGoAllocator())
		defer w.Release()
		comb.spill(w)
		files, err := w.Flush(ctx, r.blobs, func(b int) string { return shuffle.ReplayKey(r.plan.RunID, gen, b, r.attempt) })
		if err != nil {
			return res, err
		}
		next := *m
		next.Generation = gen
		next.Files = slices.Clone(m.Files)
		for _, f := range files {
			next.Files = append(next.Files, ReplayFile{Generation: gen, File: f})
		}
		next.Cursors = append(slices.Clone(m.Cursors), newCursors...)
		slices.Sort(next.Cursors)
		if err := r.store.SaveReplay(ctx, r.plan.RunID, &next); err != nil {
			return res, fmt.Errorf("commit replay: %w", err)
		}
		m = &next
		r.replay = m
		res.Generation = gen
	}

	// Step 3: the dead letters and checkpoints of the partitions that changed.
	for part, cp := range r.checkpoints {
		if !changed[part] {
			continue
		}
		next := *cp
		next.DeadLetters = nil
		if len(remaining[part]) > 0 {
			d := dlqWriter{blobs: r.blobs, key: replayDLQKey(r.plan.RunID, part, m.Generation, r.attempt)}
			for i := range remaining[part] {
				if err := d.append(ctx, &remaining[part][i]); err != nil {
					d.abort()
					return res, fmt.Errorf("rewrite dead letters of partition %d: %w", part, err)
				}
			}
			f, err := d.commit()
			if err != nil {
				d.abort()
				return res, fmt.Errorf("rewrite dead letters of partition %d: %w", part, err)
			}
			next.DeadLetters = []DeadLetterFile{*f}
		}
		next.Failed = int64(len(remaining[part]))
		next.Updated = time.Now().UTC()
		if err := r.store.SaveCheckpoint(ctx, r.plan.RunID, &next); err != nil {
			return res, fmt.Errorf("save checkpoint of partition %d: %w", part, err)
		}
		*cp = next
	}

	// Step 4: finish the run's own reduce, then re-apply the buckets the
	// replays touched, healing a damaged shuffle file as a run does.
	if err := r.sink.Prepare(ctx, r.spec.Output); err != nil {
		return res, err
	}
	err = r.healing(ctx, map[int]bool{}, func(ctx context.Context) error {
		if err := r.reduceRun(ctx); err != nil {
			return err
		}
		n, err := r.applyReplay(ctx)
		res.Buckets = n
		return err
	})
	return res, err
}

// applyReplay applies each bucket that a replay touched under the commit
// key of the last generation that touched it, where the sink does not have
// it yet, and returns how many it applied.
func (r *Runner) applyReplay(ctx context.Context) (int, error) {
	pending, err := r.unappliedReplay(ctx)
	if err != nil || len(pending) == 0 {
		return 0, err
	}
	byGen := map[int][]int{}
	for b, gen := range pending {
		byGen[gen] = append(byGen[gen], b)
	}
	for _, gen := range slices.Sorted(maps.Keys(byGen)) {
		buckets := byGen[gen]
		slices.Sort(buckets)
		if err := r.reducePhase(ctx, r.spec.Output, replayCommit(r.plan, gen), buckets); err != nil {
			return 0, err
		}
	}
	return len(pending), nil
}

// unappliedReplay returns the buckets (with their generation, see
// ReplayManifest.latest) that the sink has not yet committed under the key
// of the last generation that touched them.
func (r *Runner) unappliedReplay(ctx context.Context) (map[int]int, error) {
	latest := r.replay.latest()
	pending := map[int]int{}
	committed := map[int][]int{} // generation → buckets the sink has under its key
	for b, gen := range latest {
		if _, ok := committed[gen]; !ok {
			bs, err := r.sink.Committed(ctx, replayCommit(r.plan, gen))
			if err != nil {
				return nil, fmt.Errorf("read commits of %s from %s: %w", r.plan.RunID, r.sink, err)
			}
			committed[gen] = bs
		}
		if !slices.Contains(committed[gen], b) {
			pending[b] = gen
		}
	}
	return pending, nil
}

// replayCommit is the sink commit key of replay generation gen.
func replayCommit(p *Plan, gen int) string { return fmt.Sprintf("%s.replay%d", p.Commit, gen) }
