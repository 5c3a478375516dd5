package mrcli

import (
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mrengine/mr/internal/crashpoint"
	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/internal/pgtest"
)

// envChildArgs carries the arguments of an mr child process, one per line:
// TestMain runs Main with them instead of the tests.
const envChildArgs = "MR_TEST_CHILD_ARGS"

// mrCommand returns a command that runs mr with args in a child process
// (the test binary, see TestMain), so that a test can kill it for real.
func mrCommand(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), append(env, envChildArgs+"="+strings.Join(args, "\n"))...)
	return cmd
}

// killed reports whether err is the exit of a process killed by SIGKILL.
func killed(err error) bool {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	status, ok := exit.Sys().(syscall.WaitStatus)
	return ok && status.Signaled() && status.Signal() == syscall.SIGKILL
}

// crashBundle is a seeded SQLite file and the mr run command over it.
type crashBundle struct {
	*demoBundle
	args []string
}

func setupCrash(t *testing.T, rows int64) *crashBundle {
	t.Helper()
	b := setupDemo(t)
	// One poison payload in 500, so that every partition has dead letters
	// whose exactly-once the crashes put to the test.
	gen := eventgen.Config{Rows: rows, Seed: 1, PoisonRate: 0.002, GapEvery: 100}
	if err := eventgen.SeedSQLite(context.Background(), b.db, gen); err != nil {
		t.Fatal(err)
	}
	return &crashBundle{demoBundle: b, args: []string{"run", "daily_rollup", "--source", b.db, "--workdir", b.workdir,
		"--workers", "2", "--partitions", "6", "--buckets", "4", "--chunk-size", "200", "--checkpoint-interval", "1ns"}}
}

// finish runs the command to its end in this process and checks the
// output table and the dead letters against the ground truth.
func (b *crashBundle) finish(t *testing.T) result {
	t.Helper()
	r := runMR(t, b.args...)
	if r.code != ExitOK {
		t.Fatalf("resumed run: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if n := b.count(t, eventgen.SQLiteTruth+` EXCEPT `+output); n != 0 {
		t.Errorf("%d groups of the ground truth are missing or differ after the crash", n)
	}
	if n := b.count(t, output+` EXCEPT `+eventgen.SQLiteTruth); n != 0 {
		t.Errorf("%d groups too many after the crash", n)
	}
	poison := b.ids(t, eventgen.SQLitePoisonIDs)
	run := runID(t, r.stdout)
	if got := b.deadLetterIDs(t, run); len(poison) == 0 || !slices.Equal(got, poison) {
		t.Errorf("after the crash the DLQ holds %d letters, want the %d poison rows exactly once", len(got), len(poison))
	}
	// Nothing a killed attempt was writing is left behind.
	filepath.WalkDir(filepath.Join(b.workdir, run), func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".tmp") {
			t.Errorf("after the crash a temp file is left: %s", path)
		}
		return nil
	})
	return r
}

// TestCrash_Points kills mr with SIGKILL at the narrow windows between a
// durable write and the commit that follows it, then resumes.
func TestCrash_Points(t *testing.T) {
	t.Parallel()
	for _, point := range []string{
		crashpoint.MapSpilled + ":5",    // shuffle files written, checkpoint not
		crashpoint.BucketApplied + ":2", // sink committed, done marker not
	} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			b := setupCrash(t, 10_000)
			out, err := mrCommand(t, []string{crashpoint.Env + "=" + point}, b.args...).CombinedOutput()
			if !killed(err) {
				t.Fatalf("mr was not killed at %s: %v\n%s", point, err, out)
			}
			r := b.finish(t)
			if !strings.Contains(r.stdout, "(resumed") {
				t.Errorf("the run after the crash did not resume:\n%s", r.stdout)
			}
		})
	}
}

