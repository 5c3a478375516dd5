package mrcli

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/mapreduce"
)

func TestDLQ_List(t *testing.T) {
	t.Parallel()
	b, run, mask := finishedRun(t)
	for _, args := range [][]string{
		{"dlq", "list", "--workdir", b.workdir},
		{"dlq", "list", run, "--workdir", b.workdir},
	} {
		r := runMR(t, args...)
		if r.code != ExitOK || r.stderr != "" {
			t.Fatalf("%v: exit %d, stderr:\n%s", args, r.code, r.stderr)
		}
		runtest.CheckGolden(t, "dlq/list.golden", mask(r.stdout))
	}
}

func TestDLQ_Show(t *testing.T) {
	t.Parallel()
	b, run, _ := finishedRun(t)

	all := runMR(t, "dlq", "show", run, "--workdir", b.workdir)
	if all.code != ExitOK || all.stderr != "" {
		t.Fatalf("exit %d, stderr:\n%s", all.code, all.stderr)
	}
	var parts []int
	for line := range strings.Lines(all.stdout) {
		var l mapreduce.DeadLetter
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if l.Run != run || l.Job != "daily_rollup" || l.Error == "" || l.Attempts != 1 || l.Row["payload"] == nil {
			t.Errorf("dead letter %+v lacks its run, job, error, attempts or row", l)
		}
		parts = append(parts, l.Partition)
	}
	if len(parts) == 0 {
		t.Fatal("no dead letters")
	}

	var want strings.Builder // the letters of the first partition that has any
	for line := range strings.Lines(all.stdout) {
		if strings.Contains(line, fmt.Sprintf(`"partition":%d,`, parts[0])) {
			want.WriteString(line)
		}
	}
	one := runMR(t, "dlq", "show", run, "--workdir", b.workdir, "--partition", fmt.Sprint(parts[0]))
	if one.code != ExitOK || one.stdout != want.String() {
		t.Errorf("--partition %d: exit %d, stdout:\n%s\nwant:\n%s", parts[0], one.code, one.stdout, want.String())
	}
	empty := 0
	for slices.Contains(parts, empty) {
		empty++
	}
	none := runMR(t, "dlq", "show", run, "--workdir", b.workdir, "--partition", fmt.Sprint(empty))
	if none.code != ExitOK || none.stdout != "" {
		t.Errorf("--partition %d: exit %d, stdout %q; want 0 and nothing", empty, none.code, none.stdout)
	}
	bad := runMR(t, "dlq", "show", run, "--workdir", b.workdir, "--partition", "99")
	if bad.code != ExitUsage || !strings.Contains(bad.stderr, "--partition must be between 0 and 15") {
		t.Errorf("--partition 99: exit %d, stderr %q", bad.code, bad.stderr)
	}
}
