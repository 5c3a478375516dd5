package coordinator

import (
	"errors"
	"strings"
	"testing"

	"github.com/mrengine/mr/internal/pgtest"
)

// openCoordinator returns a Coordinator on a fresh, migrated schema.
func openCoordinator(t *testing.T) *Coordinator {
	t.Helper()
	dsn := pgtest.DSN(t)
	if _, err := Migrate(t.Context(), pgtest.PoolFor(t, dsn)); err != nil {
		t.Fatal(err)
	}
	c, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCoordinator_RunStatus checks that mr status of a run never
// submitted says so (ErrNotSubmitted, naming the run), rather than
// showing an empty run.
func TestCoordinator_RunStatus(t *testing.T) {
	t.Parallel()
	c := openCoordinator(t)
	st, err := c.RunStatus(t.Context(), "daily_rollup-nope")
	if !errors.Is(err, ErrNotSubmitted) || st != nil {
		t.Fatalf("RunStatus of an unknown run = %+v, %v; want nil and an error wrapping ErrNotSubmitted", st, err)
	}
	if !strings.Contains(err.Error(), "daily_rollup-nope") {
		t.Errorf("error %q does not name the run", err)
	}
}