// TestCrash_KillAtRandom kills mr with SIGKILL at random moments, several
// times in a row, then lets it finish. It logs its seed; MR_CRASH_SEED=N
// replays the same kill times.
func TestCrash_KillAtRandom(t *testing.T) {
	t.Parallel()
	b := setupCrash(t, 30_000)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MR_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("MR_CRASH_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (MR_CRASH_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	kills := 0
	for range 5 {
		cmd := mrCommand(t, nil, b.args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		if err := cmd.Wait(); killed(err) {
			kills++
		}
	}
	if kills == 0 {
		t.Fatal("no run was killed: they all finished before the kill")
	}
	t.Logf("killed %d runs", kills)
	b.finish(t)
}

// TestCrash_PostgresBucketApplied kills mr right after PostgreSQL committed
// a bucket and before mr noted it: the next run must learn from the sink's
// commit table that the bucket is applied, and not apply it twice.
func TestCrash_PostgresBucketApplied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	db := pgtest.PoolFor(t, dsn)
	if err := eventgen.SeedPostgres(ctx, db, demoEvents(20_000), true); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "daily_rollup", "--source", dsn, "--workdir", t.TempDir(), "--workers", "2", "--buckets", "6"}
	out, err := mrCommand(t, []string{crashpoint.Env + "=" + crashpoint.BucketApplied + ":3"}, args...).CombinedOutput()
	if !killed(err) {
		t.Fatalf("mr was not killed after the third bucket: %v\n%s", err, out)
	}
	r := runMR(t, args...)
	// The kill comes after the third bucket's commit; with two workers a
	// fourth may have committed in the same instant.
	var resumed int
	if m := regexp.MustCompile(`(\d+)/6 buckets resumed`).FindStringSubmatch(r.stdout); m != nil {
		resumed, _ = strconv.Atoi(m[1])
	}
	if r.code != ExitOK || resumed < 3 || resumed == 6 {
		t.Fatalf("resumed run: exit %d, want 3 to 5 buckets resumed; stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	const output = `SELECT account_id, day, category, events, total_cents FROM daily_rollup`
	for _, q := range []string{output + ` EXCEPT ALL ` + eventgen.PostgresTruth, eventgen.PostgresTruth + ` EXCEPT ALL ` + output} {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM (`+q+`) q`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d rows differ from the ground truth (%v): %s", n, err, q)
		}
	}
}

// swapPoints are the crash points around the swap that replaces the output
// table: before its transaction, inside it (old table dropped, staging
// table renamed, not committed) and after its commit.
var swapPoints = []string{crashpoint.BeforeSwap, crashpoint.SwapRenamed, crashpoint.Swapped}

// TestCrash_Swap runs daily_rollup, deletes the events of one account and
// runs again with --fresh, killing mr with SIGKILL at each point around the
// swap; the resumed run must leave exactly the groups of the events left.
// Until the swap commits, readers see the old table, stale groups and all.
func TestCrash_Swap(t *testing.T) {
	t.Parallel()
	for _, point := range swapPoints {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			b := setupCrash(t, 5_000)
			if r := runMR(t, b.args...); r.code != ExitOK {
				t.Fatalf("first run: exit %d, stderr:\n%s", r.code, r.stderr)
			}
			if _, err := b.open(t).Exec(`DELETE FROM events WHERE account_id = (SELECT account_id FROM events ORDER BY id LIMIT 1)`); err != nil {
				t.Fatal(err)
			}
			stale := b.count(t, output+` EXCEPT `+eventgen.SQLiteTruth)
			if stale == 0 {
				t.Fatal("deleting an account's events left no stale groups")
			}
			fresh := append(slices.Clone(b.args), "--fresh")
			out, err := mrCommand(t, []string{crashpoint.Env + "=" + point}, fresh...).CombinedOutput()
			if !killed(err) {
				t.Fatalf("mr was not killed at %s: %v\n%s", point, err, out)
			}
			want := stale // the old table, until the swap commits
			if point == crashpoint.Swapped {
				want = 0
			}
			if n := b.count(t, output+` EXCEPT `+eventgen.SQLiteTruth); n != want {
				t.Errorf("after the kill at %s the table has %d stale groups, want %d", point, n, want)
			}
			// Every bucket is committed at each point: see
			// TestCrash_PostgresSwap.
			r := b.finish(t)
			if !strings.Contains(r.stdout, " is complete (finished at ") {
				t.Errorf("the run after the crash does not say it is complete:\n%s", r.stdout)
			}
		})
	}
}

// TestCrash_PostgresSwap is TestCrash_Swap on PostgreSQL, where the swap
// is DROP TABLE and ALTER TABLE … RENAME in one transaction.
func TestCrash_PostgresSwap(t *testing.T) {
	t.Parallel()
	for _, point := range swapPoints {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn := pgtest.DSN(t)
			db := pgtest.PoolFor(t, dsn)
			if err := eventgen.SeedPostgres(ctx, db, demoEvents(5_000), true); err != nil {
				t.Fatal(err)
			}
			args := []string{"run", "daily_rollup", "--source", dsn, "--workdir", t.TempDir(), "--workers", "2", "--buckets", "4"}
			if r := runMR(t, args...); r.code != ExitOK {
				t.Fatalf("first run: exit %d, stderr:\n%s", r.code, r.stderr)
			}
			if _, err := db.Exec(ctx, `DELETE FROM events WHERE account_id = (SELECT account_id FROM events ORDER BY id LIMIT 1)`); err != nil {
				t.Fatal(err)
			}
			const output = `SELECT account_id, day, category, events, total_cents FROM daily_rollup`
			differ := func() (stale, missing int) {
				t.Helper()
				err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM (`+output+` EXCEPT ALL `+eventgen.PostgresTruth+`) a),
					(SELECT count(*) FROM (`+eventgen.PostgresTruth+` EXCEPT ALL `+output+`) b)`).Scan(&stale, &missing)
				if err != nil {
					t.Fatal(err)
				}
				return stale, missing
			}
			stale, _ := differ()
			if stale == 0 {
				t.Fatal("deleting an account's events left no stale groups")
			}
			out, err := mrCommand(t, []string{crashpoint.Env + "=" + point}, append(slices.Clone(args), "--fresh")...).CombinedOutput()
			if !killed(err) {
				t.Fatalf("mr was not killed at %s: %v\n%s", point, err, out)
			}
			want := stale // the old table, until the swap commits
			if point == crashpoint.Swapped {
				want = 0
			}
			if n, _ := differ(); n != want {
				t.Errorf("after the kill at %s the table has %d stale groups, want %d", point, n, want)
			}
			// Every bucket is committed at both points, so the run state
			// says done and the run says it is complete, though before the
			// swap it still swaps: what counts is the table below.
			r := runMR(t, args...)
			if r.code != ExitOK || !strings.Contains(r.stdout, " is complete (finished at ") {
				t.Fatalf("resumed run: exit %d, want 0 and a complete run; stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			if stale, missing := differ(); stale != 0 || missing != 0 {
				t.Errorf("after the resumed run %d groups are stale or differ and %d are missing", stale, missing)
			}
		})
	}
}
