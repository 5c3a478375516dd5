package mrcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/mrengine/mr/internal/metrics"
	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/internal/redact"
	"github.com/mrengine/mr/jobs"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/sinks"
	"github.com/mrengine/mr/sources"
)

func runCommand() *cli.Command {
	def := mapreduce.DefaultConfig()
	return &cli.Command{
		Name:      "run",
		Usage:     "run a job over a source table into a sink",
		ArgsUsage: "JOB|PIPELINE",
		Description: `Runs JOB (see mr jobs) over its input table in --source and writes the
aggregates into its output table in --sink, then prints a summary line. The
run replaces the table: it builds the new one beside it and swaps it in at
the end, so the table holds exactly the groups of this run, and readers see
the old table until then.

With --incremental, the first run reads every row through a safe
high-water mark of the cursor (it waits for the transactions that may
still write below it), and each later one reads only the rows past the
last mark and merges their groups into the table; --follow runs one such
batch every --interval until Ctrl-C. Rows updated or deleted at or below
the mark are not seen again: --fresh recomputes the table.

A run is resumable: its state lives in --workdir, and running the same
command again after a failure, a crash or Ctrl-C resumes it from its
checkpoints. Ctrl-C (SIGINT) or SIGTERM stops the run, prints its summary
and the command that resumes it, and exits 1; a second one stops mr at
once. Rows whose map fails go to the run's dead-letter queue
(mr dlq list). Exit codes: 0 done, 1 failed (resumable), 2 usage error,
3 done but more rows failed than --max-failure-rate.

URLs: postgres://USER:PASSWORD@HOST:PORT/DB, host=HOST dbname=DB …
(libpq's key=value form), sqlite:PATH, or a PATH ending in .db. Without
--source, the PG* environment variables (PGHOST, PGPORT, PGDATABASE,
PGUSER, PGPASSWORD, PGSSLMODE, PGSERVICE…) and ~/.pgpass decide, as for
psql.

A PIPELINE (see mr jobs) runs its stages in order, each a run of its job
with its own run id, checkpoints and dead letters, and prints each one's
summary line: the first stage reads --source (--table and --cursor apply
to it alone) and writes --sink; each later stage reads the output table
of the stage before from --sink and writes its own there. After a crash
the same command finds the stages before the one that crashed complete
(they read no row) and resumes that one. --fresh recomputes every stage;
--incremental and --explain are for jobs only.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "source", Usage: "`URL` of the database holding the input table", DefaultText: "PostgreSQL as the PG* environment says, like psql"},
			&cli.StringFlag{Name: "sink", Usage: "`URL` of the database receiving the output table (default: --source)"},
			&cli.StringFlag{Name: "table", Usage: "input `TABLE` (default: the job's)"},
			&cli.StringFlag{Name: "cursor", Usage: "unique integer `COLUMN` that orders the table, or TS,ID: an integer, date or timestamp column and a NOT NULL integer tie-breaker, unique together (default: the job's, usually id)"},
			&cli.IntFlag{Name: "partitions", Usage: "split the table into `N` cursor ranges, one map task each", Value: def.Partitions},
			&cli.IntFlag{Name: "buckets", Usage: "hash the keys into `R` buckets, one reduce task and sink transaction each", Value: def.Buckets},
			&cli.IntFlag{Name: "chunk-size", Value: def.ChunkSize, Usage: "read `ROWS` rows per keyset query"},
			workersFlag(),
			&cli.StringFlag{Name: "memory", Value: "512MiB", Usage: "bound the engine's tables to `SIZE`, e.g. 512MiB, 1GiB, 64MB (and the Go heap to SIZE + 96MiB, unless GOMEMLIMIT is set)"},
			&cli.IntFlag{Name: "max-retries", Value: def.MaxRetries, Usage: "retry a failed row `N` times before it goes to the dead-letter queue; 0 for none"},
			&cli.DurationFlag{Name: "retry-delay", Value: def.RetryDelay, Usage: "wait `DURATION` before the first retry of a failed row; each retry doubles it, with jitter"},
			&cli.Float64Flag{Name: "max-failure-rate", Value: def.MaxFailureRate, Usage: "alert and exit 3 when the share of failed rows is above `RATE`; once 1,000 rows and 1% of the table (at most 100,000 rows) are mapped, a rate above it stops the map phase early"},
			&cli.DurationFlag{Name: "checkpoint-interval", Value: def.CheckpointInterval, Usage: "commit each map task's progress every `DURATION`: the most work a crash loses"},
			workdirFlag(),
			&cli.BoolFlag{Name: "explain", Usage: "plan the run and print every partition with its estimated rows, without running it", DisableDefaultText: true},
			&cli.BoolFlag{Name: "fresh", Usage: "discard an earlier run of the same command and start over; like every run, it replaces the output table, so groups of deleted rows go", DisableDefaultText: true},
			&cli.BoolFlag{Name: "incremental", DisableDefaultText: true,
				Usage: "read only the rows added since this run last finished, through a safe high-water mark of the cursor, and merge their groups into the output table; the first run reads every row"},
			&cli.BoolFlag{Name: "follow", DisableDefaultText: true,
				Usage: "keep running incremental batches (implies --incremental), one every --interval, until Ctrl-C"},
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "with --follow, start a batch every `DURATION` (the next at once if one takes longer)"},
			logFormatFlag(),
			&cli.StringFlag{Name: "metrics-addr", Usage: "serve the run's Prometheus metrics on http://`HOST:PORT`/metrics while it runs, e.g. :9464 (:0 picks a free port)"},
			pluginFlag(),
		}, submitFlags()...),
		Action: action(runJob),
	}
}

func workersFlag() cli.Flag {
	return &cli.IntFlag{Name: "workers", Usage: "run `N` tasks at once", Value: mapreduce.DefaultConfig().Workers, DefaultText: "number of CPUs"}
}

func workdirFlag() cli.Flag {
	return &cli.StringFlag{Name: "workdir", Value: mapreduce.DefaultConfig().Workdir, Usage: "`DIR` of run state: plans, checkpoints, shuffle files, dead letters"}
}

func runJob(c *cli.Context, args []string) error {
	if len(args) > 0 {
		if _, _, err := loadPlugin(c, "mr run --help"); err != nil {
			return err
		}
		if p, ok := jobs.LookupPipeline(args[0]); ok {
			if c.String("coordinator") != "" {
				return usagef(helpHint(c), "the pipeline %s runs in one process: leave out --coordinator, or submit its stages' jobs one by one", p.Name)
			}
			return runPipeline(c, p, args)
		}
	}
	job, err := parseJobCommand(c, args, "run")
	if err != nil {
		return err
	}
	return start(c, job)
}

// jobCommand is what mr run and mr dlq replay read from their command
// line: the job, the databases and the run's settings, which together name
// the run.
type jobCommand struct {
	def                mapreduce.Definition
	sourceURL, sinkURL string
	cfg                mapreduce.Config
	// freshHint tells how to recompute a run that is complete; empty
	// where the command cannot (mr demo).
	freshHint string
	// metricsAddr is where to serve the run's metrics (--metrics-addr),
	// "" for nowhere.
	metricsAddr string
	// resume is the command line that resumes the run after an
	// interruption: the one that started it, without --fresh.
	resume string
	// help is the command line that shows the command's help.
	help string
	// logFormat is --log-format: logText or logJSON.
	logFormat string
	// follow is --follow: one incremental batch after another, each
	// interval after the last.
	follow   bool
	interval time.Duration
	// staleBefore, for a pipeline's stage after the first, is when the
	// stage before it last committed: a plan of this stage made before
	// then read an input that has changed since, so it is planned afresh
	// rather than resumed (see runPipeline).
	staleBefore time.Time
}

// parseJobCommand reads JOB and the run flags of mr <name> (run, dlq
// replay), loading --plugin first so that its jobs can be named.
func parseJobCommand(c *cli.Context, args []string, name string) (jobCommand, error) {
	help := "mr " + name + " --help"
	if _, _, err := loadPlugin(c, help); err != nil {
		return jobCommand{}, err
	}
	switch {
	case len(args) == 0:
		return jobCommand{}, usagef("mr jobs", "missing JOB: name the job to %s", strings.TrimPrefix(name, "dlq "))
	case len(args) > 1:
		return jobCommand{}, usagef(help, "unexpected arguments after JOB %s: %q", args[0], args[1:])
	}
	def, err := jobs.Lookup(args[0])
	if err != nil {
		return jobCommand{}, usagef("mr jobs", "%v%s", err, pipelinesHint(name))
	}
	job := ends(c)
	job.def = def
	if job.cfg, err = runConfig(c); err != nil {
		return jobCommand{}, err
	}
	return job, job.runFlags(c)
}

// pipelinesHint lists the registered pipelines after an unknown job's
// message, for mr run, which runs them too.
func pipelinesHint(command string) string {
	var names []string
	for _, p := range jobs.Pipelines() {
		names = append(names, p.Name)
	}
	if command != "run" || len(names) == 0 {
		return ""
	}
	return "; pipelines: " + strings.Join(names, ", ")
}

// runFlags reads the flags that a run's command has beyond what names the
// run: --log-format, --metrics-addr (mr run and mr rollup only), and the
// command line that resumes it.
func (job *jobCommand) runFlags(c *cli.Context) (err error) {
	job.help = helpHint(c)
	job.resume = resumeCommand(c)
	job.follow, job.interval = c.Bool("follow"), c.Duration("interval")
	switch {
	case job.follow && job.interval <= 0:
		return usagef(job.help, "--interval must be positive, got %s", job.interval)
	case c.IsSet("interval") && !job.follow:
		return usagef(job.help, "--interval sets how often --follow starts a batch, and --follow is not given")
	case job.follow && c.Bool("explain"):
		return usagef(job.help, "--explain plans one run: leave out --follow")
	}
	if job.logFormat, err = setLogFormat(c); err != nil {
		return err
	}
	addr := c.String("metrics-addr")
	if addr == "" {
		return nil
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || !isPort(port) {
		return usagef(job.help, "invalid --metrics-addr %q: want HOST:PORT, e.g. :9464, 127.0.0.1:9464, or :0 for a free port", addr)
	}
	job.metricsAddr = addr
	return nil
}

func isPort(s string) bool {
	_, err := strconv.ParseUint(s, 10, 16)
	return err == nil
}

// ends returns the databases that c's --source and --sink name. Without
// --source the PG* environment variables, a service file and ~/.pgpass
// decide, as they do for psql: an empty DSN is pgx's way of saying so.
// --sink defaults to the source.
func ends(c *cli.Context) jobCommand {
	job := jobCommand{sourceURL: c.String("source"), sinkURL: c.String("sink"), freshHint: "--fresh recomputes it"}
	if job.sinkURL == "" {
		job.sinkURL = job.sourceURL
	}
	return job
}

// open opens the job's source and sink; close closes both.
func (job jobCommand) open(ctx context.Context) (src mapreduce.Source, sink mapreduce.Sink, close func() error, err error) {
	if src, err = openSource(ctx, job.sourceURL); err != nil {
		return nil, nil, nil, err
	}
	if sink, err = sinks.Open(ctx, job.sinkURL); err != nil {
		closeInto(&err, src)
		return nil, nil, nil, err
	}
	return src, sink, func() (err error) {
		closeInto(&err, src)
		closeInto(&err, sink)
		return err
	}, nil
}

// openSource opens the source at url. Without --source, a failure to
// connect says where the connection settings came from, since the user
// gave none.
func openSource(ctx context.Context, url string) (mapreduce.Source, error) {
	src, err := sources.Open(ctx, url)
	if err != nil && url == "" {
		err = fmt.Errorf("%w\nwithout --source, mr connects as psql does: set PGHOST, PGPORT, PGDATABASE, PGUSER (and PGPASSWORD or ~/.pgpass), or give --source URL", err)
	}
	return src, err
}

// runConfig fills a mapreduce.Config from the run flags of c's command
// (mr run, mr rollup, mr dlq replay) and validates it: a value out of
// range, zero included, is a usage error, since a zero that meant "the
// default" would run with settings the user did not ask for.
func runConfig(c *cli.Context) (mapreduce.Config, error) {
	hint := helpHint(c)
	memory, err := parseMemory(c, hint)
	if err != nil {
		return mapreduce.Config{}, err
	}
	cfg := mapreduce.DefaultConfig()
	cfg.Workdir = c.String("workdir")
	cfg.Table = c.String("table")
	cfg.Cursor = c.String("cursor")
	cfg.Partitions = c.Int("partitions")
	cfg.Buckets = c.Int("buckets")
	cfg.ChunkSize = c.Int("chunk-size")
	cfg.Workers = c.Int("workers")
	cfg.Memory = memory
	cfg.Blobs = c.String("storage")
	cfg.MaxRetries = c.Int("max-retries")
	cfg.RetryDelay = c.Duration("retry-delay")
	cfg.MaxFailureRate = c.Float64("max-failure-rate")
	cfg.CheckpointInterval = c.Duration("checkpoint-interval")
	cfg.Fresh = c.Bool("fresh")
	cfg.Incremental = c.Bool("incremental") || c.Bool("follow")
	if err := cfg.Validate(); err != nil {
		return mapreduce.Config{}, usagef(hint, "%v", err)
	}
	return cfg, nil
}

// parseMemory reads --memory.
func parseMemory(c *cli.Context, hint string) (int64, error) {
	memory, err := humanize.ParseBytes(c.String("memory"))
	if err != nil || memory > math.MaxInt64 {
		return 0, usagef(hint, "invalid --memory %q: want a size such as 512MiB, 1GiB or 64MB", c.String("memory"))
	}
	return int64(memory), nil
}

// planLines is how many partitions a run prints before it starts; --explain
// prints them all.
const planLines = 16

// execute runs def from the source to the sink (with explain, only plans
// it and prints the plan), reporting on out (the plan, the summary line)
// and errOut (progress and logs). An error it returns names a resumable
// run and holds no password.
func execute(ctx context.Context, out, errOut io.Writer, job jobCommand, explain bool) (_ mapreduce.Summary, err error) {
	defer func() { err = redact.Error(err, pg.Secrets(job.sourceURL, job.sinkURL)...) }()
	src, sink, closeEnds, err := job.open(ctx)
	if err != nil {
		return mapreduce.Summary{}, err
	}
	defer func() { err = errors.Join(err, closeEnds()) }()

	cfg := job.cfg
	prog, log := newProgress(errOut, job.logFormat)
	cfg.Logger = log
	if pg, ok := src.(*sources.Postgres); ok {
		pg.Logger = log // says whom a high-water mark waits for
	}
	if explain {
		err := explainRun(ctx, out, job.def, src, sink, cfg)
		prog.Close(err)
		return mapreduce.Summary{}, err
	}
	limitHeap(cfg.Memory)
	cfg.Progress = prog
	runner, err := mapreduce.Open(ctx, job.def, src, sink, cfg)
	if err == nil && !job.staleBefore.IsZero() && runner.Resumed() && runner.Plan().Created.Before(job.staleBefore) {
		fmt.Fprintf(out, "run %s was planned at %s, before the stage before it last committed (%s): planning it afresh\n",
			runner.Plan().RunID, runner.Plan().Created.Format(time.RFC3339), job.staleBefore.Format(time.RFC3339))
		if err = runner.Close(); err == nil {
			cfg.Fresh = true
			runner, err = mapreduce.Open(ctx, job.def, src, sink, cfg)
		}
	}
	if err != nil {
		prog.Close(err)
		return mapreduce.Summary{}, err
	}
	defer closeInto(&err, runner)
	prog.Stats(runner.Stats)
	finished, err := finishedAt(ctx, cfg, runner)
	if err != nil {
		prog.Close(err)
		return mapreduce.Summary{}, err
	}
	if finished.IsZero() {
		printPlan(out, runner.Plan(), runner.Resumed(), planLines)
	}
	if job.metricsAddr != "" {
		addr, stopMetrics, serr := metrics.Serve(ctx, job.metricsAddr, metrics.NewRegistry(runner.Stats))
		if serr != nil {
			prog.Close(serr)
			return mapreduce.Summary{}, usagef(job.help, "--metrics-addr %s: %v; choose another address, or :0 for a free port", job.metricsAddr, serr)
		}
		defer func() { err = errors.Join(err, stopMetrics()) }()
		fmt.Fprintf(out, "metrics http://%s/metrics\n", addr)
	}
	// A complete run runs too: it reads no row and applies no bucket, but
	// it swaps the output table in if a crash came between the last
	// bucket and the swap, which the run state does not tell.
	// From here a signal stops the run at its next commit point (see Main).
	// With --follow it lets the batch finish, then stops following (see
	// runBatches): a batch is short, and the next run would begin where
	// it ends.
	if stop := takeStop(ctx); stop != nil && !job.follow {
		ran := make(chan struct{})
		defer close(ran)
		go func() {
			select {
			case <-stop:
				runner.Stop()
			case <-ran:
			}
		}()
	}
	sum, err := runner.Run(ctx)
	if job.cfg.Incremental && ranTo(err) {
		sum, err = runBatches(ctx, out, runner, job, sum, &finished)
	}
	if sum.MapStopped { // an alert, but the map bar did not get to its end
		prog.Close(errors.New("map phase stopped early"))
	} else {
		prog.Close(err)
	}
	switch {
	case !finished.IsZero() && ranTo(err):
		fmt.Fprintf(out, "run %s is complete (finished at %s); nothing to do", sum.RunID, finished.Format(time.RFC3339))
		if job.def.Spec().Incremental && job.freshHint != "" {
			fmt.Fprint(out, "; --incremental reads the rows added since")
		}
		if job.freshHint != "" {
			fmt.Fprint(out, "; "+job.freshHint)
		}
		fmt.Fprintln(out)
	case sum.RunID != "":
		fmt.Fprintln(out, sum)
	}
	var full *mapreduce.DiskFullError
	switch {
	case err == nil, errors.Is(err, mapreduce.ErrFailureRate), errors.As(err, &full): // these say what to do
		return sum, err
	case sum.RunID == "":
		return sum, err
	case (ctx.Err() != nil || errors.Is(err, mapreduce.ErrStopped)) && job.resume != "":
		return sum, fmt.Errorf("run %s interrupted; resume it with:\n  %s", sum.RunID, job.resume)
	case ctx.Err() != nil || errors.Is(err, mapreduce.ErrStopped):
		return sum, fmt.Errorf("run %s interrupted: run the same command again to resume it", sum.RunID)
	default:
		return sum, fmt.Errorf("%w\nrun %s stopped: fix the cause and run the same command again to resume it", err, sum.RunID)
	}
}

// ranTo reports whether a Run that returned err ran its plan to the end.
func ranTo(err error) bool { return err == nil || errors.Is(err, mapreduce.ErrFailureRate) }

// runBatches goes on from a plan of an incremental run that Run just
// finished (sum) with a batch of the rows added since (see
// mapreduce.Runner.Next), unless that plan was new: it read the table
// through its mark. With --follow it then runs one batch after another,
// each --interval after the last began, until a signal (then it returns
// an empty Summary, having printed every batch's: the signal lets the
// batch it comes in finish) or an error. A plan
// that an earlier process started gets its summary printed first; one
// that was complete before (*finished) none: the batch is the news, so
// *finished is cleared.
func runBatches(ctx context.Context, out io.Writer, runner *mapreduce.Runner, job jobCommand, sum mapreduce.Summary, finished *time.Time) (_ mapreduce.Summary, err error) {
	if runner.Resumed() {
		if finished.IsZero() {
			fmt.Fprintln(out, sum)
		}
		*finished = time.Time{}
		if err := runner.Next(ctx); err != nil {
			return sum, err
		}
		printPlan(out, runner.Plan(), false, 0)
		if sum, err = runner.Run(ctx); !ranTo(err) {
			return sum, err
		}
	}
	stop := takeStop(ctx)
	began := time.Now()
	for job.follow {
		fmt.Fprintln(out, sum)
		// Batches start every interval, as a micro-batch trigger does:
		// a row waits for the next start, not for a pause after a batch.
		select {
		case <-ctx.Done():
			return mapreduce.Summary{}, ctx.Err()
		case <-stop:
			return mapreduce.Summary{}, nil
		case <-time.After(time.Until(began.Add(job.interval))):
		}
		began = time.Now()
		if err := runner.Next(ctx); err != nil {
			return sum, err
		}
		if sum, err = runner.Run(ctx); !ranTo(err) {
			return sum, err
		}
	}
	return sum, nil
}

// finishedAt returns when the run that runner resumes finished, or zero if
// it has work left: a run planned anew has.
func finishedAt(ctx context.Context, cfg mapreduce.Config, runner *mapreduce.Runner) (time.Time, error) {
	if !runner.Resumed() {
		return time.Time{}, nil
	}
	ri, err := mapreduce.Inspect(ctx, cfg, runner.Plan().RunID)
	if err != nil || ri.State() != mapreduce.StateDone {
		return time.Time{}, err
	}
	return lastCommit(ri), nil
}

// explainRun prints the plan that the run of def over src and sink would
// use, with every partition, and writes no run state: mapreduce.Open saves
// the plan it makes, so it plans in a scratch work directory, and a run
// that --workdir already holds shows its stored plan, which is the one a
// run would resume (unless --fresh).
func explainRun(ctx context.Context, out io.Writer, def mapreduce.Definition, src mapreduce.Source, sink mapreduce.Sink, cfg mapreduce.Config) (err error) {
	scratch, err := os.MkdirTemp("", "mr-explain-")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(scratch)) }()
	planning := cfg
	planning.Workdir = scratch
	runner, err := mapreduce.Open(ctx, def, src, sink, planning)
	if err != nil {
		return err
	}
	plan := runner.Plan()
	if err := runner.Close(); err != nil {
		return err
	}
	resumed := false
	if !cfg.Fresh {
		ri, err := mapreduce.Inspect(ctx, cfg, plan.RunID)
		switch {
		case err == nil:
			plan, resumed = ri.Plan, true
		case !errors.Is(err, mapreduce.ErrNoRun):
			return err
		}
	}
	printPlan(out, plan, resumed, -1)
	return nil
}

// heapHeadroom is what the process needs beside the engine's tables, which
// --memory bounds: connection buffers, Arrow builders and zstd encoders
// while a table spills. Measured: a 10M-row daily_rollup on PostgreSQL with
// --memory 64MiB peaked at 345 MB RSS without a heap limit and at 190 MB
// with this one, in the same time.
const heapHeadroom = 96 << 20

// gcPercent is the garbage collector's GOGC while the heap is below its
// limit. With the limit in place a larger heap costs nothing the user did
// not grant, and collections are what the map and reduce phases spend
// most on after PostgreSQL's rows: measured on the 1M-row db-benchmark q3
// and q10 (the most and the fewest groups), 400 cut mr's CPU time by a
// fifth against the default 100 at the same peak RSS, and GOGC=off saved
// nothing more.
const gcPercent = 400

// limitHeap sets the Go runtime's soft memory limit to the engine's budget
// plus headroom, so that the garbage collector keeps the heap near the
// budget instead of letting it grow to twice the live data, and lets the
// heap grow towards that limit before collecting. A GOMEMLIMIT or GOGC set
// by the user wins.
func limitHeap(memory int64) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(memory + heapHeadroom)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

// closeInto closes v if it is an io.Closer, adding a failure to *err.
func closeInto(err *error, v any) {
	if c, ok := v.(io.Closer); ok {
		*err = errors.Join(*err, c.Close())
	}
}
