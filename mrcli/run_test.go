package mrcli

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/mrengine/mr/internal/eventgen"
)

// seedEvents writes an events table of cfg's rows into a new SQLite file
// and returns its path.
func seedEvents(t *testing.T, cfg eventgen.Config) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.db")
	if err := eventgen.SeedSQLite(context.Background(), path, cfg); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRun_ExitCodes runs one command line of each exit code class.
func TestRun_ExitCodes(t *testing.T) {
	t.Parallel()
	poisoned := seedEvents(t, eventgen.Config{Rows: 3000, Seed: 9, PoisonRate: 0.1})

	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stderr string // a part of it
	}{
		{"Done", []string{"run", "daily_rollup", "--source", poisoned, "--max-failure-rate", "0.5"}, ExitOK, ""},
		{"FailedMissingSource", []string{"run", "daily_rollup", "--source", filepath.Join(t.TempDir(), "missing.db")}, ExitFailed, "no such file"},
		{"FailedMissingTable", []string{"run", "daily_rollup", "--source", poisoned, "--table", "no_events"}, ExitFailed, `table "no_events" not found`},
		{"Usage", []string{"run", "daily_rollup", "--source", poisoned, "--partitions", "0"}, ExitUsage, "--partitions must be between 1 and"},
		{"AboveFailureRate", []string{"run", "daily_rollup", "--source", poisoned}, ExitAlert, "mr: ALERT: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append(tt.args, "--workdir", t.TempDir(), "--sink", filepath.Join(t.TempDir(), "out.db"))
			r := runMR(t, args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d and %q", r.code, r.stderr, tt.code, tt.stderr)
			}
			// 10% of the rows fail: the alert stops the map phase once a
			// sample of 1,000 rows is in.
			switch tt.code {
			case ExitOK:
				if !strings.Contains(r.stdout, "3000/3000 items") {
					t.Errorf("stdout lacks the summary line:\n%s", r.stdout)
				}
			case ExitAlert:
				if !strings.Contains(r.stdout, "/3000 items") || !strings.Contains(r.stdout, "map phase stopped early") {
					t.Errorf("stdout lacks the summary line of a map phase stopped early:\n%s", r.stdout)
				}
			}
		})
	}
}

// TestRun_MaxRetries checks that --max-retries 0 means no retries: a
// failed row is tried once.
func TestRun_MaxRetries(t *testing.T) {
	t.Parallel()
	source := seedEvents(t, eventgen.Config{Rows: 500, Seed: 10, PoisonRate: 0.05})
	workdir := t.TempDir()
	r := runMR(t, "run", "daily_rollup", "--source", source, "--workdir", workdir, "--max-retries", "0", "--partitions", "1")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	dlq := runMR(t, "dlq", "show", runID(t, r.stdout), "--workdir", workdir)
	if dlq.code != ExitOK || !strings.Contains(dlq.stdout, `"attempts":1`) {
		t.Fatalf("exit %d, dead letters:\n%s", dlq.code, dlq.stdout)
	}
}

// runID returns the run id in a run's output.
func runID(t *testing.T, stdout string) string {
	t.Helper()
	for line := range strings.Lines(stdout) {
		if rest, ok := strings.CutPrefix(line, "run "); ok {
			return strings.Fields(rest)[0]
		}
	}
	t.Fatalf("no run line in:\n%s", stdout)
	return ""
}

func TestRun_RedactsErrors(t *testing.T) {
	t.Parallel()
	for _, url := range []string{
		"postgres://alice:s3cret@127.0.0.1:1/db",
		"mysql://alice:s3cret@127.0.0.1:1/db",
		"postgres://alice@127.0.0.1:1/db?password=s3cret",
	} {
		r := runMR(t, "run", "daily_rollup", "--source", url, "--workdir", t.TempDir())
		if r.code == ExitOK || strings.Contains(r.stdout+r.stderr, "s3cret") {
			t.Errorf("--source %s: exit %d, output shows the password:\n%s%s", url, r.code, r.stdout, r.stderr)
		}
	}
}

// cancelWriter collects what it is written and cancels a context when a
// write contains a given text: a log line marks the moment to interrupt.
type cancelWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	on     string
	cancel context.CancelFunc
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.Contains(p, []byte(w.on)) {
		w.cancel()
	}
	return w.buf.Write(p)
}

