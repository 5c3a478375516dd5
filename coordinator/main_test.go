package coordinator

import (
	"testing"

	"github.com/mrengine/mr/internal/pgtest"
)

// TestMain stops the PostgreSQL that pgtest started for the tests.
func TestMain(m *testing.M) { pgtest.Main(m) }
