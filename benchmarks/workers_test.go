package benchmarks

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mrengine/mr/internal/pgtest"
)

// workersRunFlags split a run so that three workers all have work: 24
// map tasks and 12 reduce tasks, eight and four per worker at three.
var workersRunFlags = []string{"--partitions", "24", "--buckets", "12"}

// workerFlags are each worker's in BenchmarkWorkers and
// BenchmarkCoordinator: one task at a time, so that N workers are N tasks
// at once, as N one-task pods would be.
var workerFlags = []string{"--concurrency", "1"}

// BenchmarkWorkers runs daily_rollup over the events table of
// eventsConfig(rows) (1M rows; 10M with -mr.rows10m) with mr's binary,
// built once per run of the benchmark:
//
//   - one-process: mr run, source and sink PostgreSQL, default --workers
//     (the number of CPUs), the same --partitions and --buckets as the
//     workers' runs; it is the baseline, measured in the same run;
//   - workers=N: mr run --coordinator … --detach submits the same run to a
//     fresh coordinator schema (migrated with mr migrate) that N mr worker
//     processes (--concurrency 1), started and registered before the clock
//     starts, work; the clock stops when the coordinator says the run is
//     done (mr_runs.phase, read every phasePoll). The sink is the
//     coordinator's schema and the shuffle a file:// directory that every
//     worker shares, as on one machine with a shared disk.
//
// Both times include mr's process start, planning and the output table's
// swap. A workers run's time also includes, per task, River's claim, the
// worker rebuilding the run from its command line (new source and sink
// pools, the plan read from mr_state) and the fenced commits; its map-s
// is the time to the map→reduce barrier. Metrics: s and rows/s per run,
// x-one-process (the run's time over the one-process run's: below 1 is
// faster), map-s and reduce-s (reduce and finish). Every run's output is
// checked against the one-process run's (rows, events, cents).
//
//	go test ./benchmarks -run '^$' -bench Workers -benchtime 1x -timeout 30m
//
// On a machine of C cores, N workers of one task each cannot beat C of
// them, and the one-process run already runs C tasks at once: what the
// benchmark shows on one machine is the coordinator's cost, not scale-out.
func BenchmarkWorkers(b *testing.B) {
	bin := mrBinary(b)
	for _, rows := range []int64{heavyRows, hugeRows} {
		b.Run(rowsName(rows), func(b *testing.B) {
			skipUnlessAllowed(b, rows)
			ev := seededPostgres(b, rows)
			base := &oneProcessRun{bin: bin, ev: ev}
			b.Run("one-process", func(b *testing.B) {
				b.SetBytes(ev.bytes)
				var total time.Duration
				for b.Loop() {
					total += base.run(b)
				}
				perRun := total / time.Duration(b.N)
				base.d = perRun
				b.ReportMetric(perRun.Seconds(), "s")
				b.ReportMetric(float64(rows)/perRun.Seconds(), "rows/s")
				b.ReportMetric(1, "x-one-process")
			})
			for _, n := range []int{1, 2, 3} {
				b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
					workersRun(b, base, n)
				})
			}
		})
	}
}

// oneProcessRun is BenchmarkWorkers's baseline: its output's digest and
// its time per run, measured by the one-process case or, when a -bench
// pattern leaves that out, once by the first workers case that needs it.
type oneProcessRun struct {
	bin    string
	ev     *pgEvents
	d      time.Duration
	digest rollupDigest
}

// run runs mr run once, into a fresh schema, and returns its time.
func (o *oneProcessRun) run(b *testing.B) time.Duration {
	b.Helper()
	b.StopTimer()
	sink := pgtest.DSN(b)
	args := append([]string{"run", "daily_rollup", "--source", o.ev.dsn, "--sink", sink, "--workdir", b.TempDir()}, workersRunFlags...)
	b.StartTimer()
	_, d := runBin(b, o.bin, args...)
	b.StopTimer()
	o.digest = digestRollup(b, connect(b, sink))
	if o.digest.events == 0 {
		b.Fatalf("the one-process run wrote %s", o.digest)
	}
	b.StartTimer()
	return d
}

// time returns the one-process run's time, measuring it if no case did.
func (o *oneProcessRun) time(b *testing.B) time.Duration {
	b.Helper()
	if o.d == 0 {
		o.d = o.run(b)
		b.Logf("one-process run (measured here): %.2fs", o.d.Seconds())
	}
	return o.d
}

