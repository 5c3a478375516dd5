package mapreduce

import (
	"fmt"
	"time"

	"github.com/dustin/go-humanize"
)

// Summary is the outcome of a run, printed as one line at its end.
type Summary struct {
	Job   string
	RunID string
	// Total is the row count: the plan's estimate until every partition is
	// mapped, then exact. Processed is the rows read so far, committed by
	// earlier attempts included.
	Total, Processed int64
	Failed           int64
	// Read is the rows this attempt read; Resumed the rows it skipped
	// because earlier attempts had committed them.
	Read, Resumed     int64
	Chunks            int64
	Elapsed           time.Duration
	BytesSpilled      int64
	PartitionsResumed int
	Partitions        int
	// Buckets is the plan's bucket count, 0 for a map-only job.
	Buckets        int
	BucketsResumed int
	// Groups is the number of output rows this attempt wrote: for a
	// map-only job, the rows it upserted. -1 where no one process knows
	// it (a run on workers, each of which wrote some), and the summary
	// line leaves it out.
	Groups int64
	// PartitionsHealed counts the partitions this attempt mapped again
	// because their run state was damaged.
	PartitionsHealed int
	// MapStopped says that the failure rate stopped the map phase early
	// (see Runner.Run): Processed is what it committed, the run is not
	// finished.
	MapStopped bool
	// Batch is the plan's incremental batch (0 for a full run), and Mark
	// its high-water mark, nil for a run that took none (see Plan.Mark).
	Batch int
	Mark  *int64
}

// FailureRate is the share of processed rows that failed.
func (s Summary) FailureRate() float64 {
	if s.Processed == 0 {
		return 0
	}
	return float64(s.Failed) / float64(s.Processed)
}

// RowsPerSecond is this attempt's read rate.
func (s Summary) RowsPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Read) / s.Elapsed.Seconds()
}

// String is the summary line. It gives the read rate only if this attempt
// read rows (a resumed run that only reduces read none: "0 items/s" would
// say it was slow), the buckets only if the run has some (a map-only job
// has none; its groups written are the rows it upserted), names healed
// partitions only if there were any, and an early stop only if there was
// one.
func (s Summary) String() string {
	rate := ""
	if s.Read > 0 {
		rate = fmt.Sprintf(", %.0f items/s", s.RowsPerSecond())
	}
	id := s.RunID
	switch {
	case s.Batch > 0:
		id += fmt.Sprintf(" batch %d through %d", s.Batch, *s.Mark)
	case s.Mark != nil:
		id += fmt.Sprintf(" through %d", *s.Mark)
	}
	buckets := ""
	if s.Buckets > 0 {
		buckets = fmt.Sprintf(", %d/%d buckets resumed", s.BucketsResumed, s.Buckets)
	}
	line := fmt.Sprintf("%s: %d/%d items, %d failed (%.2f%%), %s%s, %s spilled, %d/%d partitions resumed (%d rows)%s",
		id, s.Processed, s.Total, s.Failed, 100*s.FailureRate(), s.Elapsed.Round(time.Millisecond),
		rate, humanize.IBytes(uint64(s.BytesSpilled)), s.PartitionsResumed, s.Partitions, s.Resumed, buckets)
	if s.Groups >= 0 {
		line += fmt.Sprintf(", %d groups written", s.Groups)
	}
	if s.PartitionsHealed > 0 {
		line += fmt.Sprintf(", %d partitions healed (their run state was damaged)", s.PartitionsHealed)
	}
	if s.MapStopped {
		line += ", map phase stopped early (failure rate above --max-failure-rate)"
	}
	return line
}
