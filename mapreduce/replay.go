package mapreduce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mrengine/mr/partition"
	"github.com/mrengine/mr/shuffle"
)

// ErrNotFinished is returned by Replay for a run whose map phase has not
// finished (or that has no plan at all); it is wrapped as "run <id> has
// not finished".
var ErrNotFinished = errors.New("has not finished")

// ReplayManifest is the commit record of mr dlq replay, replay.json in the
// run directory. Its files count as committed shuffle files of the run,
// next to the checkpoints' files, and the dead letters whose cursors it
// lists are resolved: they no longer count, whatever a DLQ file still says.
type ReplayManifest struct {
	// Commit is the plan's: a manifest left by an earlier plan of the run
	// (mr run --fresh) does not count.
	Commit string `json:"commit"`
	// Generation counts the replays that resolved letters; the sink
	// records the buckets re-applied by generation g under the commit key
	// Plan.Commit + ".replay<g>".
	Generation int            `json:"generation"`
	Files      []shuffle.File `json:"files"`   // paths relative to the run directory
	Cursors    []int64        `json:"cursors"` // the letters resolved, sorted
}

// ReplayResult is what a replay did.
type ReplayResult struct {
	RunID      string
	Generation int // the manifest's generation after the replay
	Letters    int // dead letters replayed
	Succeeded  int // of which now map (or whose row is gone)
	Failed     int // of which still fail, and stay in the DLQ
}

func (s ReplayResult) String() string {
	return fmt.Sprintf("replayed %d dead letters of run %s: %d now succeed, %d still fail (generation %d)",
		s.Letters, s.RunID, s.Succeeded, s.Failed, s.Generation)
}

// LoadReplayManifest reads the replay manifest of the run in dir for the
// plan p; a run never replayed under p has an empty one.
func LoadReplayManifest(dir string, p *Plan) (*ReplayManifest, error) {
	var m ReplayManifest
	err := readJSON(filepath.Join(dir, "replay.json"), &m)
	if errors.Is(err, fs.ErrNotExist) || err == nil && m.Commit != p.Commit {
		return &ReplayManifest{Commit: p.Commit}, nil
	}
	if err != nil {
		return nil, err
	}
	return &m, nil
}

