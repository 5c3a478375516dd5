package mapreduce

import (
	"sync"
	"sync/atomic"
)

// Stats is a snapshot of a run's live counters, for watching a run while
// it runs (the metrics endpoint of mr run --metrics-addr); Summary is the
// account of a run once it has returned. Where the two share a field
// name, the field counts the same thing.
//
// Each field is read atomically, but not all of them at one instant: a
// task may commit between two reads, so that for a moment Processed is
// ahead of Read by a chunk, say. Every field is exact once Run has
// returned.
type Stats struct {
	Job   string
	RunID string
	// Phase is where the run is: PhasePlanned until Run starts mapping,
	// PhaseMap, PhaseReduce, then PhaseDone once Run has returned, whether
	// it finished the run or stopped at an error (which says which).
	Phase string

	// Planned is the plan's row count, an estimate for large tables.
	Planned int64
	// Read is the rows this attempt read, committed or not; Resumed the
	// rows it skipped because earlier attempts had committed them.
	Read, Resumed int64
	// Processed is the rows committed, by earlier attempts too.
	Processed int64
	// Failed is the rows committed as failed (sent to the dead-letter
	// queue), by earlier attempts too; FailedResumed is the part of them
	// that earlier attempts committed.
	Failed, FailedResumed int64
	// Chunks is the chunks this attempt read.
	Chunks int64
	// BytesSpilled is the size of the committed shuffle files, earlier
	// attempts' included; BytesSpilledResumed is the part of it that
	// earlier attempts wrote.
	BytesSpilled, BytesSpilledResumed int64
	// Groups is the output rows this attempt wrote.
	Groups int64

	// Partitions is the plan's partition count. PartitionsDone counts the
	// partitions whose map task has finished, in earlier attempts too;
	// PartitionsResumed those that had a checkpoint when the run began,
	// finished or not.
	Partitions, PartitionsDone, PartitionsResumed int
	// Buckets is the plan's bucket count. BucketsDone counts the buckets
	// that the reduce phase has applied, those it found applied by earlier
	// attempts included (BucketsResumed); for a replay of dead letters,
	// the buckets it re-applies.
	Buckets, BucketsDone, BucketsResumed int

	// RowRetries counts the Map calls retried after a failed attempt
	// (each row up to Config.MaxRetries times), replays' included.
	RowRetries int64
	// BucketRetries counts the reduce tasks this attempt started for a
	// bucket it had started before under the same commit: to apply it
	// again after a failure it recovered from, or once damaged state was
	// healed. A replay's re-application of a bucket, under a commit of
	// its own, is no retry.
	BucketRetries int64
}

// Phases that Stats reports beside PhaseMap and PhaseReduce.
const (
	PhasePlanned = "planned"
	PhaseDone    = "done"
)

// Phases lists the phases Stats reports, in the order a run goes through
// them.
var Phases = []string{PhasePlanned, PhaseMap, PhaseReduce, PhaseDone}

// Stats returns the run's counters as they stand. It is safe to call from
// any goroutine, while Run runs and after it returned.
func (r *Runner) Stats() Stats {
	s := &r.stats
	phase := PhasePlanned
	if p := s.phase.Load(); p != nil {
		phase = *p
	}
	return Stats{
		Job:                 r.spec.Name,
		RunID:               r.plan.RunID,
		Phase:               phase,
		Planned:             r.plan.Rows,
		Read:                r.read.Load(),
		Resumed:             r.resumedRows.Load(),
		Processed:           r.committedRows.Load(),
		Failed:              r.committedFailed.Load(),
		FailedResumed:       s.failedResumed.Load(),
		Chunks:              r.chunks.Load(),
		BytesSpilled:        r.spilled.Load(),
		BytesSpilledResumed: s.spilledResumed.Load(),
		Groups:              r.groups.Load(),
		Partitions:          len(r.plan.Partitions),
		PartitionsDone:      count(r.donePartitions()),
		PartitionsResumed:   int(r.resumedParts.Load()),
		Buckets:             r.plan.Buckets,
		BucketsDone:         int(s.bucketsDone.Load()),
		BucketsResumed:      int(r.resumedBuckets.Load()),
		RowRetries:          s.rowRetries.Load(),
		BucketRetries:       s.bucketRetries.Load(),
	}
}

