package mrcli

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/internal/s3test"
)

func TestMain(m *testing.M) {
	// The crash tests run the test binary itself as mr, in a child process
	// they can kill -9: see mrCommand.
	if args := os.Getenv(envChildArgs); args != "" {
		os.Args = append([]string{"mr"}, strings.Split(args, "\n")...)
		Main()
	}
	flag.Parse()
	code := s3test.Stop(pgtest.Run(m))
	if finished.dir != "" {
		os.RemoveAll(finished.dir)
	}
	os.Exit(code)
}

// result is what one mr command line did.
type result struct {
	stdout, stderr string
	code           int
}

// runMR runs the mr command line with args, as Main would.
func runMR(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(context.Background(), append([]string{"mr"}, args...), &out, &errOut)
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

func TestApp_Help(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		golden string
		args   []string
	}{
		{"help/mr.golden", []string{"--help"}},
		{"help/mr.golden", nil},
		{"help/demo.golden", []string{"demo", "--help"}},
		{"help/rollup.golden", []string{"rollup", "--help"}},
		{"help/run.golden", []string{"run", "--help"}},
		{"help/run.golden", []string{"run", "daily_rollup", "--help"}},
		{"help/jobs.golden", []string{"jobs", "--help"}},
		{"help/status.golden", []string{"status", "--help"}},
		{"help/runs.golden", []string{"runs", "--help"}},
		{"help/gc.golden", []string{"gc", "--help"}},
		{"help/dlq.golden", []string{"dlq", "--help"}},
		{"help/dlq.golden", []string{"dlq"}},
		{"help/dlq-list.golden", []string{"dlq", "list", "--help"}},
		{"help/dlq-show.golden", []string{"dlq", "show", "--help"}},
		{"help/dlq-replay.golden", []string{"dlq", "replay", "--help"}},
		{"help/worker.golden", []string{"worker", "--help"}},
		{"help/migrate.golden", []string{"migrate", "--help"}},
		{"help/ui.golden", []string{"ui", "--help"}},
	} {
		t.Run(strings.Join(append([]string{"mr"}, tt.args...), "_"), func(t *testing.T) {
			t.Parallel()
			r := runMR(t, tt.args...)
			if r.code != ExitOK || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing", r.code, r.stderr)
			}
			runtest.CheckGolden(t, tt.golden, r.stdout)
		})
	}
}

