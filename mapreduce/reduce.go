package mapreduce

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mrengine/mr/internal/crashpoint"
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

// reduceBucket merges the committed files of bucket b, combines per key and
// applies the result to table t of the sink in one transaction.
func (r *Runner) reduceBucket(ctx context.Context, t OutputTable, commit string, b int, files []shuffle.File) (err error) {
	r.reducing(commit, b)
	defer func() {
		if p := recover(); p != nil { // in Combine or Finalize
			if err = overflowed(p); err == nil {
				err = recovered(p)
			}
			err = fmt.Errorf("bucket %d: %w", b, err)
		}
	}()
	rows := &bucketRows{r: r, ctx: ctx, bucket: b, comb: r.def.newCombiner(int(r.reduceKeys.Load())), parts: []part{{files: files}}}
	defer rows.removeRegrouped()
	rows.maxEntries = r.maxEntries(rows.comb)
	crashpoint.Hit(ctx, crashpoint.BucketStarted)
	if err := r.apply(ctx, t, commit, b, rows); err != nil {
		var bad *damagedFileError
		if errors.As(rows.err, &bad) { // whatever the sink made of it
			err = rows.err
		}
		return fmt.Errorf("bucket %d: %w", b, err)
	}
	crashpoint.Hit(ctx, crashpoint.BucketApplied)
	r.reduceKeys.Store(int64(rows.comb.peakKeys()))
	r.groups.Add(rows.n)
	r.progress.Add(PhaseReduce, 1)
	return r.store.MarkBucketDone(ctx, r.plan.RunID, r.plan.Commit, b)
}

// apply applies the rows of bucket b to t: merged into the stored groups
// for a plan that merges (see Plan.Merges), else as they are.
func (r *Runner) apply(ctx context.Context, t OutputTable, commit string, b int, rows *bucketRows) error {
	if !r.plan.Merges() {
		return r.sink.Apply(ctx, t, commit, b, rows)
	}
	m, ok := r.sink.(Merger)
	if !ok { // Open refuses such a run; this guards a Sink that changed
		return fmt.Errorf("sink %s cannot merge into stored groups", r.sink)
	}
	return m.Merge(ctx, t, r.spec.Restore, commit, b, mergeParts{rows})
}

// damagedFileError reports a committed shuffle file that is missing or
// fails its checksum: the partition that wrote it must be mapped again
// (see Runner.healing).
type damagedFileError struct {
	file shuffle.File
	err  error // wraps spill.ErrCorrupt or fs.ErrNotExist
}

func (e *damagedFileError) Error() string   { return "shuffle file damaged: " + e.err.Error() }
func (e *damagedFileError) Unwrap() []error { return []error{ErrDamaged, e.err} }

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
	ctx        context.Context // of the bucket's Apply, which drives Next
	bucket     int
	comb       combiner
	maxEntries int
	parts      []part     // a stack of parts left to reduce
	cur        OutputRows // the rows of the part in the combiner
	err        error
	n          int64          // rows yielded
	regrouped  []shuffle.File // sub-part files written, removed at the end
	flushes    int            // of sub-parts, to name their files
	unsorted   bool           // see InAnyOrder
}

func (br *bucketRows) Next() bool {
	for {
		if br.cur != nil && br.cur.Next() {
			br.n++
			return true
		}
		if br.cur != nil && br.err == nil {
			br.err = br.cur.Err() // Finalize's
		}
		if br.err != nil {
			return false
		}
		br.cur = nil
		if !br.nextPart() {
			return false
		}
		br.cur = br.comb.rows(!br.unsorted)
	}
}

func (br *bucketRows) Values() ([]any, error) { return br.cur.Values() }
func (br *bucketRows) Err() error             { return br.err }

var _ AnyOrder = (*bucketRows)(nil)

// InAnyOrder makes the rows come unsorted (see AnyOrder).
func (br *bucketRows) InAnyOrder() { br.unsorted = true }

