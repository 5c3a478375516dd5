package mapreduce

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mrengine/mr/internal/crashpoint"
	"github.com/mrengine/mr/partition"
	"github.com/mrengine/mr/shuffle"
)

// mapTask is one attempt at one partition: it reads keyset chunks from the
// partition's checkpoint on, maps and combines their rows, and commits
// (spill, dead letters, then checkpoint) at chunk boundaries.
type mapTask struct {
	r      *Runner
	cp     *Checkpoint
	comb   combiner
	writer *shuffle.Writer
	dlq    dlqWriter
	// Since the last commit:
	rows, failed, chunks int64
	// rest is the part of the range not yet read; the next commit saves
	// its Lo as the checkpoint's Next.
	rest partition.Range
	// after, for a compound cursor, is the tie-breaker of the last row
	// read at rest.Lo (see Checkpoint.After).
	after      *int64
	lastCommit time.Time
	maxEntries int
	// unsaved are files spilled since the last commit without a commit
	// of their own, in spills flushes: a range aggregated at the source
	// (Input.GroupBy) commits whole.
	unsaved []shuffle.File
	spills  int
	// adapted is set once the combiner has decided whether to combine
	// or stream (see adapt.go).
	adapted bool
}

// mapPartition runs a map task from checkpoint cp on.
func (r *Runner) mapPartition(ctx context.Context, cp *Checkpoint) (err error) {
	part := cp.Partition
	t := &mapTask{
		r:          r,
		cp:         cp,
		comb:       r.def.newCombiner(int(r.mapKeys.Load())),
		writer:     shuffle.NewWriter(r.schema, r.plan.Buckets, r.plan.Seed, memory.NewGoAllocator()),
		dlq:        dlqWriter{blobs: r.blobs},
		rest:       cp.Range,
		lastCommit: time.Now(),
	}
	t.rest.Lo = cp.Next // the range from the checkpoint on
	t.after = cp.After
	defer t.writer.Release()
	defer t.dlq.abort() // the letters since the last commit do not count
	defer func() {
		if p := recover(); p != nil { // in Combine: a bug, not a bad row
			if err = overflowed(p); err == nil {
				err = recovered(p)
			}
			err = fmt.Errorf("partition %d: %w", part, err)
		}
	}()
	t.maxEntries = r.maxEntries(t.comb)
	if err := t.run(ctx); err != nil {
		return fmt.Errorf("partition %d %s: %w", part, cp.Range, err)
	}
	r.mapKeys.Store(int64(t.comb.peakKeys()))
	return nil
}

// maxEntries turns the memory budget, shared by the running tasks, into a
// number of keys a task's combiner may hold.
func (r *Runner) maxEntries(t combiner) int {
	return max(1, int(r.cfg.Memory/int64(r.cfg.Workers)/int64(t.entryBytes())))
}

func (t *mapTask) run(ctx context.Context) error {
	r := t.r
	in := r.plan.input(r.in)
	batch := NewBatch(in.Names())
	read := func(b *Batch) error { return t.chunk(ctx, b) }
	var err error
	if in.Compound() { // newPlan checked that the source is a TieSource
		src := r.src.(TieSource)
		if s, ok := src.(TieStreamer); ok {
			err = s.StreamAfter(ctx, in, t.rest, t.after, r.cfg.ChunkSize, batch, read)
		} else {
			err = ReadChunksAfter(ctx, src, in, t.rest, t.after, r.cfg.ChunkSize, batch, read)
		}
	} else if s, ok := r.src.(Streamer); ok {
		err = s.Stream(ctx, in, t.rest, r.cfg.ChunkSize, batch, read)
	} else {
		err = ReadChunks(ctx, r.src, in, t.rest, r.cfg.ChunkSize, batch, read)
	}
	if err != nil {
		return err
	}
	return t.commit(ctx, true)
}

