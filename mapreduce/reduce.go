package mapreduce

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mrengine/mr/internal/crashpoint"
	"github.com/mrengine/mr/partition"
	"github.com/mrengine/mr/shuffle"
	"github.com/mrengine/mr/spill"
)

// Grace hash aggregation: a bucket whose keys outgrow the memory budget is
// re-partitioned into fanout sub-parts under a new hash seed, and each
// sub-part is reduced on its own, recursively. fanout 16 makes a part of a
// few times the budget fit after one level; maxLevels stops a runaway
// recursion that only a broken entry-size estimate could cause.
const (
	fanout    = 16
	maxLevels = 8
)

// committedFiles reads the manifest of every partition's checkpoint, and
// the replay manifest (replay.go) if mr dlq replay committed one, and
// returns the committed shuffle files of each bucket.
func (r *Runner) committedFiles(ctx context.Context) ([][]shuffle.File, error) {
	cps, err := r.loadCheckpoints(ctx)
	if err != nil {
		return nil, err
	}
	files := make([][]shuffle.File, r.plan.Buckets)
	for part, cp := range cps {
		if cp == nil || !cp.Done {
			return nil, fmt.Errorf("partition %d has not finished its map task", part)
		}
		for _, f := range cp.Files {
			f.Path = filepath.Join(r.dir, f.Path)
			files[f.Bucket] = append(files[f.Bucket], f)
		}
	}
	m, err := r.loadReplay()
	if err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		f.Path = filepath.Join(r.dir, f.Path)
		files[f.Bucket] = append(files[f.Bucket], f)
	}
	return files, nil
}

// reduceBucket merges the committed files of bucket b, combines per key and
// applies the result to the sink in one transaction.
func (r *Runner) reduceBucket(ctx context.Context, commit string, b int, files []shuffle.File) (err error) {
	defer func() {
		if p := recover(); p != nil { // in Combine or Finalize
			err = fmt.Errorf("bucket %d: %w", b, recovered(p))
		}
	}()
	dir := filepath.Join(r.dir, "reduce", fmt.Sprintf("b%04d", b))
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rows := &bucketRows{r: r, dir: dir, comb: r.def.newCombiner(), parts: []part{{files: files}}}
	rows.maxEntries = r.maxEntries(rows.comb)
	if err := r.sink.Apply(ctx, r.spec.Output, commit, b, rows); err != nil {
		return fmt.Errorf("bucket %d: %w", b, err)
	}
	crashpoint.Hit(crashpoint.BucketApplied)
	r.groups.Add(rows.n)
	r.progress.Add(PhaseReduce, 1)
	return r.cfg.Store.MarkBucketDone(ctx, r.plan.RunID, b)
}

// part is a set of shuffle files to reduce together; level counts the
// re-partitions that made it.
type part struct {
	files []shuffle.File
	level int
}

// bucketRows reduces a bucket lazily, as the sink reads its rows: one part
// at a time is loaded into the combiner and drained, so memory stays within
// the budget however many keys the bucket has.
type bucketRows struct {
	r          *Runner
	dir        string // for re-partitioned sub-parts
	comb       combiner
	maxEntries int
	parts      []part     // a stack of parts left to reduce
	cur        OutputRows // the rows of the part in the combiner
	err        error
	n          int64 // rows yielded
	written    int   // sub-part files written, to name them
}

func (br *bucketRows) Next() bool {
	for {
		if br.cur != nil && br.cur.Next() {
			br.n++
			return true
		}
		br.cur = nil
		if br.err != nil || len(br.parts) == 0 {
			return false
		}
		p := br.parts[len(br.parts)-1]
		br.parts = br.parts[:len(br.parts)-1]
		br.err = br.load(p)
	}
}

func (br *bucketRows) Values() ([]any, error) { return br.cur.Values() }
func (br *bucketRows) Err() error             { return br.err }

// load reads part p into the combiner. If the combiner outgrows the budget, it
// re-partitions p (what the combiner holds and what is still unread) into
// sub-parts, which it pushes for later; otherwise the combiner's rows become
// the current rows.
func (br *bucketRows) load(p part) error {
	var (
		w   *shuffle.Writer
		h   *partition.Hasher
		sub = make([][]shuffle.File, fanout)
	)
	flush := func() error {
		if w == nil {
			if p.level >= maxLevels {
				return fmt.Errorf("still over --memory after %d re-partitions; raise --memory", maxLevels)
			}
			w = shuffle.NewWriter(br.r.schema, fanout, memory.NewGoAllocator())
			h = partition.NewHasher(br.r.plan.Seed + uint64(p.level) + 1)
		}
		br.comb.spill(w, h, fanout)
		br.written++
		files, err := w.Flush(func(s int) string {
			return filepath.Join(br.dir, fmt.Sprintf("l%d-s%02d-%06d.arrow", p.level+1, s, br.written))
		})
		for _, f := range files {
			sub[f.Bucket] = append(sub[f.Bucket], f)
		}
		br.maxEntries = br.r.maxEntries(br.comb)
		return err
	}
	err := shuffle.Read(p.files, func(rec arrow.RecordBatch) error {
		br.comb.add(rec)
		if br.comb.len() >= br.maxEntries {
			return flush()
		}
		return nil
	}, spill.WithMaxRecordSize(br.r.cfg.Memory))
	if err != nil {
		return err
	}
	if w == nil {
		br.cur = br.comb.rows()
		return nil
	}
	defer w.Release()
	if err := flush(); err != nil {
		return err
	}
	for _, files := range sub {
		if len(files) > 0 {
			br.parts = append(br.parts, part{files: files, level: p.level + 1})
		}
	}
	return nil
}
