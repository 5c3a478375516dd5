package sinks

import (
	"context"
	"fmt"
	"time"

	"github.com/mrengine/mr/internal/pgretry"
)

// retry calls op through pgretry.Do with RetryBudget: until it returns
// nil, an error that is not transient (see pgretry.Transient), or one
// wrapped by pgretry.Stop; or until RetryBudget, counted from the first
// fault, is spent, when the last error is returned wrapped in
// ErrUnavailable. ctx ends the waiting too.
func (s *Postgres) retry(ctx context.Context, op func(ctx context.Context) error) error {
	r, err := pgretry.Do(ctx, s.RetryBudget, op)
	switch {
	case r.Spent:
		return fmt.Errorf("%w: %d attempts in %s failed; check that the server is up and reachable, then run again: %w",
			ErrUnavailable, r.Attempts, r.Waited.Round(time.Millisecond), err)
	case r.Interrupted:
		return fmt.Errorf("%w (while retrying after: %w)", context.Cause(ctx), err)
	}
	return err
}
