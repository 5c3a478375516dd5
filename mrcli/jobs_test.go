package mrcli

import (
	"testing"

	"github.com/mrengine/mr/internal/runtest"
)

func TestJobs_List(t *testing.T) {
	t.Parallel()
	r := runMR(t, "jobs")
	if r.code != ExitOK || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing", r.code, r.stderr)
	}
	runtest.CheckGolden(t, "jobs.golden", r.stdout)
}