// workersRun is BenchmarkWorkers's case of n workers.
func workersRun(b *testing.B, base *oneProcessRun, n int) {
	b.StopTimer()
	baseline := base.time(b)
	ev := base.ev
	b.SetBytes(ev.bytes)
	b.StartTimer()
	var total, mapPhase, reducePhase time.Duration
	for b.Loop() {
		b.StopTimer()
		coord := newCoordinatorDB(b, base.bin)
		ws := startWorkers(b, base.bin, coord, n, workerFlags...)
		storage := (&url.URL{Scheme: "file", Path: b.TempDir()}).String()
		args := append([]string{"run", "daily_rollup", "--source", ev.dsn, "--sink", coord.dsn, "--workdir", b.TempDir(),
			"--coordinator", coord.dsn, "--storage", storage, "--detach"}, workersRunFlags...)
		b.StartTimer()
		start := time.Now()
		runBin(b, base.bin, args...)
		coord.waitPhase(b, ws, "", "map")
		mapped := time.Now()
		if p := coord.waitPhase(b, ws, "reduce", "finish"); p != "done" {
			b.Fatalf("the run ended in phase %q:\n%s", p, ws.logs())
		}
		d := time.Since(start)
		b.StopTimer()
		total += d
		mapPhase += mapped.Sub(start)
		reducePhase += d - mapped.Sub(start)
		ws.stop()
		if got := digestRollup(b, coord.conn); got != base.digest {
			b.Fatalf("%d workers wrote %s, the one-process run %s", n, got, base.digest)
		}
		b.StartTimer()
	}
	runs := time.Duration(b.N)
	perRun := total / runs
	b.ReportMetric(perRun.Seconds(), "s")
	b.ReportMetric(float64(ev.rows)/perRun.Seconds(), "rows/s")
	b.ReportMetric(perRun.Seconds()/baseline.Seconds(), "x-one-process")
	b.ReportMetric((mapPhase / runs).Seconds(), "map-s")
	b.ReportMetric((reducePhase / runs).Seconds(), "reduce-s")
}

// BenchmarkCoordinator measures the coordinator's own cost per task and
// per commit on this PostgreSQL, with mr worker processes (--concurrency
// 1 unless the name says otherwise) as BenchmarkWorkers starts them.
//
// claims: daily_rollup over a table of claimRows rows split into
// claimPartitions partitions (a dozen rows each), so that a map task's
// own work is nothing next to its overhead. tasks/s is map tasks over the
// map phase's time (from the submission's start to the map→reduce
// barrier), so each task's share includes River's fetch (a FOR UPDATE
// SKIP LOCKED claim, at most one per FetchCooldown, 100ms by default, per
// worker), the worker reading mr_runs and rebuilding the run (parsing
// its command line, opening new source and sink pools, loading the plan
// from mr_state), the map of its rows and one shuffle file per bucket,
// and one fenced commit that also ends the task (lock the job row, upsert
// the checkpoint, JobCompleteTx, an mr_attempts row, lock the run's
// mr_runs row, count the done checkpoints), plus its share of River's
// batch completer's UPDATE after Work returns (a no-op on a job that
// JobCompleteTx completed).
//
// commits: daily_rollup over smallRows rows in commitPartitions
// partitions, --chunk-size commitChunk and --checkpoint-interval 1ns, so
// that every chunk commits a checkpoint through the fenced transaction.
// commits/s is the commits (the checkpoints' Seq, summed) over the map
// phase's time, so each commit's share includes reading its chunk from
// the source, mapping it, writing its shuffle files (one per bucket) and
// the transaction that locks the job row and upserts the checkpoint,
// whose body lists every file the partition has committed so far
// (checkpoint-KiB is the largest body at the end).
//
// Both cases also report CPU per task or per commit over the map phase:
// worker-cpu-ms, of the worker processes (mr's side), and pg-cpu-ms, of
// the PostgreSQL backends alive at the map phase's end (cpuMeter): the
// workers' coordinator pools (River's fetches and completer, the fenced
// commits, the heartbeats) and this benchmark's, which polls the phase
// every phasePoll. The backends of a task's source and sink pools close
// with the task and are missed, so pg-cpu-ms is close to the coordinator
// database's own cost, the figure that bounds how many tasks and commits
// one coordinator serves (see docs/scaling.md). Here the source, the sink
// and the coordinator share one cluster, and the cluster shares the
// machine's cores with the workers.
//
//	go test ./benchmarks -run '^$' -bench Coordinator -benchtime 1x -timeout 30m
func BenchmarkCoordinator(b *testing.B) {
	bin := mrBinary(b)
	for _, c := range []struct{ workers, concurrency int }{{1, 1}, {2, 1}, {2, 4}} {
		b.Run(fmt.Sprintf("claims/workers=%d/concurrency=%d", c.workers, c.concurrency), func(b *testing.B) {
			ev := seededPostgres(b, claimRows)
			coordinatorRun(b, bin, ev, c.workers, c.concurrency, "tasks", []string{
				"--partitions", fmt.Sprint(claimPartitions), "--buckets", "4"})
		})
	}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("commits/workers=%d/concurrency=1", workers), func(b *testing.B) {
			ev := seededPostgres(b, smallRows)
			coordinatorRun(b, bin, ev, workers, 1, "commits", []string{
				"--partitions", fmt.Sprint(commitPartitions), "--buckets", "4",
				"--chunk-size", fmt.Sprint(commitChunk), "--checkpoint-interval", "1ns"})
		})
	}
}

