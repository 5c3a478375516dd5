package mapreduce

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"

	"github.com/mrengine/mr/internal/blobs"
	"github.com/mrengine/mr/partition"
)

// An incremental run is a chain of plans under one run id. Its first plan
// is a full run (batch 0) that reads the source through a safe high-water
// mark (see Marker) and replaces the output table; each later plan is a
// batch of the rows past the mark of the plan before, up to a new mark,
// whose groups merge into the ones the output table holds (see Merger).
// Every bucket of a batch applies in one sink transaction that records it
// under the batch's Commit, and a batch is planned only once the plan
// before it finished, so a crash anywhere resumes the batch it hit: no
// bucket of it applies twice, and no row is skipped, since the next batch
// begins where the finished one's mark ends.
//
// What a batch cannot see: a row updated or deleted at or below the mark
// stays counted as it was. Only a full run (--fresh) recomputes them.

// Earlier is what the earlier plans of an incremental run committed that
// outlives them: a batch's plan voids their checkpoints and shuffle
// files, but not their groups in the output table or their dead letters.
type Earlier struct {
	Batches int   `json:"batches"` // plans finished before this one
	Rows    int64 `json:"rows"`    // rows they read
	Failed  int64 `json:"failed"`  // of which sent to the dead-letter queue
	// DeadLetters are their dead-letter files, which mr dlq list still
	// shows, and Resolved the cursors of letters among them that a replay
	// resolved, in order.
	DeadLetters []DeadLetterFile `json:"dead_letters,omitempty"`
	Resolved    []int64          `json:"resolved,omitempty"`
	// Reread are the rows of letters among them that a batch with a
	// window read again (see supersede), in order of Cursor.
	Reread []Reread `json:"reread,omitempty"`
}

// Reread is a row with a dead letter that a batch with a window read
// again: its letters in the first Files of Earlier.DeadLetters are
// resolved, and a later one, of that batch or after, is its latest.
type Reread struct {
	Cursor int64 `json:"cursor"`
	Files  int   `json:"files"`
}

// letters returns the dead letters of e that are still in force: not
// resolved by a replay, nor superseded by a row read again.
func (e *Earlier) letters(ctx context.Context, b *blobs.Bucket) ([]DeadLetter, error) {
	var letters []DeadLetter
	for i := range e.DeadLetters {
		ls, err := readDLQFiles(ctx, b, e.DeadLetters[i:i+1])
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			_, resolved := slices.BinarySearch(e.Resolved, l.Cursor)
			j, reread := slices.BinarySearchFunc(e.Reread, l.Cursor, func(r Reread, c int64) int { return cmp.Compare(r.Cursor, c) })
			if !resolved && !(reread && i < e.Reread[j].Files) {
				letters = append(letters, l)
			}
		}
	}
	return letters, nil
}

// checkIncremental reports what keeps the run of def over src and sink
// from running incrementally. A map-only job needs only the mark: a batch
// upserts the rows of its new rows, and merges nothing.
func checkIncremental(spec Spec, src Source, sink Sink) error {
	var errs []error
	if !spec.Incremental && !spec.MapOnly {
		errs = append(errs, fmt.Errorf("job %q cannot run incrementally: it does not declare that its Combine may merge new values into stored ones (mapreduce.Job.Incremental)", spec.Name))
	}
	if _, ok := src.(Marker); !ok {
		errs = append(errs, fmt.Errorf("source %s cannot take a safe high-water mark of its cursor, which an incremental run reads up to", src))
	}
	if _, ok := sink.(Merger); !ok && !spec.MapOnly {
		errs = append(errs, fmt.Errorf("sink %s cannot read back the groups it stores, which an incremental run merges into", sink))
	}
	return errors.Join(errs...)
}

// Next plans the run's next incremental batch, once Run finished the
// current plan without an error (but for ErrFailureRate): the rows past
// the plan's Mark, up to a new safe mark, to merge into the output table
// when Run is called again. A plan without a Mark (made without
// Config.Incremental) is followed by a full plan that takes one instead,
// which recomputes the table once. Next needs Config.Incremental.
func (r *Runner) Next(ctx context.Context) (err error) {
	defer func() { err = r.cfg.diskFull(err) }()
	switch {
	case !r.cfg.Incremental:
		return errors.New("mapreduce: Next needs Config.Incremental")
	case !r.finished:
		return fmt.Errorf("mapreduce: run %s has not finished its plan: Run it first", r.plan.RunID)
	}
	prev := r.plan
	after := prev
	if prev.Mark == nil {
		after = nil
		r.log.Warn("the run's last plan took no safe high-water mark: recomputing the table once to take one", "run", prev.RunID)
	}
	plan, err := newPlan(ctx, prev.RunID, r.spec, r.src, r.sink, r.in, r.cfg, after)
	if err != nil {
		return err
	}
	if after != nil {
		plan.Earlier = r.runState.earlier()
		if plan.Window != nil {
			if err := r.supersede(ctx, plan); err != nil {
				return err
			}
		}
		if len(plan.Earlier.Reread) > 0 { // see windowFormat
			plan.Format = max(plan.Format, windowFormat)
		}
	}
	if err := r.store.SavePlan(ctx, plan); err != nil {
		return fmt.Errorf("save plan of %s: %w", plan.RunID, err)
	}
	attrs := []any{"run", plan.RunID, "batch", plan.Batch, "cursors", plan.Span, "mark", *plan.Mark, "rows", plan.Rows}
	if w := plan.Window; w != nil {
		attrs = append(attrs, "window", fmt.Sprintf("%s from %s", w.Column, w.From))
	}
	r.log.Info("planned batch", attrs...)
	r.reset()
	if err := r.loadState(ctx, plan); err != nil {
		return err
	}
	r.failures = newFailureGauge(r.cfg.MaxFailureRate, plan.Rows)
	return nil
}

// reset clears what the Runner counted of its last plan, for the next.
func (r *Runner) reset() {
	r.resumed, r.mapped, r.finished = false, false, false
	r.attempt = newAttempt()
	for _, c := range []*atomic.Int64{&r.read, &r.chunks, &r.spilled, &r.groups, &r.resumedRows, &r.committedRows,
		&r.committedFailed, &r.resumedParts, &r.resumedBuckets, &r.healed} {
		c.Store(0)
	}
	r.stats.reset()
}

// earlier returns the Earlier of the plan after st's, which has finished.
func (st *runState) earlier() *Earlier {
	var e Earlier
	if p := st.plan.Earlier; p != nil {
		e = *p
		e.DeadLetters, e.Resolved, e.Reread = slices.Clone(p.DeadLetters), slices.Clone(p.Resolved), slices.Clone(p.Reread)
	}
	e.Batches++
	for _, cp := range st.checkpoints {
		e.Rows += cp.Rows
		e.Failed += cp.Failed
		e.DeadLetters = append(e.DeadLetters, cp.DeadLetters...)
	}
	if st.replay != nil {
		e.Resolved = append(e.Resolved, st.replay.Cursors...)
		slices.Sort(e.Resolved)
	}
	return &e
}

// lastOf returns the last cursor of a range that is not empty.
func lastOf(r partition.Range) int64 {
	if last, ok := r.Last(); ok {
		return last
	}
	return math.MinInt64
}
