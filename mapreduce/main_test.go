package mapreduce_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/mrengine/mr/internal/runtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// discardLogger drops the engine's log lines in examples, whose output is
// checked.
var discardLogger = runtest.DiscardLogger()
