package mapreduce

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// Failing fast: a Map with a bug fails every row, and a run that finds
// that out only at its end has read the whole table and written a dead
// letter for each row. So once an attempt has mapped a sample of rows, a
// failure rate above Config.MaxFailureRate stops its map phase: every map
// task finishes the row it is mapping and commits (shuffle files, dead
// letters, checkpoint) what it mapped, no task starts, the reduce phase
// does not run, and Run returns an error wrapping ErrFailureRate. The run
// stays resumable like any other that stopped.
//
// The sample is this attempt's own rows, not those earlier attempts
// committed, because what a run is asked after a stop is whether the job
// is fixed now. Its failed rows would keep a fixed job's rerun above the
// threshold for a long while; counted afresh, a rerun of a fixed job runs
// to the end (the rows the bug failed wait in the dead-letter queue for mr
// dlq replay, and count in the final rate), and a rerun of a job that
// still fails stops again after a sample of its own.
//
// The gauge counts a chunk's rows when it is mapped, and at once at each
// failed row, so that a stop comes at the first failed row that tips the
// rate, not a chunk later: with one worker, a job that fails every row
// stops after exactly the sample. With several, each other task adds the
// row it was mapping.
const (
	// failFastMinRows is the fewest rows the rate is judged on: at 1,000
	// rows a true rate of 5% is measured within about ±1.4 points (95%
	// confidence), so a cluster of bad rows in a healthy table does not
	// stop it.
	failFastMinRows = 1_000
	// failFastShare is the share of the planned rows the sample must also
	// cover: rows arrive in cursor order, so the first thousand of each
	// partition are one stretch of it (one day's payload format, say),
	// and a rate that holds over 1% of the table, spread over the running
	// partitions, holds for the table.
	failFastShare = 0.01
	// failFastMaxRows caps what the share asks for: 1% of a billion rows
	// is ten million dead letters before a stop, and 100,000 rows measure
	// the rate within ±0.14 points.
	failFastMaxRows = 100_000
)

// failFastSample is the rows an attempt maps before its failure rate may
// stop it, for a plan of planned rows (an estimate).
func failFastSample(planned int64) int64 {
	share := int64(math.Ceil(failFastShare * float64(planned)))
	return max(failFastMinRows, min(share, failFastMaxRows))
}

// errStopped ends a map task that the failure gauge or Runner.Stop
// stopped, after it committed; the map phase turns it into the error of
// the one that did (failureGauge.err, or ErrStopped).
var errStopped = errors.New("the map task stopped at a commit point")

// failureGauge counts the rows an attempt's map tasks map and fail, and
// trips once the sample is reached with a rate above the limit. It is safe
// for concurrent use.
type failureGauge struct {
	limit  float64 // Config.MaxFailureRate: 1 never trips
	sample int64   // see failFastSample
	stop   atomic.Bool

	mu                   sync.Mutex
	rows, failed         int64
	tripRows, tripFailed int64 // the counts that tripped it
}

func newFailureGauge(limit float64, planned int64) *failureGauge {
	return &failureGauge{limit: limit, sample: failFastSample(planned)}
}

// add counts rows mapped, of which failed failed.
func (g *failureGauge) add(rows, failed int64) {
	if rows == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rows += rows
	g.failed += failed
	if !g.stop.Load() && g.rows >= g.sample && float64(g.failed) > g.limit*float64(g.rows) {
		g.tripRows, g.tripFailed = g.rows, g.failed
		g.stop.Store(true)
	}
}

// stopped reports whether the gauge tripped: map tasks stop at their next
// row.
func (g *failureGauge) stopped() bool { return g.stop.Load() }

// err is the error of a map phase the gauge stopped: what happened and
// what to do.
func (g *failureGauge) err(run string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return fmt.Errorf("%w: %d of the first %d rows this run mapped failed (%.2f%%), more than --max-failure-rate %g, "+
		"so the map phase stopped early and committed what it had mapped; see the errors with mr dlq list %s. "+
		"Fix the job and run the same command again to resume (the rows that failed wait in the dead-letter queue for mr dlq replay once the run is done), "+
		"or raise --max-failure-rate",
		ErrFailureRate, g.tripFailed, g.tripRows, 100*float64(g.tripFailed)/float64(g.tripRows), g.limit, run)
}
