package mapreduce

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/mrengine/mr/internal/crashpoint"
)

// A map-only job (see Job) has no shuffle and no reduce: each chunk of a
// partition is one sink transaction, Sink.Apply of the chunk's rows under
// the plan's Commit and a chunk id of its own as the bucket, whose commit
// record makes the chunk exactly-once. The partition's checkpoint and that
// record are two commit points, which the checkpoint ties together by
// naming the chunk it is about to apply before it applies it. For each
// chunk a map task
//
//  1. maps its rows into a Go map keyed by K, in cursor order, the pair
//     emitted last of a key winning (an INSERT … ON CONFLICT cannot touch
//     one key twice in one statement), encodes the output rows (Finalize
//     runs here, so that its error stops the task with nothing pending)
//     and writes the rows that failed to a new dead-letter file, durable
//     before it goes on;
//  2. saves the checkpoint with the chunk as Pending: its id, the cursor
//     after it, its dead-letter file and its counts, with the chunk
//     before it folded in as committed (the task applied it, or it would
//     not be here) — the intent;
//  3. applies the chunk's rows to the sink under its id;
//  4. goes on with the next chunk, whose intent folds this one in; at the
//     end of the range, and when the run stops, a last save folds it in.
//
// A chunk with no rows to upsert (all its rows failed, or emitted
// nothing) needs no sink transaction: its step 2 folds it in at once.
//
// A crash before step 2 leaves the chunk unread as far as the run state
// knows, and its dead-letter file garbage. A crash between steps 2 and 4
// leaves a pending chunk whose fate only the sink knows, so the next map
// phase reads Sink.Committed once and resolves each pending chunk (see
// Runner.resolveChunks): one the sink holds is folded in (its dead
// letters count; the partition resumes after its cursor), one it does not
// is dropped (its dead-letter file is garbage) and its rows are read
// again from the checkpoint's Next, as a chunk with a new id. So every
// row is upserted by one committed chunk, and every failed row is in the
// dead letters of exactly one.
//
// Chunk ids never repeat within a plan: the chunk with sequence number
// seq of partition p has id seq × len(Plan.Partitions) + p, and the
// intent saves seq as the checkpoint's Seq before the chunk is applied,
// so that the next chunk, or the chunk read again after a crash, takes
// seq + 1. A dropped chunk's Apply still under way when its process died
// (a COMMIT that had reached the server) can then only upsert rows that
// the chunk read again upserts too, never make the sink skip another
// chunk as applied already. A partition mapped again from the start of
// its range (damaged state healed, see Runner.remap) begins past the
// highest id the sink holds of it. Ids must fit the sinks' commit records
// (see maxChunkID).

// PendingChunk is the chunk of a map-only partition that its checkpoint
// names before the chunk is applied to the sink: whether it counts is the
// sink's to say (see maponly.go).
type PendingChunk struct {
	// ID is the chunk's bucket number in the sink's commit records.
	ID int `json:"id"`
	// Next is the partition's Next once the chunk counts; Done says that
	// the chunk read to the end of the range (the row at math.MaxInt64,
	// which no Next can lie past).
	Next int64 `json:"next"`
	// After is the partition's After once the chunk counts (see
	// Checkpoint.After).
	After *int64 `json:"after,omitempty"`
	Done  bool   `json:"done,omitempty"`
	// Rows is the rows the chunk read, Failed those of them sent to the
	// dead-letter queue, in the file DeadLetters (nil if none failed).
	Rows        int64           `json:"rows"`
	Failed      int64           `json:"failed"`
	DeadLetters *DeadLetterFile `json:"dead_letters,omitempty"`
}

// maxChunkID is the largest chunk id a sink can record: PostgreSQL's
// mr_bucket_commits keeps buckets in an int column, 32 bits.
const maxChunkID = math.MaxInt32

// chunkID returns the id of chunk seq of partition part (see maponly.go),
// or an error if it does not fit the sink's commit records.
func (p *Plan) chunkID(part, seq int) (int, error) {
	n := len(p.Partitions)
	if seq < 0 || seq > (maxChunkID-part)/n {
		return 0, fmt.Errorf("partition %d has used chunk ids for %d chunks, all that a run of %d partitions has room for "+
			"in the sink's 32-bit commit records: start over with --fresh and a larger --chunk-size, or with fewer --partitions",
			part, seq-1, n)
	}
	return seq*n + part, nil
}

// folded returns cp with its pending chunk, which the sink committed,
// counted in.
func (cp *Checkpoint) folded() Checkpoint {
	next := *cp
	if c := cp.Pending; c != nil {
		next.fold(c)
	}
	return next
}