// The claims case's input: claimRows rows in claimPartitions map tasks.
const (
	claimRows       = 6_000
	claimPartitions = 500
)

// The commits case's split: 100,000 rows in chunks of 100 are 1,000
// commits, 125 per partition, few enough that the checkpoints' growing
// file lists (4 entries per commit) stay small.
const (
	commitPartitions = 8
	commitChunk      = 100
)

// coordinatorRun runs one of BenchmarkCoordinator's cases: what counts
// "tasks" (map tasks) or "commits" (checkpoint commits) per second of the
// map phase.
func coordinatorRun(b *testing.B, bin string, ev *pgEvents, workers, concurrency int, what string, flags []string) {
	ctx := context.Background()
	var mapPhase, whole, pgCPU, workerCPU time.Duration
	var count, kib float64
	var serverVisible bool
	for b.Loop() {
		b.StopTimer()
		coord := newCoordinatorDB(b, bin)
		ws := startWorkers(b, bin, coord, workers, "--concurrency", fmt.Sprint(concurrency))
		storage := (&url.URL{Scheme: "file", Path: b.TempDir()}).String()
		args := append([]string{"run", "daily_rollup", "--source", ev.dsn, "--sink", coord.dsn, "--workdir", b.TempDir(),
			"--coordinator", coord.dsn, "--storage", storage, "--detach"}, flags...)
		meter := newCPUMeter(b, coord.conn)
		b.StartTimer()
		meter.start()
		workerCPU0 := ws.cpu()
		start := time.Now()
		runBin(b, bin, args...)
		coord.waitPhase(b, ws, "", "map")
		mapped := time.Since(start)
		b.StopTimer()
		_, pg := meter.stop()
		pgCPU += pg
		workerCPU += ws.cpu() - workerCPU0
		if p := coord.waitPhase(b, ws, "reduce", "finish"); p != "done" {
			b.Fatalf("the run ended in phase %q:\n%s", p, ws.logs())
		}
		whole += time.Since(start)
		ws.stop()
		mapPhase += mapped
		var tasks, commits, chunks, maxBody int64
		err := coord.conn.QueryRow(ctx, `SELECT count(*), coalesce(sum((convert_from(body, 'UTF8')::jsonb->>'seq')::bigint), 0)::bigint,
				coalesce(sum((convert_from(body, 'UTF8')::jsonb->>'chunks')::bigint), 0)::bigint, coalesce(max(octet_length(body)), 0)
			FROM mr_state WHERE key LIKE 'checkpoint/%'`).Scan(&tasks, &commits, &chunks, &maxBody)
		if err != nil {
			b.Fatal(err)
		}
		if what == "tasks" {
			count += float64(tasks)
		} else {
			if commits < chunks {
				b.Fatalf("%d commits for %d chunks: --checkpoint-interval 1ns should commit every chunk", commits, chunks)
			}
			count += float64(commits)
		}
		kib = max(kib, float64(maxBody)/1024)
		serverVisible = meter.serverVisible()
		if got := digestRollup(b, coord.conn); got.events == 0 {
			b.Fatalf("the run wrote %s", got)
		}
		b.StartTimer()
	}
	runs := float64(b.N)
	b.ReportMetric(count/runs, what)
	b.ReportMetric(count/mapPhase.Seconds(), what+"/s")
	b.ReportMetric(mapPhase.Seconds()/runs, "map-s")
	b.ReportMetric(whole.Seconds()/runs, "run-s")
	b.ReportMetric(kib, "checkpoint-KiB")
	b.ReportMetric(float64(workerCPU.Milliseconds())/count, "worker-cpu-ms/"+strings.TrimSuffix(what, "s"))
	if serverVisible {
		b.ReportMetric(float64(pgCPU.Milliseconds())/count, "pg-cpu-ms/"+strings.TrimSuffix(what, "s"))
	}
}
