package mrcli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mrengine/mr/mapreduce"
)

// TestSignal_StopsAndResumes starts a --fresh run in a child process and
// sends it SIGINT or SIGTERM in the middle of its map phase: it exits 1
// with its summary line and the command that resumes it, which is the
// command given without --fresh; running that ends exact.
func TestSignal_StopsAndResumes(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			b := setupCrash(t, 10_000)
			var stdout, stderr bytes.Buffer
			cmd := mrCommand(t, nil, append(slices.Clone(b.args), "--fresh")...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitMapping(t, b.workdir)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != ExitFailed {
				t.Fatalf("after %v: %v, want exit %d; stdout:\n%s\nstderr:\n%s", sig, err, ExitFailed, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), " items, ") {
				t.Errorf("after %v no summary line; stdout:\n%s", sig, stdout.String())
			}
			resume := "mr " + strings.Join(b.args, " ")
			if !strings.Contains(stderr.String(), " interrupted; resume it with:\n  "+resume+"\n") {
				t.Errorf("after %v stderr does not name the command %q:\n%s", sig, resume, stderr.String())
			}
			t.Logf("stopped by %v:\n%s%s", sig, stdout.String(), stderr.String())
			// The stop came at a commit point: every row read is committed.
			var read, total int64
			if _, err := fmt.Sscanf(stdout.String()[strings.Index(stdout.String(), ": ")+2:], "%d/%d items", &read, &total); err != nil {
				t.Fatalf("summary line: %v\n%s", err, stdout.String())
			}
			cfg := mapreduce.DefaultConfig()
			cfg.Workdir = b.workdir
			runs, err := mapreduce.Runs(context.Background(), cfg)
			if err != nil || len(runs) != 1 {
				t.Fatalf("runs: %v, %d", err, len(runs))
			}
			if committed, _ := runs[0].Rows(); committed != read {
				t.Errorf("after %v the run had read %d rows and committed %d", sig, read, committed)
			}
			r := b.finish(t)
			if !strings.Contains(r.stdout, "(resumed") {
				t.Errorf("the run after %v did not resume:\n%s", sig, r.stdout)
			}
		})
	}
}

// waitMapping waits until the run in workdir has committed part of its
// map phase, and fails if it gets past it first.
func waitMapping(t *testing.T, workdir string) {
	t.Helper()
	cfg := mapreduce.DefaultConfig()
	cfg.Workdir = workdir
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		runs, _ := mapreduce.Runs(context.Background(), cfg)
		if len(runs) == 1 {
			switch read, _ := runs[0].Rows(); {
			case runs[0].State() == mapreduce.StateMapping && read > 0:
				return
			case runs[0].State() == mapreduce.StateReducing, runs[0].State() == mapreduce.StateDone:
				t.Fatalf("the run got past its map phase before the test could stop it")
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the run did not start mapping within 30s")
}

func TestResumeCommand(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"mr", "run", "daily_rollup", "--fresh", "--source", "a.db"}, "mr run daily_rollup --source a.db"},
		{[]string{"./mr", "run", "--fresh=true", "j", "-fresh"}, "./mr run j"},
		{[]string{"mr", "rollup", "--into", "t", "SELECT k, count(*) FROM t WHERE s = 'x' GROUP BY 1"},
			`mr rollup --into t 'SELECT k, count(*) FROM t WHERE s = '\''x'\'' GROUP BY 1'`},
		{[]string{"mr", "run", "j", "--", "--fresh"}, "mr run j -- --fresh"},
		{[]string{"mr", "run", "j", "--source", ""}, "mr run j --source ''"},
		// Passwords are masked, whatever quoting they would need.
		{[]string{"mr", "run", "j", "--source", "postgres://u:it's@h/db", "--sink=host=h password=p'w dbname=d"},
			"mr run j --source postgres://u:xxxxx@h/db '--sink=host=h password=xxxxx dbname=d'"},
	} {
		var got string
		app := NewApp(io.Discard, io.Discard)
		app.Metadata = map[string]any{argsKey: tt.args}
		app.Commands = []*cli.Command{{Name: tt.args[1], SkipFlagParsing: true, Action: func(c *cli.Context) error {
			got = resumeCommand(c)
			return nil
		}}}
		if err := app.Run(tt.args); err != nil || got != tt.want {
			t.Errorf("resumeCommand(%q) = %q, %v; want %q", tt.args, got, err, tt.want)
		}
	}
}