// fold counts chunk c in as committed.
func (cp *Checkpoint) fold(c *PendingChunk) {
	cp.Next, cp.After, cp.Done = c.Next, c.After, cp.Done || c.Done
	cp.Rows += c.Rows
	cp.Failed += c.Failed
	cp.Chunks++
	if c.DeadLetters != nil {
		cp.DeadLetters = append(cp.DeadLetters[:len(cp.DeadLetters):len(cp.DeadLetters)], *c.DeadLetters)
	}
	cp.Pending = nil
}

// checkPending reports a pending chunk that does not fit partition part of
// plan p and the checkpoint cp that names it (see Checkpoint.check): an id
// of another chunk would be resolved by another chunk's commit record; a
// cursor off the range loses or repeats rows.
func (cp *Checkpoint) checkPending(p *Plan, part int) error {
	c := cp.Pending
	if c == nil {
		return nil
	}
	id, err := p.chunkID(part, cp.Seq)
	hi := p.Partitions[part].Hi
	switch {
	case !p.MapOnly:
		return fmt.Errorf("names pending chunk %d; the plan is not map-only", c.ID)
	case cp.Done:
		return fmt.Errorf("is done, with chunk %d pending", c.ID)
	case err != nil || c.ID != id:
		return fmt.Errorf("names pending chunk %d; chunk %d of partition %d has id %d", c.ID, cp.Seq, part, id)
	case c.Next < cp.Next || c.Next > hi:
		return fmt.Errorf("names pending chunk %d, which resumes at %d, outside [%d, %d]", c.ID, c.Next, cp.Next, hi)
	case c.Rows < 1 || c.Failed < 0 || c.Failed >= c.Rows:
		return fmt.Errorf("names pending chunk %d of %d rows, %d failed: a pending chunk has rows to upsert", c.ID, c.Rows, c.Failed)
	}
	if f := c.DeadLetters; f != nil {
		own := ownKey(f.Key, func(_ int, attempt string) string { return dlqKey(p.RunID, part, cp.Seq, attempt) })
		if !own || slices.ContainsFunc(cp.DeadLetters, func(g DeadLetterFile) bool { return g.Key == f.Key }) {
			return fmt.Errorf("names dead-letter file %s, which is not one of pending chunk %d", f.Key, c.ID)
		}
	}
	return nil
}

// commitChunk commits the chunk a map-only task has just mapped: steps 1
// to 3 of maponly.go.
func (t *mapTask) commitChunk(ctx context.Context) error {
	r, cp := t.r, t.cp
	seq := cp.Seq + 1
	id, err := r.plan.chunkID(cp.Partition, seq)
	if err != nil {
		return err
	}
	rows, err := t.chunkRows()
	if err != nil {
		return fmt.Errorf("chunk %d: %w", id, err)
	}
	letters, err := t.dlq.commit()
	if err != nil {
		return fmt.Errorf("write dead letters: %w", err)
	}
	c := &PendingChunk{ID: id, Next: t.rest.Lo, After: t.after, Done: cp.Range.ToMax && t.rest.Empty(), Rows: t.rows, Failed: t.failed, DeadLetters: letters}
	next := cp.folded()
	next.Seq = seq
	next.Updated = time.Now().UTC()
	if rows.n() == 0 {
		next.fold(c) // nothing to upsert: the checkpoint alone commits the chunk
	} else {
		next.Pending = c
	}
	if err := r.store.SaveCheckpoint(ctx, r.plan.RunID, &next); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	*cp = next
	t.rows, t.failed, t.chunks = 0, 0, 0
	if cp.Pending != nil {
		crashpoint.Hit(ctx, crashpoint.ChunkIntent)
		if err := r.applyChunk(ctx, id, rows); err != nil {
			return err
		}
		crashpoint.Hit(ctx, crashpoint.ChunkApplied)
		r.groups.Add(int64(rows.n()))
	}
	r.committed(cp.Partition, cp.Done)
	r.committedRows.Add(c.Rows)
	r.committedFailed.Add(c.Failed)
	return nil
}

// settle saves the checkpoint with the chunk that the task applied last
// folded in, and with done (the task read to the end of its range): step 4
// of maponly.go for the task's last chunk.
func (t *mapTask) settle(ctx context.Context, done bool) error {
	r, cp := t.r, t.cp
	if cp.Done || cp.Pending == nil && !done {
		return nil
	}
	next := cp.folded()
	next.Done = next.Done || done
	next.Updated = time.Now().UTC()
	if err := r.store.SaveCheckpoint(ctx, r.plan.RunID, &next); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	*cp = next
	r.committed(cp.Partition, cp.Done)
	return nil
}