// runStats holds what Stats reports beyond the Runner's own counters. It
// learns the phases from the Runner's calls to its Progress, which
// trackProgress routes through it, so that the phases need no bookkeeping
// of their own.
type runStats struct {
	phase                         atomic.Pointer[string]
	failedResumed, spilledResumed atomic.Int64
	bucketsDone                   atomic.Int64
	rowRetries, bucketRetries     atomic.Int64
	// partsDone has a flag per partition, set when its map task finishes:
	// a flag and not a count, so that a partition mapped again counts
	// once. It is made on first use (see donePartitions), because the
	// plan that sizes it is loaded after the Runner is made.
	partsDone atomic.Pointer[[]atomic.Bool]
	// reduced holds the bucketCommit of every reduce task started.
	reduced sync.Map
}

// bucketCommit names the application of a bucket under a commit.
type bucketCommit struct {
	commit string
	bucket int
}

// donePartitions returns the flags of partsDone, one per partition of r's
// plan, making them on first use.
func (r *Runner) donePartitions() []atomic.Bool {
	p := &r.stats.partsDone
	if f := p.Load(); f != nil {
		return *f
	}
	f := make([]atomic.Bool, len(r.plan.Partitions))
	p.CompareAndSwap(nil, &f)
	return *p.Load()
}

func count(flags []atomic.Bool) int {
	n := 0
	for i := range flags {
		if flags[i].Load() {
			n++
		}
	}
	return n
}

func (s *runStats) setPhase(phase string) { s.phase.Store(&phase) }

// committed records the commit of a checkpoint of partition part; done
// says the partition's map task finished with it.
func (r *Runner) committed(part int, done bool) {
	if done {
		r.donePartitions()[part].Store(true)
	}
}

// reducing records the start of a reduce task for bucket b under commit,
// counting a retry if one started for it before.
func (r *Runner) reducing(commit string, b int) {
	if _, again := r.stats.reduced.LoadOrStore(bucketCommit{commit, b}, true); again {
		r.stats.bucketRetries.Add(1)
	}
}

// trackProgress returns a Progress that records each phase in r.stats
// before passing the call on to next.
func (r *Runner) trackProgress(next Progress) Progress {
	return statsProgress{r: r, next: next}
}

type statsProgress struct {
	r    *Runner
	next Progress
}

// Start records the phase. The map phase starts once the Runner has
// counted the work of earlier attempts and before any task runs, so the
// committed counters hold exactly that work then, and the checkpoints are
// the Runner's alone to read.
func (p statsProgress) Start(phase string, total, done int64) {
	r, s := p.r, &p.r.stats
	switch phase {
	case PhaseMap:
		s.failedResumed.Store(r.committedFailed.Load())
		s.spilledResumed.Store(r.spilled.Load())
		flags := r.donePartitions()
		for part, cp := range r.checkpoints {
			flags[part].Store(cp != nil && cp.Done)
		}
	case PhaseReduce:
		s.bucketsDone.Store(done)
	}
	s.setPhase(phase)
	p.next.Start(phase, total, done)
}

func (p statsProgress) Add(phase string, n int64) {
	if phase == PhaseReduce {
		p.r.stats.bucketsDone.Add(n)
	}
	p.next.Add(phase, n)
}

func (p statsProgress) Finish(phase string) { p.next.Finish(phase) }

// reset forgets what the stats hold of the Runner's last plan, for its
// next (see Runner.Next); the retry counts go on, as counters do.
func (s *runStats) reset() {
	s.failedResumed.Store(0)
	s.spilledResumed.Store(0)
	s.bucketsDone.Store(0)
	s.partsDone.Store(nil)
	s.reduced.Clear()
}
