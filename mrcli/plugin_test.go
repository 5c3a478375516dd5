package mrcli

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/internal/testserver"
	"github.com/mrengine/mr/jobs"
)

// TestPlugin builds the plugins in testdata/plugins with go build
// -buildmode=plugin, once for all its subtests, and loads them in mr child
// processes (see mrCommand): a plugin's jobs stay registered for the life
// of a process, and would change what the other tests' mr jobs lists.
func TestPlugin(t *testing.T) {
	t.Parallel()
	dir := buildTestPlugins(t)
	if testing.CoverMode() != "" {
		// go test -coverpkg instruments packages that the plugins share,
		// and which ones is not known here: the plugins are not.
		r := runChild(t, "jobs", "--plugin", filepath.Join(dir, "categories.so"))
		if r.code != ExitOK && strings.Contains(r.stderr, jobs.ErrPluginMismatch.Error()) {
			t.Skipf("the plugins do not load into a test binary built with -coverpkg: run go test without it\n%s", r.stderr)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// golden replaces the paths that vary from run to run in out.
	golden := func(out string) string {
		return strings.NewReplacer(dir, "$PLUGINS", exe, "$MR").Replace(out)
	}

	t.Run("Jobs", func(t *testing.T) {
		t.Parallel()
		r := runChild(t, "jobs", "--plugin", filepath.Join(dir, "categories.so"))
		if r.code != ExitOK || r.stderr != "" {
			t.Fatalf("exit %d, stderr %q; want 0 and nothing", r.code, r.stderr)
		}
		runtest.CheckGolden(t, "plugin/jobs.golden", golden(r.stdout))
	})

	t.Run("Run", func(t *testing.T) {
		t.Parallel()
		db := filepath.Join(t.TempDir(), "events.db")
		if err := eventgen.SeedSQLite(context.Background(), db, eventgen.Config{Rows: 3000, Seed: 7, GapEvery: 40, PoisonRate: 0.01}); err != nil {
			t.Fatal(err)
		}
		r := runChild(t, "run", "plugin_category_totals", "--plugin", filepath.Join(dir, "categories.so"),
			"--source", "sqlite:"+db, "--workdir", t.TempDir(), "--partitions", "3", "--buckets", "2", "--chunk-size", "250")
		if r.code != ExitOK {
			t.Fatalf("exit %d, want 0; stderr:\n%s", r.code, r.stderr)
		}
		if !strings.Contains(r.stdout, "3000/3000") {
			t.Errorf("stdout lacks a summary of 3000 of 3000 rows:\n%s", r.stdout)
		}
		conn, err := sql.Open("sqlite", db)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		const (
			truth  = `SELECT category, count(*), sum(amount_cents) FROM events GROUP BY category`
			output = `SELECT category, events, total_cents FROM plugin_category_totals`
		)
		for _, q := range []string{truth + ` EXCEPT ` + output, output + ` EXCEPT ` + truth} {
			var n int
			if err := conn.QueryRow(`SELECT count(*) FROM (` + q + `)`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("%d rows in %s", n, q)
			}
		}
		var groups int
		if err := conn.QueryRow(`SELECT count(*) FROM plugin_category_totals`).Scan(&groups); err != nil || groups == 0 {
			t.Errorf("plugin_category_totals has %d rows (%v), want one per category", groups, err)
		}
	})

	// The plugin's job is named daily_rollup, like the built-in one.
	t.Run("Duplicate", func(t *testing.T) {
		t.Parallel()
		r := runChild(t, "run", "daily_rollup", "--plugin", filepath.Join(dir, "duplicate.so"), "--source", "events.db")
		if r.code != ExitUsage || strings.Contains(r.stderr, "panic") {
			t.Fatalf("exit %d, want %d and no panic; stderr:\n%s", r.code, ExitUsage, r.stderr)
		}
		runtest.CheckGolden(t, "plugin/duplicate.golden", golden(r.stderr))
	})

	// The plugin was built with other flags for package jobs.
	t.Run("Mismatch", func(t *testing.T) {
		t.Parallel()
		r := runChild(t, "jobs", "--plugin", filepath.Join(dir, "mismatch.so"))
		if r.code != ExitUsage {
			t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, ExitUsage, r.stderr)
		}
		runtest.CheckGolden(t, "plugin/mismatch.golden", golden(r.stderr))
	})
}

// runChild runs mr with args in a child process.
func runChild(t *testing.T, args ...string) result {
	t.Helper()
	cmd := mrCommand(t, nil, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return result{stdout: out.String(), stderr: errOut.String(), code: cmd.ProcessState.ExitCode()}
}

// testPlugins are the plugins that TestPlugin loads, from
// testdata/plugins: categories.so and duplicate.so as their packages are,
// and mismatch.so, categories built with other compiler flags for package
// jobs, which Go refuses to load.
var testPlugins = []struct {
	file, pkg string
	flags     []string
}{
	{"categories.so", "./categories", nil},
	{"duplicate.so", "./duplicate", nil},
	{"mismatch.so", "./categories", []string{"-gcflags=github.com/mrengine/mr/jobs=-l"}},
}

// buildTestPlugins builds testPlugins into a directory that lasts as long
// as t, and returns it. It skips t where Go has no plugins (without cgo,
// or on an OS but Linux, FreeBSD and macOS), and where go or a C compiler
// is missing, but under CI=true that fails t; a failed build always does.
//
// A plugin loads only into a binary built with the same flags, so the
// plugins get this test binary's: -race under go test -race, -trimpath,
// -tags, -gcflags. The first build of a plugin compiles every package it
// depends on again, for dynamic linking (-dynlink), and the build cache
// keeps them: on 2 cores it took 45 s with -race and an empty cache for
// that mode, and 2 s per plugin after.
func buildTestPlugins(t *testing.T) string {
	t.Helper()
	info, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("the test binary has no build information")
	}
	var flags []string
	cgo := false
	for _, s := range info.Settings {
		switch {
		case s.Key == "CGO_ENABLED":
			cgo = s.Value == "1"
		case slices.Contains([]string{"-race", "-msan", "-asan", "-trimpath", "-tags", "-gcflags", "-asmflags", "-pgo"}, s.Key):
			flags = append(flags, s.Key+"="+s.Value)
		}
	}
	switch runtime.GOOS {
	case "linux", "darwin", "freebsd":
	default:
		t.Skipf("Go plugins work on Linux, FreeBSD and macOS only, not on %s", runtime.GOOS)
	}
	if !cgo {
		t.Skip("Go plugins need cgo, and this test binary was built with CGO_ENABLED=0")
	}
	goTool, err := exec.LookPath("go")
	if err == nil {
		var cc []byte
		if cc, err = exec.Command(goTool, "env", "CC").Output(); err == nil {
			_, err = exec.LookPath(append(strings.Fields(string(cc)), "cc")[0])
		}
	}
	if err != nil {
		msg := fmt.Sprintf("cannot build Go plugins: %v\n\tto fix: put go and a C compiler (go env CC) on PATH", err)
		if testserver.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg + "\n\t(skipped; with CI=true this fails)")
	}

	dir := t.TempDir()
	build := func(p int) error {
		args := append([]string{"build", "-buildmode=plugin", "-o", filepath.Join(dir, testPlugins[p].file)}, flags...)
		args = append(append(args, testPlugins[p].flags...), testPlugins[p].pkg)
		cmd := exec.Command(goTool, args...)
		cmd.Dir = filepath.Join("testdata", "plugins")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	// The first build fills the build cache, which the others then share
	// instead of each compiling every package again.
	start := time.Now()
	errs := make([]error, len(testPlugins))
	errs[0] = build(0)
	var wg sync.WaitGroup
	for p := 1; p < len(testPlugins) && errs[0] == nil; p++ {
		wg.Go(func() { errs[p] = build(p) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("built %d test plugins with %q in %v", len(testPlugins), flags, time.Since(start).Round(time.Millisecond))
	return dir
}
