package sinks

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// SetPostgresStaging chooses how s stages rows (unlogged tables instead of
// temporary ones) and whether the upsert reads them in key order, for
// BenchmarkPostgres_Apply.
func SetPostgresStaging(s *Postgres, unlogged, ordered bool) {
	s.staging = stageTemp
	if unlogged {
		s.staging = stageUnlogged
	}
	s.ordered = ordered
}

// SetPostgresCommitFunc replaces how Apply commits, to lose a COMMIT's
// reply.
func SetPostgresCommitFunc(s *Postgres, f func(ctx context.Context, tx pgx.Tx) error) {
	s.commitFunc = f
}
