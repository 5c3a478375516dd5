package mrcli

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/mrengine/mr/internal/runtest"
)

// finished is one 20,000-row demo run, shared by the tests that only read
// it; TestMain removes its directory.
var finished struct {
	once   sync.Once
	dir    string
	bundle *demoBundle
	run    string
	demo   result // what mr demo printed
	err    error
}

// finishedRun returns the shared finished demo run with its run id and a
// function that masks what varies between runs in its outputs (the
// temporary directory, the run id's hash, times) with text of the same
// length, so that columns stay aligned in golden files.
func finishedRun(t *testing.T) (b *demoBundle, run string, mask func(string) string) {
	t.Helper()
	finished.once.Do(func() {
		if finished.dir, finished.err = os.MkdirTemp("", "mr-test-"); finished.err != nil {
			return
		}
		b := &demoBundle{db: filepath.Join(finished.dir, "demo.db"), workdir: filepath.Join(finished.dir, ".mr")}
		var out, errOut bytes.Buffer
		args := []string{"mr", "demo", "--rows", "20000", "--db", b.db, "--workdir", b.workdir, "--workers", "2"}
		if code := Run(context.Background(), args, &out, &errOut); code != ExitOK {
			finished.err = fmt.Errorf("mr demo: exit %d, stderr:\n%s", code, errOut.String())
			return
		}
		b.sql, finished.err = sql.Open("sqlite", b.db) // opened here: the tests share it
		finished.bundle = b
		finished.demo = result{stdout: out.String(), stderr: errOut.String()}
		_, rest, _ := strings.Cut(out.String(), "\nrun ")
		finished.run = strings.Fields(rest)[0]
	})
	if finished.err != nil {
		t.Fatal(finished.err)
	}
	b, run = finished.bundle, finished.run
	times := regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
	mask = func(s string) string {
		s = strings.ReplaceAll(s, filepath.Dir(b.db), "TMP")
		s = strings.ReplaceAll(s, run, "daily_rollup-xxxxxxxx")
		return times.ReplaceAllString(s, "2006-01-02T15:04:05Z")
	}
	return b, run, mask
}

func TestStatus(t *testing.T) {
	t.Parallel()
	b, run, mask := finishedRun(t)
	empty := t.TempDir()
	for _, tt := range []struct {
		golden string
		args   []string
	}{
		{"status/list.golden", []string{"status", "--workdir", b.workdir}},
		{"status/run.golden", []string{"status", run, "--workdir", b.workdir}},
		{"status/run.golden", []string{"status", "--workdir", b.workdir, run}},
		{"status/empty.golden", []string{"status", "--workdir", filepath.Join(empty, "none")}},
	} {
		r := runMR(t, tt.args...)
		if r.code != ExitOK || r.stderr != "" {
			t.Fatalf("%v: exit %d, stderr:\n%s", tt.args, r.code, r.stderr)
		}
		runtest.CheckGolden(t, tt.golden, mask(strings.ReplaceAll(r.stdout, empty, "TMP")))
	}
}
