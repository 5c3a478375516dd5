package pg

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestStarting(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}, true},
		{fmt.Errorf("connect: %w", &pgconn.PgError{Code: "57P03"}), true},
		{&pgconn.PgError{Code: "57P01"}, false},
		{&pgconn.PgError{Code: "28P01"}, false},
	} {
		if got := starting(tt.err); got != tt.want {
			t.Errorf("starting(%v) = %t, want %t", tt.err, got, tt.want)
		}
	}
}
