package mapreduce_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/internal/runtest"
)

// TestMain runs the tests, stops the PostgreSQL that pgtest started for
// them, and only then looks for leaked goroutines, since the cluster's
// pool is the tests' to close.
func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// discardLogger drops the engine's log lines in examples, whose output is
// checked.
var discardLogger = runtest.DiscardLogger()