// TestRun_Interrupted stops runs the way Ctrl-C does, at the start of each
// phase, and checks that the run says so, exits 1, and that running the
// same command again finishes it with the right output.
func TestRun_Interrupted(t *testing.T) {
	t.Parallel()
	for _, phase := range []string{"map", "reduce"} {
		t.Run(phase, func(t *testing.T) {
			t.Parallel()
			b := setupDemo(t)
			if err := eventgen.SeedSQLite(context.Background(), b.db, demoEvents(6_000)); err != nil {
				t.Fatal(err)
			}
			args := []string{"mr", "run", "daily_rollup", "--source", b.db, "--workdir", b.workdir, "--workers", "2"}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out bytes.Buffer
			errOut := &cancelWriter{on: "phase=" + phase, cancel: cancel}
			if code := Run(ctx, args, &out, errOut); code != ExitFailed {
				t.Fatalf("interrupted run: exit %d, want %d; stderr:\n%s", code, ExitFailed, errOut.buf.String())
			}
			if !strings.Contains(errOut.buf.String(), " interrupted; resume it with:\n  "+strings.Join(args, " ")+"\n") {
				t.Errorf("interrupted run: stderr lacks the hint:\n%s", errOut.buf.String())
			}

			r := runMR(t, args[1:]...)
			if r.code != ExitOK || !strings.Contains(r.stdout, "(resumed") || !strings.Contains(r.stdout, "6000/6000 items") {
				t.Fatalf("resumed run: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			if n := b.count(t, eventgen.SQLiteTruth+` EXCEPT `+output); n != 0 {
				t.Errorf("%d groups missing or wrong after the resume", n)
			}
			if n := b.count(t, output+` EXCEPT `+eventgen.SQLiteTruth); n != 0 {
				t.Errorf("%d groups too many after the resume", n)
			}
		})
	}
}

// TestRun_Explain plans a run without running it; the run that follows
// uses that plan.
func TestRun_Explain(t *testing.T) {
	t.Parallel()
	b := setupDemo(t)
	if err := eventgen.SeedSQLite(context.Background(), b.db, demoEvents(3000)); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "daily_rollup", "--source", b.db, "--workdir", b.workdir, "--partitions", "20", "--buckets", "2"}
	r := runMR(t, append(args, "--explain")...)
	if r.code != ExitOK {
		t.Fatalf("--explain: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4+1+20 || !strings.Contains(r.stdout, "est. rows") || strings.Contains(r.stdout, "items") {
		t.Fatalf("--explain printed %d lines, want the plan and a line per partition and no summary:\n%s", len(lines), r.stdout)
	}
	if n := b.count(t, `SELECT name FROM sqlite_master WHERE name = 'daily_rollup'`); n != 0 {
		t.Error("--explain created the output table: it must not run")
	}
	if _, err := os.Stat(b.workdir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("--explain made %s (%v): it must write no run state", b.workdir, err)
	}
	r = runMR(t, args...)
	if r.code != ExitOK || !strings.Contains(r.stdout, " (new)\n") || !strings.Contains(r.stdout, "4 more; see mr run --explain") {
		t.Errorf("the run after --explain: exit %d, stdout:\n%s", r.code, r.stdout)
	}
	// Of a run already planned, --explain shows the plan it resumes.
	again := runMR(t, append(args, "--explain")...)
	if want := "run     " + runID(t, r.stdout) + " (resumed, planned "; !strings.HasPrefix(again.stdout, want) {
		t.Errorf("--explain of a planned run: stdout does not start with %q:\n%s", want, again.stdout)
	}
}

// TestRun_Complete runs a finished run again: it says so, with the time it
// finished and how to recompute it, and exits 0 without a summary line.
func TestRun_Complete(t *testing.T) {
	t.Parallel()
	source := seedEvents(t, eventgen.Config{Rows: 500, Seed: 11})
	args := []string{"run", "daily_rollup", "--source", source, "--workdir", t.TempDir(), "--partitions", "2", "--buckets", "2"}
	first := runMR(t, args...)
	if first.code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", first.code, first.stderr)
	}
	again := runMR(t, args...)
	complete := regexp.MustCompile(`^run ` + runID(t, first.stdout) +
		` is complete \(finished at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\); nothing to do; --incremental reads the rows added since; --fresh recomputes it\n$`)
	if again.code != ExitOK || !complete.MatchString(again.stdout) {
		t.Errorf("exit %d, stdout %q; want 0 and %s", again.code, again.stdout, complete)
	}
}
