package pg

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// Open waits only for a server that says it cannot take connections yet.
func TestStarting(t *testing.T) {
	t.Parallel()
	up := &pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}
	if !starting(up) || !starting(fmt.Errorf("connect: %w", up)) {
		t.Errorf("starting(%v) = false", up)
	}
	for _, err := range []error{nil, &pgconn.PgError{Code: "57P01"}, &pgconn.PgError{Code: "28P01"}} {
		if starting(err) {
			t.Errorf("starting(%v) = true", err)
		}
	}
}
