package mapreduce

import (
	"errors"
	"fmt"
)

// ErrStopped is wrapped by the error of a run that Stop stopped: it
// committed what it had done, and running it again resumes.
var ErrStopped = errors.New("the run was stopped")

// Stop asks the run to stop at its next commit point, rather than at once
// as a cancelled context does, so that no work done is lost: each map task
// commits what it mapped at its next chunk boundary and ends, no further
// bucket starts (buckets already being applied commit), and Run returns
// its Summary with an error wrapping ErrStopped. It is safe to call from
// any goroutine, any number of times.
func (r *Runner) Stop() { r.halt.Store(true) }

// stopping reports whether Stop was called.
func (r *Runner) stopping() bool { return r.halt.Load() }

// stoppedErr is the error of a run that Stop stopped.
func (r *Runner) stoppedErr() error {
	return fmt.Errorf("%w at a commit point: run %s again to resume it", ErrStopped, r.plan.RunID)
}
