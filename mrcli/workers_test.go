//go:build linux

package mrcli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mrengine/mr/internal/crashpoint"
	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/internal/s3test"
	"github.com/mrengine/mr/mapreduce"
)

// workerFlags make tasks short-lived enough to rescue within a test: River
// gives a task to another worker once it has run for --rescue-after (its
// rescuer looks every 30 seconds).
var workerFlags = []string{"--concurrency", "1", "--task-timeout", "4s", "--rescue-after", "5s"}

// chaosWait bounds each wait of the chaos test: two of River's rescue
// passes, and the work between them under the race detector.
const chaosWait = 3 * time.Minute

// TestWorkers_Chaos runs daily_rollup on worker processes while it kills
// one mid-map (SIGKILL), pauses another mid-map past its task's rescue
// (SIGSTOP, then SIGCONT once another attempt finished the task: its late
// commit must be fenced) and kills a third mid-reduce. The sink must
// equal a one-process run's and the ground truth, the dead letters must
// hold each poison row once (as mr dlq show --coordinator reads them),
// and the coordinator must show the fenced attempt. With the shuffle on a shared directory the sink is the
// coordinator's schema, so buckets commit with their tasks (pg.TxHook);
// with the shuffle on S3 it is another schema, where the sink's
// per-bucket ledger makes a bucket's apply idempotent and the task ends
// after it, and the mid-reduce kill comes right after a bucket's commit.
func TestWorkers_Chaos(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// storage returns the run's --storage, and the environment
		// workers need to reach it.
		storage     func(t *testing.T) (string, []string)
		otherSink   bool
		reduceCrash string
	}{
		{name: "file", storage: fileStorage, reduceCrash: crashpoint.BucketStarted},
		{name: "s3", storage: s3Storage, otherSink: true, reduceCrash: crashpoint.BucketApplied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			storage, env := tc.storage(t)
			chaos(t, storage, env, tc.otherSink, tc.reduceCrash)
		})
	}
}

// s3Storage is a bucket of a real S3 server on loopback.
func s3Storage(t *testing.T) (string, []string) { return s3test.URL(t), s3test.Env() }

// fileStorage is a shared directory.
func fileStorage(t *testing.T) (string, []string) {
	return (&url.URL{Scheme: "file", Path: t.TempDir()}).String(), nil
}

