package mrcli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mrengine/mr/mapreduce"
)

func TestInspect(t *testing.T) {
	t.Parallel()
	b, run, _ := finishedRun(t)
	cfg := mapreduce.DefaultConfig()
	cfg.Workdir = b.workdir
	ri, err := mapreduce.Inspect(context.Background(), cfg, run)
	if err != nil {
		t.Fatal(err)
	}
	f := ri.Checkpoints[0].Files[0]

	t.Run("File", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(b.workdir, filepath.FromSlash(f.Key))
		r := runMR(t, "inspect", path, "--rows", "3")
		if r.code != ExitOK || r.stderr != "" {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		for _, want := range []string{
			"file         " + path + "\n",
			fmt.Sprintf("size         %d bytes", f.Size),
			fmt.Sprintf("checksum     %016x (XXH64)\n", f.Checksum),
			"compression  zstd\n",
			fmt.Sprintf("records      1 batches, %d rows\n", f.Rows),
			"schema\n  account_id: int64\n  day: date32\n  category: utf8\n  events: int64\n  total_cents: int64\n",
			"first 3 rows\n  account_id  day         category",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("mr inspect FILE lacks %q:\n%s", want, r.stdout)
			}
		}
		if n := strings.Count(strings.SplitN(r.stdout, "first 3 rows\n", 2)[1], "\n"); n != 4 {
			t.Errorf("printed %d lines of rows, want a header and 3:\n%s", n, r.stdout)
		}
	})

	t.Run("Run", func(t *testing.T) {
		t.Parallel()
		r := runMR(t, "inspect", run, "--workdir", b.workdir)
		if r.code != ExitOK || r.stderr != "" {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		files := 0
		for _, cp := range ri.Checkpoints {
			files += len(cp.Files) + len(cp.DeadLetters)
		}
		for _, want := range []string{"run     " + run + " (resumed", "state   done\n", "commit  " + ri.Plan.Commit, f.Key} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("mr inspect RUN lacks %q:\n%s", want, r.stdout)
			}
		}
		if got := strings.Count(r.stdout, run+"/shuffle/") + strings.Count(r.stdout, run+"/dlq/"); got != files {
			t.Errorf("mr inspect RUN lists %d files, the checkpoints name %d:\n%s", got, files, r.stdout)
		}
	})

	t.Run("Neither", func(t *testing.T) {
		t.Parallel()
		r := runMR(t, "inspect", "nope", "--workdir", b.workdir)
		if r.code != ExitUsage || !strings.Contains(r.stderr, `nope is neither a file nor a run in `+b.workdir) {
			t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})
}