// chunk maps the rows of one chunk and commits when the combiner is full or
// the checkpoint interval has passed: commits fall on chunk boundaries.
func (t *mapTask) chunk(ctx context.Context, b *Batch) error {
	r := t.r
	mapped, err := t.mapRows(ctx, b)
	if err != nil {
		return err
	}
	if mapped == 0 && r.failures.stopped() {
		return t.stopEarly(ctx)
	}
	b.truncate(mapped) // the rows after a stop are the next run's
	n := int64(b.Len())
	t.rows += n
	t.chunks++
	if r.in.Compound() {
		t.rest, t.after = AfterRow(t.rest, b.Last(), b.LastTie())
	} else {
		t.rest = t.rest.After(b.Last())
	}
	r.read.Add(n)
	r.chunks.Add(1)
	r.progress.Add(PhaseMap, n)
	if r.plan.MapOnly { // every chunk commits (see maponly.go)
		if err := t.commitChunk(ctx); err != nil {
			return err
		}
		if r.failures.stopped() || r.stopping() {
			return t.stopEarly(ctx)
		}
		return nil
	}
	if !t.adapted {
		t.adapted = t.comb.adapt(t.writer, t.rows, r.plan.Partitions[t.cp.Partition].Rows)
	}
	full := t.comb.len() >= t.maxEntries
	switch {
	case r.failures.stopped() || r.stopping():
		return t.stopEarly(ctx)
	case r.in.GroupBy > 0: // a grouped range commits whole, at its end
		if full {
			return t.spill(ctx)
		}
	case full || time.Since(t.lastCommit) >= r.cfg.CheckpointInterval:
		return t.commit(ctx, false)
	}
	return nil
}

// mapRows maps the rows of b in order until the failure gauge stops the
// map phase, counting them in the gauge, and returns how many it mapped.
func (t *mapTask) mapRows(ctx context.Context, b *Batch) (int, error) {
	g := t.r.failures
	counted := 0 // rows of b counted in g
	for i := range b.Len() {
		if g.stopped() {
			g.add(int64(i-counted), 0)
			return i, nil
		}
		failed := t.failed
		if err := t.mapRow(ctx, b.Row(i)); err != nil {
			return i, err
		}
		if t.failed > failed { // a failure may tip the rate: count it now
			g.add(int64(i+1-counted), 1)
			counted = i + 1
		}
	}
	g.add(int64(b.Len()-counted), 0)
	return b.Len(), nil
}

// stopEarly ends a task that the failure gauge or Stop stopped: it commits what
// the task mapped since its last commit, so that the next run resumes
// after it and the dead letters count, and returns errStopped. A range
// aggregated at the source (Input.GroupBy) commits only whole: its rows
// since the last commit are dropped, and the next run maps them again. A
// map-only task has committed every chunk it mapped, and folds in the
// last.
func (t *mapTask) stopEarly(ctx context.Context) error {
	var err error
	switch {
	case t.r.plan.MapOnly:
		err = t.settle(ctx, false)
	case t.r.in.GroupBy == 0 && t.rows > 0:
		err = t.commit(ctx, false)
	}
	if err != nil {
		return err
	}
	return errStopped
}

// spill writes the combiner out to shuffle files that the next commit
// will name, to stay within the memory budget where a commit may not
// fall yet.
func (t *mapTask) spill(ctx context.Context) error {
	files, err := t.flush(ctx, t.cp.Seq+1+t.spills)
	t.unsaved = append(t.unsaved, files...)
	t.spills++
	return err
}

// flush spills the combiner into files of sequence number seq, one per
// non-empty bucket, each durable before flush returns.
func (t *mapTask) flush(ctx context.Context, seq int) ([]shuffle.File, error) {
	r, cp := t.r, t.cp
	t.comb.spill(t.writer)
	return t.writer.Flush(ctx, r.blobs, func(b int) string {
		return shuffle.MapKey(r.plan.RunID, b, cp.Partition, seq, r.attempt)
	})
}

