package mrcli

import "testing"

func TestJobs_List(t *testing.T) {
	t.Parallel()
	r := runMR(t, "jobs")
	if r.code != ExitOK || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing", r.code, r.stderr)
	}
	checkGolden(t, "jobs.golden", r.stdout)
}