func chaos(t *testing.T, storage string, env []string, otherSink bool, reduceCrash string) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	db := pgtest.PoolFor(t, dsn)
	if err := eventgen.SeedPostgres(ctx, db, demoEvents(20_000), true); err != nil {
		t.Fatal(err)
	}
	sinkDSN := dsn
	if otherSink {
		sinkDSN = pgtest.DSN(t)
	}
	if r := runMR(t, "migrate", "--coordinator", dsn); r.code != ExitOK {
		t.Fatalf("mr migrate: exit %d\n%s", r.code, r.stderr)
	}
	refDSN := pgtest.DSN(t)
	if r := runMR(t, "run", "daily_rollup", "--source", dsn, "--sink", refDSN, "--workdir", t.TempDir()); r.code != ExitOK {
		t.Fatalf("one-process run: exit %d\n%s", r.code, r.stderr)
	}

	workers := &workerSet{t: t, dsn: dsn, db: db, env: env}
	killedMap := workers.start(crashpoint.MapSpilled + ":3")
	paused := workers.start(crashpoint.MapSpilled + ":2:stop")
	r := runMR(t, "run", "daily_rollup", "--source", dsn, "--sink", sinkDSN, "--workdir", t.TempDir(),
		"--coordinator", dsn, "--storage", storage, "--detach",
		"--partitions", "12", "--buckets", "6", "--chunk-size", "200", "--checkpoint-interval", "1ns")
	m := regexp.MustCompile(`submitted run (\S+)`).FindStringSubmatch(r.stdout)
	if r.code != ExitOK || m == nil {
		t.Fatalf("mr run --coordinator: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	run := m[1]
	killedMap.waitKilled()
	paused.waitStopped()
	pausedJob := workers.runningJob(paused)

	killedReduce := workers.start(reduceCrash + ":1")
	killedReduce.waitKilled() // it mapped the rest, then died in its first bucket
	// Every map task is done, the paused one's by another attempt: wake
	// it up, and it goes on to commit the chunk it had read.
	if state := workers.jobState(pausedJob); state != "completed" {
		t.Fatalf("the paused worker's job %d is %s after the map phase, want completed by another attempt", pausedJob, state)
	}
	paused.signal(syscall.SIGCONT)
	workers.start("") // the replacement of the killed ones
	workers.waitUntil("the run to finish", func() bool { return workers.phase(run) == "done" })
	workers.stopAll()

	const output = `SELECT account_id, day, category, events, total_cents FROM daily_rollup ORDER BY 1, 2, 3`
	got, want := tableRows(t, pgtest.PoolFor(t, sinkDSN), output), tableRows(t, db, eventgen.PostgresTruth+" ORDER BY 1, 2, 3")
	if !slices.Equal(got, want) {
		t.Errorf("the workers' output has %d rows, the ground truth %d; they differ", len(got), len(want))
	}
	if ref := tableRows(t, pgtest.PoolFor(t, refDSN), output); !slices.Equal(got, ref) {
		t.Errorf("the workers' output differs from the one-process run's (%d rows, %d)", len(got), len(ref))
	}

	// The killed and the fenced attempts left files that no checkpoint
	// names; mr gc removes them and leaves the committed ones, which the
	// dead letters below are read from.
	dry := runMR(t, "gc", "--coordinator", dsn, "--dry-run")
	wouldGo := regexp.MustCompile(`would remove (\d+) files of failed attempts of 1 done runs`).FindStringSubmatch(dry.stdout)
	if dry.code != ExitOK || wouldGo == nil || wouldGo[1] == "0" {
		t.Errorf("mr gc --coordinator --dry-run: exit %d, want failed attempts' files counted; stdout:\n%s\nstderr:\n%s", dry.code, dry.stdout, dry.stderr)
	}
	gc := runMR(t, "gc", "--coordinator", dsn)
	if m := regexp.MustCompile(`removed (\d+) files of failed attempts of 1 done runs`).FindStringSubmatch(gc.stdout); gc.code != ExitOK || m == nil || wouldGo == nil || m[1] != wouldGo[1] {
		t.Errorf("mr gc --coordinator: exit %d, want files of the failed attempts removed; stdout:\n%s\nstderr:\n%s", gc.code, gc.stdout, gc.stderr)
	}

	shown := runMR(t, "dlq", "show", run, "--coordinator", dsn, "--json")
	var letters struct {
		DeadLetters []mapreduce.DeadLetter `json:"dead_letters"`
	}
	if err := json.Unmarshal([]byte(shown.stdout), &letters); shown.code != ExitOK || err != nil {
		t.Fatalf("mr dlq show --coordinator: exit %d, %v\nstdout:\n%s\nstderr:\n%s", shown.code, err, shown.stdout, shown.stderr)
	}
	var cursors []int64
	for _, l := range letters.DeadLetters {
		cursors = append(cursors, l.Cursor)
	}
	slices.Sort(cursors)
	rows, _ := db.Query(ctx, eventgen.PostgresPoisonIDs)
	poison, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if len(poison) == 0 || !slices.Equal(cursors, poison) {
		t.Errorf("the dead letters hold cursors %v, want each poison row once: %v", cursors, poison)
	}

	st := runMR(t, "status", run, "--coordinator", dsn)
	if st.code != ExitOK {
		t.Fatalf("mr status --coordinator: exit %d\n%s", st.code, st.stderr)
	}
	fenced := regexp.MustCompile(`attempts \d+ committed, (\d+) fenced`).FindStringSubmatch(st.stdout)
	if fenced == nil || fenced[1] == "0" || !regexp.MustCompile(fmt.Sprintf(`(?m)^map task of partition \d+ +%d +1 `, pausedJob)).MatchString(st.stdout) {
		t.Errorf("mr status does not show the paused worker's attempt at job %d fenced:\n%s", pausedJob, st.stdout)
	}
	if !strings.Contains(st.stdout, "phase done") {
		t.Errorf("mr status does not show the run done:\n%s", st.stdout)
	}
}

// tableRows returns the rows of query, each printed as one string.
func tableRows(t *testing.T, db *pgxpool.Pool, query string) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(vals...))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitUntil polls cond until it holds, or fails the test after chaosWait.
func (s *workerSet) waitUntil(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(chaosWait)
	for !cond() {
		if time.Now().After(deadline) {
			s.diagnose()
			s.t.Fatalf("gave up waiting for %s after %s", what, chaosWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// diagnose logs what the coordinator's jobs and sessions are doing, for a
// test that gave up waiting.
func (s *workerSet) diagnose() {
	for _, q := range []string{
		`SELECT id, kind, state, attempt, attempted_at, attempted_by FROM river_job WHERE state <> 'completed' ORDER BY id`,
		`SELECT leader_id, elected_at, expires_at FROM river_leader`,
		`SELECT pid, application_name, state, now() - xact_start, left(query, 100) FROM pg_stat_activity WHERE state LIKE 'idle in%' OR wait_event_type = 'Lock'`,
	} {
		if rows, err := s.db.Query(context.Background(), q); err == nil {
			for rows.Next() {
				vals, _ := rows.Values()
				s.t.Logf("%s: %v", q[:40], vals)
			}
			rows.Close()
		}
	}
}

// A workerSet is the worker processes of a test.
type workerSet struct {
	t       *testing.T
	dsn     string
	db      *pgxpool.Pool // on the coordinator
	env     []string
	workers []*workerProc
}

// workerProc is one mr worker process.
type workerProc struct {
	set  *workerSet
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error // once done is closed
}

// start starts a worker with the crash point armed ("" for none).
func (s *workerSet) start(point string) *workerProc {
	s.t.Helper()
	env := slices.Clone(s.env)
	if point != "" {
		env = append(env, crashpoint.Env+"="+point)
	}
	args := append([]string{"worker", "--coordinator", s.dsn}, workerFlags...)
	w := &workerProc{set: s, cmd: mrCommand(s.t, env, args...), out: &syncBuffer{}, done: make(chan struct{})}
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	if err := w.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() { w.err = w.cmd.Wait(); close(w.done) }()
	s.workers = append(s.workers, w)
	s.t.Cleanup(func() {
		w.cmd.Process.Signal(syscall.SIGCONT)
		w.cmd.Process.Kill()
		<-w.done
		if s.t.Failed() {
			s.t.Logf("worker %d (%s):\n%s", w.cmd.Process.Pid, point, w.out)
		}
	})
	return w
}

// waitKilled waits for the worker to kill itself at its crash point.
func (w *workerProc) waitKilled() {
	w.set.t.Helper()
	select {
	case <-w.done:
		if !killed(w.err) {
			w.set.t.Fatalf("worker %d ended with %v, not at its crash point:\n%s", w.cmd.Process.Pid, w.err, w.out)
		}
	case <-time.After(chaosWait):
		w.set.diagnose()
		w.set.t.Fatalf("worker %d did not reach its crash point in %s:\n%s", w.cmd.Process.Pid, chaosWait, w.out)
	}
}

// waitStopped waits for the worker to stop itself (SIGSTOP).
func (w *workerProc) waitStopped() {
	w.set.t.Helper()
	w.set.waitUntil("the worker to stop itself", func() bool {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", w.cmd.Process.Pid))
		// The state follows the command name, in parentheses.
		i := bytes.LastIndexByte(stat, ')')
		return err == nil && i > 0 && i+2 < len(stat) && stat[i+2] == 'T'
	})
}

func (w *workerProc) signal(sig syscall.Signal) {
	if err := w.cmd.Process.Signal(sig); err != nil {
		w.set.t.Fatal(err)
	}
}

// runningJob returns the job that the worker w is running.
func (s *workerSet) runningJob(w *workerProc) int64 {
	s.t.Helper()
	var id int64
	err := s.db.QueryRow(context.Background(), `SELECT j.id FROM river_job j JOIN mr_workers w
		ON w.id = j.attempted_by[array_upper(j.attempted_by, 1)] WHERE w.pid = $1 AND j.state = 'running'`, w.cmd.Process.Pid).Scan(&id)
	if err != nil {
		s.t.Fatalf("the job of worker %d: %v", w.cmd.Process.Pid, err)
	}
	return id
}

func (s *workerSet) jobState(id int64) string {
	s.t.Helper()
	var state string
	if err := s.db.QueryRow(context.Background(), "SELECT state::text FROM river_job WHERE id = $1", id).Scan(&state); err != nil {
		s.t.Fatal(err)
	}
	return state
}

func (s *workerSet) phase(run string) string {
	var phase string
	s.db.QueryRow(context.Background(), "SELECT phase FROM mr_runs WHERE run = $1", run).Scan(&phase)
	return phase
}

// stopAll stops the workers still running with SIGTERM, which lets them
// finish, and checks that they exit cleanly.
func (s *workerSet) stopAll() {
	s.t.Helper()
	for _, w := range s.workers {
		select {
		case <-w.done:
			continue
		default:
		}
		w.signal(syscall.SIGTERM)
		<-w.done
		if w.err != nil {
			s.t.Errorf("worker %d: %v after SIGTERM:\n%s", w.cmd.Process.Pid, w.err, w.out)
		}
	}
}

// TestWorkers_Errors shows the messages of what a user can get wrong with
// workers, and that fixing it is all it takes: the unmigrated coordinator
// refuses to run a worker or take a run until mr migrate, after which the
// same command submits the run.
func TestWorkers_Errors(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	if err := eventgen.SeedPostgres(context.Background(), pgtest.PoolFor(t, dsn), demoEvents(200), true); err != nil {
		t.Fatal(err)
	}
	workdir := t.TempDir()
	run := []string{"run", "daily_rollup", "--source", dsn, "--workdir", workdir, "--coordinator", dsn, "--detach"}
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"WorkerWithoutCoordinator", []string{"worker"}, ExitUsage, "missing --coordinator URL"},
		{"RescueBeforeTimeout", []string{"worker", "--coordinator", dsn, "--task-timeout", "2s", "--rescue-after", "1s"}, ExitUsage,
			"--rescue-after (1s) must be longer than --task-timeout (2s)"},
		{"StorageWithoutCoordinator", []string{"run", "daily_rollup", "--source", dsn, "--workdir", workdir, "--storage", "file:///tmp/x"}, ExitUsage,
			"--storage and --detach are for a run submitted to workers"},
		{"IncrementalOnWorkers", append(slices.Clone(run), "--incremental"), ExitUsage, "--incremental and --follow run here"},
		{"PipelineOnWorkers", []string{"run", "payload_channels", "--source", dsn, "--coordinator", dsn}, ExitUsage, "runs in one process"},
		{"WorkerNotMigrated", []string{"worker", "--coordinator", dsn}, ExitFailed, "run mr migrate --coordinator URL first"},
		{"SubmitNotMigrated", run, ExitFailed, "run mr migrate --coordinator URL first"},
		{"MigrateWithoutCoordinator", []string{"migrate"}, ExitUsage, "missing --coordinator URL"},
	} {
		r := runMR(t, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr:\n%s\nwant exit %d and %q", tt.name, r.code, r.stderr, tt.code, tt.want)
		}
	}
	if r := runMR(t, "migrate", "--coordinator", dsn); r.code != ExitOK {
		t.Fatalf("mr migrate: exit %d\n%s", r.code, r.stderr)
	}
	if r := runMR(t, run...); r.code != ExitOK || !strings.Contains(r.stdout, "submitted run daily_rollup-") {
		t.Fatalf("the same command after mr migrate: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}
