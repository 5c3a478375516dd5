package sources

import (
	"context"
	"fmt"
	"time"

	"github.com/mrengine/mr/internal/pgretry"
)

// UnavailableError reports a PostgreSQL server that stayed unreachable, or
// kept breaking connections, for a whole retry budget. Nothing is lost:
// the run can be resumed from its checkpoints once the server is back.
type UnavailableError struct {
	Addr     string        // host:port of the server, or its unix socket
	Database string        // the database
	Attempts int           // how many times the call was tried
	Waited   time.Duration // from the first fault to giving up
	Err      error         // the last fault
}

// Error names the server and the last fault, and says how to go on.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("PostgreSQL at %s (database %q) still unreachable after %d attempts over %s: %v; "+
		"the run can be resumed: run the same command again once the server is back",
		e.Addr, e.Database, e.Attempts, e.Waited.Round(time.Millisecond), e.Err)
}

// Unwrap returns the last fault.
func (e *UnavailableError) Unwrap() error { return e.Err }

// retry calls op through pgretry.Do with the RetryBudget (see Postgres),
// and turns a spent budget into an *UnavailableError wrapping the last
// fault. When ctx ends, or op fails otherwise, the error is op's own.
//
// op must be safe to repeat: every query of a source is a read.
func (s *Postgres) retry(ctx context.Context, op func(context.Context) error) error {
	budget := s.RetryBudget
	if budget == 0 {
		budget = DefaultRetryBudget
	}
	r, err := pgretry.Do(ctx, budget, op)
	if r.Spent {
		return &UnavailableError{Addr: s.addr, Database: s.database, Attempts: r.Attempts, Waited: r.Waited, Err: err}
	}
	return err
}