// mapRow maps one row with retries (see mapRetrying) and sends a row that
// fails every attempt to the DLQ; it skips a row that a replay resolved. It returns an error only when the task
// must stop.
func (t *mapTask) mapRow(ctx context.Context, row Row) error {
	if t.r.resolved(row.Cursor()) {
		return nil // a re-map's row whose pairs are in a replay's files (see Runner.remap)
	}
	attempts, err := t.r.mapRetrying(ctx, t.comb, row)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	t.failed++
	var panicked *PanicError
	errors.As(err, &panicked)
	if t.dlq.key == "" { // the first letter since the last commit
		t.dlq.key = dlqKey(t.r.plan.RunID, t.cp.Partition, t.cp.Seq+1, t.r.attempt)
	}
	var tie *int64
	if v, ok := row.Tie(); ok {
		tie = &v
	}
	return t.dlq.append(ctx, &DeadLetter{
		Job:       t.r.spec.Name,
		Run:       t.r.plan.RunID,
		Partition: t.cp.Partition,
		Cursor:    row.Cursor(),
		Tie:       tie,
		Row:       row.Columns(),
		Error:     err.Error(),
		Stack:     panicked.stack(),
		Attempts:  attempts,
		Time:      time.Now().UTC(),
	})
}

// mapRetrying maps row into t, retrying a failed attempt with exponential
// backoff from Config.RetryDelay, with jitter, unless the error is
// permanent or the context ends; it returns the attempts made and the last
// error.
func (r *Runner) mapRetrying(ctx context.Context, t combiner, row Row) (int, error) {
	attempts := 0
	for delay := r.cfg.RetryDelay; ; delay *= 2 {
		attempts++
		err := t.mapRow(ctx, row)
		if err == nil || ctx.Err() != nil || IsPermanent(err) || attempts > r.cfg.MaxRetries {
			return attempts, err
		}
		r.stats.rowRetries.Add(1)
		select {
		case <-time.After(delay/2 + rand.N(delay)):
		case <-ctx.Done():
			return attempts, context.Cause(ctx)
		}
	}
}

// commit is the map side's commit point. It spills the combiner (one
// file per non-empty bucket, each durable before Flush returns) and the
// dead letters since the last commit, then replaces the checkpoint; only
// that last step makes the files and rows count. A crash before it leaves
// the previous checkpoint in force.
func (t *mapTask) commit(ctx context.Context, done bool) error {
	r, cp := t.r, t.cp
	if r.plan.MapOnly { // its chunks committed as they came
		return t.settle(ctx, done)
	}
	if cp.Done { // the commit that read math.MaxInt64 (below) left nothing to commit
		return nil
	}
	// No Next can say that the row at math.MaxInt64 was read, since no
	// cursor comes after it: the commit that read it is the range's last.
	done = done || cp.Range.ToMax && t.rest.Empty()
	seq := cp.Seq + 1 + t.spills
	files, err := t.flush(ctx, seq)
	if err != nil {
		return err
	}
	files = append(t.unsaved, files...)
	letters, err := t.dlq.commit()
	if err != nil {
		return fmt.Errorf("write dead letters: %w", err)
	}
	crashpoint.Hit(ctx, crashpoint.MapSpilled)
	var spilled int64
	for _, f := range files {
		spilled += f.Size
	}
	next := *cp
	next.Seq = seq
	next.Next = t.rest.Lo
	next.After = t.after
	next.Done = done
	next.Files = append(cp.Files[:len(cp.Files):len(cp.Files)], files...)
	if letters != nil {
		next.DeadLetters = append(cp.DeadLetters[:len(cp.DeadLetters):len(cp.DeadLetters)], *letters)
	}
	next.Rows += t.rows
	next.Failed += t.failed
	next.Chunks += t.chunks
	next.Updated = time.Now().UTC()
	next.Spilled += spilled
	if err := r.store.SaveCheckpoint(ctx, r.plan.RunID, &next); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	*cp = next
	r.committed(cp.Partition, done)
	r.committedRows.Add(t.rows)
	r.committedFailed.Add(t.failed)
	r.spilled.Add(spilled)
	t.rows, t.failed, t.chunks, t.unsaved, t.spills = 0, 0, 0, nil, 0
	t.lastCommit = time.Now()
	t.maxEntries = r.maxEntries(t.comb)
	return nil
}