// TestRun_UsageErrors checks the message and exit code 2 of each kind of
// mistake on the command line. Every message ends with a "Try: mr …" line.
func TestRun_UsageErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"UnknownCommand", []string{"nope"}},
		{"UnknownDLQCommand", []string{"dlq", "replay-all"}},
		{"CommandTypo", []string{"statsu"}},
		{"DLQCommandTypo", []string{"dlq", "lsit"}},
		{"GCBadAge", []string{"gc", "--older-than", "a week"}},
		{"GCNegativeAge", []string{"gc", "--older-than", "-1d"}},
		{"UnknownJob", []string{"run", "nope", "--source", "events.db"}},
		{"MissingJob", []string{"run", "--source", "events.db"}},
		{"ExtraArgument", []string{"run", "daily_rollup", "more", "--source", "events.db"}},
		{"BadMemory", []string{"run", "daily_rollup", "--source", "events.db", "--memory", "12XB"}},
		{"ZeroMemory", []string{"run", "daily_rollup", "--source", "events.db", "--memory", "0"}},
		{"SmallMemory", []string{"run", "daily_rollup", "--source", "events.db", "--memory", "1KiB"}},
		{"BadInt", []string{"run", "daily_rollup", "--source", "events.db", "--partitions", "many"}},
		{"BadIntBeforeJob", []string{"run", "--partitions", "many", "daily_rollup"}},
		{"NegativePartitions", []string{"run", "daily_rollup", "--source", "events.db", "--partitions", "-3"}},
		{"ZeroPartitions", []string{"run", "daily_rollup", "--source", "events.db", "--partitions", "0"}},
		{"ZeroBuckets", []string{"run", "daily_rollup", "--source", "events.db", "--buckets", "0"}},
		{"ZeroChunkSize", []string{"run", "daily_rollup", "--source", "events.db", "--chunk-size", "0"}},
		{"ZeroCheckpointInterval", []string{"run", "daily_rollup", "--source", "events.db", "--checkpoint-interval", "0"}},
		{"RollupZeroPartitions", []string{"rollup", "--source", "events.db", "--into", "t", "--partitions", "0", "SELECT k, count(*) FROM t GROUP BY 1"}},
		{"RollupZeroBuckets", []string{"rollup", "--source", "events.db", "--into", "t", "--buckets", "0", "SELECT k, count(*) FROM t GROUP BY 1"}},
		{"RollupZeroChunkSize", []string{"rollup", "--source", "events.db", "--into", "t", "--chunk-size", "0", "SELECT k, count(*) FROM t GROUP BY 1"}},
		{"RollupZeroCheckpointInterval", []string{"rollup", "--source", "events.db", "--into", "t", "--checkpoint-interval", "0", "SELECT k, count(*) FROM t GROUP BY 1"}},
		{"ReplayZeroBuckets", []string{"dlq", "replay", "daily_rollup", "--source", "events.db", "--buckets", "0"}},
		{"DemoZeroWorkers", []string{"demo", "--workers", "0"}},
		{"NegativeRetries", []string{"run", "daily_rollup", "--source", "events.db", "--max-retries", "-1"}},
		{"FailureRateAboveOne", []string{"run", "daily_rollup", "--source", "events.db", "--max-failure-rate", "1.5"}},
		{"UnknownFlag", []string{"run", "daily_rollup", "--source", "events.db", "--bogus"}},
		{"UnknownFlagBeforeJob", []string{"run", "--bogus", "daily_rollup"}},
		{"FlagWithoutValue", []string{"run", "daily_rollup", "--source"}},
		{"DemoRows", []string{"demo", "--rows", "0"}},
		{"MetricsAddrNoColon", []string{"run", "daily_rollup", "--source", "events.db", "--metrics-addr", "9464"}},
		{"RollupMetricsAddrBadPort", []string{"rollup", "--source", "events.db", "--into", "t", "--metrics-addr", "localhost:http", "SELECT k, count(*) FROM t GROUP BY 1"}},
		{"StatusUnknownRun", []string{"status", "nope", "--workdir", "testdata/no-workdir"}},
		{"StatusWatchWithoutRun", []string{"status", "--watch", "--workdir", "testdata/no-workdir"}},
		{"StatusWatchZeroInterval", []string{"status", "r", "--watch", "--interval", "0s", "--workdir", "testdata/no-workdir"}},
		{"DLQShowWithoutRun", []string{"dlq", "show", "--workdir", "testdata/no-workdir"}},
		{"PipelineIncremental", []string{"run", "payload_channels", "--source", "events.db", "--incremental"}},
		{"PipelineFollow", []string{"run", "payload_channels", "--source", "events.db", "--follow"}},
		{"PipelineExplain", []string{"run", "payload_channels", "--source", "events.db", "--explain"}},
		{"PipelineExtraArgument", []string{"run", "payload_channels", "more", "--source", "events.db"}},
		{"PipelineZeroPartitions", []string{"run", "payload_channels", "--source", "events.db", "--partitions", "0"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runMR(t, tt.args...)
			if r.code != ExitUsage {
				t.Errorf("exit %d, want %d", r.code, ExitUsage)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, "Try: mr ") {
				t.Errorf("last line %q does not start with %q", last, "Try: mr ")
			}
			runtest.CheckGolden(t, "usage/"+tt.name+".golden", r.stderr)
		})
	}
}

func TestRun_Plugin(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "missing.so")
	r := runMR(t, "run", "daily_rollup", "--source", "events.db", "--plugin", path)
	if r.code != ExitUsage || !strings.Contains(r.stderr, path) {
		t.Fatalf("exit %d, stderr %q; want %d and a message naming %s", r.code, r.stderr, ExitUsage, path)
	}
}