// chunkRows empties the combiner into the chunk's output rows.
func (t *mapTask) chunkRows() (*chunkRows, error) {
	out := t.r.spec.Output
	width := len(out.Keys) + len(out.Values)
	c := &chunkRows{width: width, values: make([]any, 0, t.comb.len()*width)}
	rows := t.comb.rows(true)
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			return nil, err
		}
		if len(v) != width {
			return nil, fmt.Errorf("a row has %d values for the %d columns of table %s", len(v), width, out.Name)
		}
		c.values = append(c.values, v...)
	}
	return c, rows.Err()
}

// chunkRows are the output rows of a map-only chunk, encoded before the
// chunk's intent is saved: Finalize runs in the task's goroutine, whose
// recover turns a panic into the task's error, and an error of it stops
// the task with nothing pending. Rewound, they are given to the sink again
// after an Apply that it did not apply (see ErrNotApplied).
type chunkRows struct {
	values []any // width values per row
	width  int
	next   int // rows yielded
}

func (c *chunkRows) n() int { return len(c.values) / c.width }

func (c *chunkRows) Next() bool {
	if c.next == c.n() {
		return false
	}
	c.next++
	return true
}

func (c *chunkRows) Values() ([]any, error) {
	i := (c.next - 1) * c.width
	return c.values[i : i+c.width : i+c.width], nil
}

func (c *chunkRows) Err() error { return nil }

func (c *chunkRows) rewind() { c.next = 0 }

// applyChunk applies a map-only chunk's rows to the output table under
// the chunk's id, and again while the sink reports that an attempt left
// it unapplied (see ErrNotApplied), as applyBucket does for a bucket.
func (r *Runner) applyChunk(ctx context.Context, id int, rows *chunkRows) error {
	for attempt := 1; ; attempt++ {
		err := r.sink.Apply(ctx, r.spec.Output, r.plan.Commit, id, rows)
		if err == nil || !errors.Is(err, ErrNotApplied) || attempt == maxBucketAttempts || ctx.Err() != nil {
			return err
		}
		r.log.Warn("applying the chunk again", "chunk", id, "attempt", attempt+1, "err", err)
		rows.rewind()
	}
}

// resolveChunks resolves the chunks that a map-only plan's checkpoints
// name as pending, left by a crash between their intent and their fold,
// by the sink's commit records, read once (see maponly.go), and moves the
// Seq of each partition not done past the chunk ids that the sink holds
// of it. The checkpoints it changes it saves, so that what it decided
// holds whatever comes next.
func (r *Runner) resolveChunks(ctx context.Context) error {
	if !r.plan.MapOnly || !slices.ContainsFunc(r.checkpoints, func(cp *Checkpoint) bool { return !cp.Done }) {
		return nil
	}
	ids, err := r.sink.Committed(ctx, r.plan.Commit)
	if err != nil {
		return fmt.Errorf("read commits of %s from %s: %w", r.plan.RunID, r.sink, err)
	}
	n := len(r.plan.Partitions)
	applied := make(map[int]bool, len(ids))
	last := make([]int, n) // the highest chunk seq the sink holds of each partition
	for _, id := range ids {
		if id >= 0 {
			applied[id] = true
			last[id%n] = max(last[id%n], id/n)
		}
	}
	for _, cp := range r.checkpoints {
		if cp.Done {
			continue
		}
		next := *cp
		var garbage string
		if c := cp.Pending; c != nil {
			if applied[c.ID] {
				next.fold(c)
				r.resumedRows.Add(c.Rows)
				r.committedRows.Add(c.Rows)
				r.committedFailed.Add(c.Failed)
			} else {
				next.Pending = nil
				if c.DeadLetters != nil {
					garbage = c.DeadLetters.Key
				}
			}
		}
		next.Seq = max(next.Seq, last[cp.Partition])
		if cp.Pending == nil && next.Seq == cp.Seq {
			continue
		}
		next.Updated = time.Now().UTC()
		if err := r.store.SaveCheckpoint(ctx, r.plan.RunID, &next); err != nil {
			return fmt.Errorf("partition %d: save its checkpoint with its pending chunk resolved: %w", cp.Partition, err)
		}
		*cp = next
		r.committed(cp.Partition, cp.Done)
		if garbage != "" {
			r.blobs.Delete(ctx, garbage) // if this fails, the next Open removes it
		}
	}
	return nil
}
