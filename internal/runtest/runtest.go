// Package runtest holds the helpers that the engine's, the jobs' and the
// command line's tests share: a quick Config, what a run's dead-letter
// queue holds, and golden files.
package runtest

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mrengine/mr/mapreduce"
)

// Config returns mapreduce.DefaultConfig with a Workdir of its own that
// the test removes, retries that wait microseconds, and no logs.
func Config(t testing.TB) mapreduce.Config {
	cfg := mapreduce.DefaultConfig()
	cfg.Workdir = t.TempDir()
	cfg.RetryDelay = time.Microsecond
	cfg.Logger = DiscardLogger()
	return cfg
}

// DiscardLogger returns a logger that drops every line.
func DiscardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// DeadLetterCursors returns the sorted cursors of the dead letters that
// count in run (see mapreduce.DeadLetters), failing the test on an error.
func DeadLetterCursors(t testing.TB, cfg mapreduce.Config, run string) []int64 {
	t.Helper()
	letters, err := mapreduce.DeadLetters(context.Background(), cfg, run, mapreduce.DeadLetterFilter{})
	if err != nil {
		t.Fatal(err)
	}
	cursors := make([]int64, len(letters))
	for i, l := range letters {
		cursors[i] = l.Cursor
	}
	slices.Sort(cursors)
	return cursors
}

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// CheckGolden compares got with the file testdata/name of the test's
// package, or rewrites the file when the test runs with -update.
func CheckGolden(t testing.TB, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run go test -update if the change is right):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
