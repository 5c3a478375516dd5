package sinks

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// SetPostgresCommitFunc replaces how Apply commits, to lose a COMMIT's
// reply.
func SetPostgresCommitFunc(s *Postgres, f func(ctx context.Context, tx pgx.Tx) error) {
	s.commitFunc = f
}