func (r *Runner) loadReplay() (*ReplayManifest, error) { return LoadReplayManifest(r.dir, r.plan) }

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
// fixed, and re-applies the buckets to the sink so that the rows that now
// succeed count.
//
// Each letter's row is read again from the source by its cursor (a row
// that is gone is resolved, with no output) and mapped through a combine
// table with the usual retries. The order of the writes makes the replay
// manifest its single commit point:
//
//  1. The pairs of the rows that now map are spilled to new shuffle files
//     under replay/, named by generation and attempt, each durable. A crash
//     here leaves files that no manifest names: garbage, removed by the
//     next replay.
//  2. replay.json is replaced atomically, adding the files and the
//     resolved cursors, with the generation incremented. This is the
//     commit: from now on the files count (committedFiles adds them) and
//     the resolved letters do not, even where a DLQ file still holds them,
//     since every reader of letters drops the manifest's cursors.
//  3. Each changed partition's DLQ file is rewritten atomically (temp file,
//     sync, rename) with the letters that still fail, their attempts
//     updated, then its checkpoint is saved with the file's new length and
//     Failed count. A crash between the two leaves a checkpoint whose
//     DLQBytes is not the file's length; that is harmless because a finished
//     partition's file is never appended to again, so it is read whole (both
//     versions are complete files), and the next replay saves the
//     checkpoint anew.
//  4. Every bucket is reduced from all committed files and applied under
//     the commit key Plan.Commit + ".replay<generation>": the sink upserts
//     each key's full aggregate, which is exact. Buckets already applied
//     under that key are skipped, so the next replay finishes a crashed one.
//
// A replay that resolves nothing commits no new generation and re-applies
// nothing that was already applied, so replaying twice is harmless.
func (r *Runner) Replay(ctx context.Context) (ReplayResult, error) {
	res := ReplayResult{RunID: r.plan.RunID}
	cps, err := r.loadCheckpoints(ctx)
	if err != nil {
		return res, err
	}
	for part, cp := range cps {
		if cp == nil || !cp.Done {
			return res, fmt.Errorf("partition %d is not mapped yet, so run %s %w", part, r.plan.RunID, ErrNotFinished)
		}
	}
	m, err := r.loadReplay()
	if err != nil {
		return res, err
	}
	res.Generation = m.Generation
	if err := r.removeUncommittedReplay(m); err != nil {
		return res, fmt.Errorf("remove uncommitted replay files of %s: %w", r.plan.RunID, err)
	}
	resolved := map[int64]bool{}
	for _, c := range m.Cursors {
		resolved[c] = true
	}

	// Re-map the letters still in force.
	t := r.def.newCombiner()
	var (
		newCursors []int64
		remaining  = make([][]DeadLetter, len(cps))
		changed    = make([]bool, len(cps))
		batch      = NewBatch(r.in.Columns)
	)
	for part := range cps {
		letters, err := ReadDeadLetterFile(r.dlqPath(part))
		if err != nil {
			return res, err
		}
		for _, l := range letters {
			if resolved[l.Cursor] {
				changed[part] = true // left by a replay that crashed in step 3
				continue
			}
			res.Letters++
			batch.Reset()
			err := r.src.ReadChunk(ctx, r.in, partition.Range{Lo: l.Cursor, Hi: l.Cursor + 1}, 1, batch)
			if errors.Is(err, io.EOF) || err == nil && batch.Len() == 0 {
				res.Succeeded++ // the row is gone: nothing to map
				newCursors = append(newCursors, l.Cursor)
				changed[part] = true
				continue
			}
			if err != nil {
				return res, fmt.Errorf("read cursor %d: %w", l.Cursor, err)
			}
			attempts, err := r.mapRetrying(ctx, t, batch.Row(0))
			if ctx.Err() != nil {
				return res, context.Cause(ctx)
			}
			if err == nil {
				res.Succeeded++
				newCursors = append(newCursors, l.Cursor)
				changed[part] = true
				continue
			}
			res.Failed++
			l.Row = batch.Row(0).Columns()
			var panicked *PanicError
			errors.As(err, &panicked)
			l.Error = err.Error()
			l.Stack = panicked.stack()
			l.Attempts += attempts
			l.Time = time.Now().UTC()
			remaining[part] = append(remaining[part], l)
			changed[part] = true
		}
	}

	// Steps 1 and 2: spill, then commit the manifest.
	if len(newCursors) > 0 {
		gen := m.Generation + 1
		w := shuffle.NewWriter(r.schema, r.plan.Buckets, memory.NewGoAllocator())
		defer w.Release()
		t.spill(w, partition.NewHasher(r.plan.Seed), r.plan.Buckets)
		dir := filepath.Join(r.dir, "replay")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return res, err
		}
		files, err := w.Flush(func(b int) string {
			return filepath.Join(dir, fmt.Sprintf("g%04d-b%04d-%s.arrow", gen, b, r.attempt))
		})
		if err != nil {
			return res, err
		}
		next := *m
		next.Generation = gen
		next.Files = slices.Clone(m.Files)
		for _, f := range files {
			if f.Path, err = filepath.Rel(r.dir, f.Path); err != nil {
				return res, err
			}
			next.Files = append(next.Files, f)
		}
		next.Cursors = append(slices.Clone(m.Cursors), newCursors...)
		slices.Sort(next.Cursors)
		if err := writeJSON(filepath.Join(r.dir, "replay.json"), &next); err != nil {
			return res, fmt.Errorf("commit replay: %w", err)
		}
		m = &next
		res.Generation = gen
	}

	// Step 3: the DLQ files and checkpoints of the partitions that changed.
	for part, cp := range cps {
		if !changed[part] {
			continue
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		for i := range remaining[part] {
			if err := enc.Encode(&remaining[part][i]); err != nil {
				return res, err
			}
		}
		if err := writeFileAtomic(r.dlqPath(part), buf.Bytes()); err != nil {
			return res, fmt.Errorf("rewrite DLQ of partition %d: %w", part, err)
		}
		next := *cp
		next.DLQBytes = int64(buf.Len())
		next.Failed = int64(len(remaining[part]))
		next.Updated = time.Now().UTC()
		if err := r.cfg.Store.SaveCheckpoint(ctx, r.plan.RunID, &next); err != nil {
			return res, fmt.Errorf("save checkpoint of partition %d: %w", part, err)
		}
	}

	// Step 4: re-apply under the generation's commit key.
	if m.Generation > 0 {
		if err := r.sink.Prepare(ctx, r.spec.Output); err != nil {
			return res, err
		}
		if err := r.reducePhase(ctx, replayCommit(r.plan, m.Generation)); err != nil {
			return res, err
		}
	}
	return res, nil
}

// removeUncommittedReplay deletes the files under replay/ that m does not
// name: left by replays that died before their commit.
func (r *Runner) removeUncommittedReplay(m *ReplayManifest) error {
	keep := map[string]bool{}
	for _, f := range m.Files {
		keep[filepath.Base(f.Path)] = true
	}
	entries, err := os.ReadDir(filepath.Join(r.dir, "replay"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !keep[e.Name()] && !strings.HasPrefix(e.Name(), ".") {
			if err := os.Remove(filepath.Join(r.dir, "replay", e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// replayCommit is the sink commit key of replay generation gen.
func replayCommit(p *Plan, gen int) string { return fmt.Sprintf("%s.replay%d", p.Commit, gen) }