// EncodeRow passes the current row to e: bucketRows' rows come from
// combiners, which are RowEncoders.
func (br *bucketRows) EncodeRow(e Encoder) error { return br.cur.(RowEncoder).EncodeRow(e) }

// nextPart loads parts until the combiner holds one whole; it returns
// false at the end of the bucket or on an error (br.err).
func (br *bucketRows) nextPart() bool {
	for br.err == nil && len(br.parts) > 0 {
		p := br.parts[len(br.parts)-1]
		br.parts = br.parts[:len(br.parts)-1]
		var whole bool
		if whole, br.err = br.load(p); whole {
			return true
		}
	}
	return false
}

// mergeParts yields a bucket's parts to a Merger: each part's keys, then,
// merged with their stored values, its rows.
type mergeParts struct{ br *bucketRows }

func (m mergeParts) Next() bool       { return m.br.nextPart() }
func (m mergeParts) Keys() OutputRows { return m.br.comb.keys() }
func (m mergeParts) Err() error       { return m.br.err }

func (m mergeParts) Merge(stored OutputRows) (OutputRows, error) {
	if err := m.br.comb.merge(stored); err != nil {
		return nil, err
	}
	m.br.n += int64(m.br.comb.len())
	return m.br.comb.rows(true), nil
}

// load reads part p into the combiner and reports whether it holds the
// whole part. If the combiner outgrows the budget, it re-partitions p
// (what the combiner holds and what is still unread) into sub-parts, which
// it pushes for later.
func (br *bucketRows) load(p part) (whole bool, err error) {
	var (
		w   *shuffle.Writer
		sub = make([][]shuffle.File, fanout)
	)
	defer func() {
		if w != nil {
			w.Release()
		}
	}()
	flush := func() error {
		if w == nil {
			if p.level >= maxLevels {
				return fmt.Errorf("still over --memory after %d re-partitions; raise --memory", maxLevels)
			}
			w = shuffle.NewWriter(br.r.schema, fanout, br.r.plan.Seed+uint64(p.level)+1, memory.NewGoAllocator())
		}
		br.comb.spill(w)
		br.flushes++
		files, err := w.Flush(br.ctx, br.r.blobs, func(s int) string {
			return shuffle.RegroupKey(br.r.plan.RunID, br.bucket, p.level+1, s, br.flushes, br.r.attempt)
		})
		for _, f := range files {
			sub[f.Bucket] = append(sub[f.Bucket], f)
		}
		br.regrouped = append(br.regrouped, files...)
		br.maxEntries = br.r.maxEntries(br.comb)
		return err
	}
	var flushErr error
	add := func(rec arrow.RecordBatch) error {
		br.comb.add(rec)
		if br.comb.len() >= br.maxEntries {
			flushErr = flush()
		}
		return flushErr
	}
	// Records decode under spill's default bound: a file whose checksum
	// matched was written by mr, under whatever --memory its run had then.
	// A file of the first level is a committed one, which a damaged file
	// (but not a failed flush) makes the partition that wrote it map again;
	// the deeper levels' files are this reduce's own.
	for _, f := range p.files {
		err := shuffle.Read(br.ctx, br.r.blobs, []shuffle.File{f}, add)
		if err != nil && err != flushErr && p.level == 0 && (errors.Is(err, spill.ErrCorrupt) || errors.Is(err, fs.ErrNotExist)) {
			return false, &damagedFileError{file: f, err: err}
		}
		if err != nil {
			return false, err
		}
	}
	if w == nil {
		return true, nil
	}
	if err := flush(); err != nil {
		return false, err
	}
	for _, files := range sub {
		if len(files) > 0 {
			br.parts = append(br.parts, part{files: files, level: p.level + 1})
		}
	}
	return false, nil
}

// removeRegrouped deletes the sub-part files of the bucket: they live only
// while it is reduced, also when the reduce failed (and its context ended).
// A file left by a crash is removed by the next Open.
func (br *bucketRows) removeRegrouped() {
	ctx := context.WithoutCancel(br.ctx)
	for _, f := range br.regrouped {
		br.r.blobs.Delete(ctx, f.Key)
	}
}
