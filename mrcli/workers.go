package mrcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/mrengine/mr/coordinator"
	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/internal/redact"
	"github.com/mrengine/mr/mapreduce"
)

// coordinatorFlag names the coordinator database of mr worker, migrate,
// status and the runs submitted to workers.
func coordinatorFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "coordinator", Usage: usage}
}

// submitFlags are the flags of mr run and mr rollup that hand the run to
// workers.
func submitFlags() []cli.Flag {
	return []cli.Flag{
		coordinatorFlag("submit the run's tasks to the workers (mr worker) of the coordinator database at `URL`, then follow it until it ends"),
		&cli.StringFlag{Name: "storage", Usage: "with --coordinator, keep shuffle files and dead letters at `URL`, which every worker reaches: file:///shared/dir, or s3://bucket?region=…&endpoint=… (default: file:// of --workdir)"},
		&cli.BoolFlag{Name: "detach", DisableDefaultText: true, Usage: "with --coordinator, return once the run is submitted; mr status RUN --coordinator URL --watch follows it"},
	}
}

// rebuildKey marks the context of a command line that a worker reads to
// rebuild a submitted run: start hands it the run instead of running it.
type rebuildKey struct{}

// start runs job as its command line asks: handed back to a worker that
// rebuilds it, submitted to workers (--coordinator), or here.
func start(c *cli.Context, job jobCommand) error {
	if into, ok := c.Context.Value(rebuildKey{}).(*jobCommand); ok {
		*into = job
		return nil
	}
	if c.String("coordinator") != "" {
		return submit(c, job)
	}
	if c.IsSet("storage") || c.Bool("detach") {
		return usagef(job.help, "--storage and --detach are for a run submitted to workers: add --coordinator URL")
	}
	_, err := execute(c.Context, c.App.Writer, c.App.ErrWriter, job, c.Bool("explain"))
	return err
}

// submit plans the run of job, submits its tasks to the coordinator and,
// unless --detach, follows it until it ends.
func submit(c *cli.Context, job jobCommand) (err error) {
	ctx := c.Context
	dsn := c.String("coordinator")
	defer func() { err = redact.Error(err, pg.Secrets(job.sourceURL, job.sinkURL, dsn)...) }()
	switch {
	case c.Bool("explain"):
		return usagef(job.help, "--explain plans a run here: leave out --coordinator")
	case job.follow || job.cfg.Incremental:
		return usagef(job.help, "--incremental and --follow run here: leave out --coordinator (workers run full runs)")
	}
	storage, err := storageURL(c)
	if err != nil {
		return err
	}
	command, err := taskCommand(c, storage)
	if err != nil {
		return err
	}
	coord, err := coordinator.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer closeInto(&err, coord)
	src, sink, closeEnds, err := job.open(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeEnds()) }()
	cfg := job.cfg
	cfg.Store, cfg.Blobs, cfg.Shared = coord.Store(), storage, true
	cfg.Logger = newLogger(c.App.ErrWriter, job.logFormat, slog.LevelWarn)
	runner, err := mapreduce.Open(ctx, job.def, src, sink, cfg)
	if err != nil {
		return err
	}
	defer closeInto(&err, runner)
	if err := runner.Prepare(ctx); err != nil {
		return err
	}
	if err := coord.Submit(ctx, runner, command); err != nil {
		return err
	}
	plan := runner.Plan()
	out := c.App.Writer
	fmt.Fprintf(out, "submitted run %s to %s: %d partitions, %d buckets; workers run it: mr worker --coordinator %s\n",
		plan.RunID, coord, len(plan.Partitions), plan.Buckets, pasteable(dsn))
	if c.Bool("detach") {
		return nil
	}
	return follow(ctx, out, c.App.ErrWriter, coord, plan, job)
}

// storageURL is --storage, or file:// of --workdir, made absolute so that
// workers started elsewhere find the same directory.
func storageURL(c *cli.Context) (string, error) {
	if s := c.String("storage"); s != "" {
		return s, nil
	}
	dir, err := filepath.Abs(c.String("workdir"))
	if err != nil {
		return "", err
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String(), nil
}

// taskCommand is the command line a worker rebuilds the run from: mr's
// arguments as given, without the passwords in --source, --sink and
// --coordinator (workers give theirs as psql does, in PGPASSWORD or
// ~/.pgpass), without --fresh and --detach (which the submission did),
// and with --storage set.
func taskCommand(c *cli.Context, storage string) ([]string, error) {
	args, _ := c.App.Metadata[argsKey].([]string)
	var out []string
	strip := map[string]bool{"source": true, "sink": true, "coordinator": true}
	for i := 1; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			out = append(out, args[i:]...)
			break
		}
		name, value, inline := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		flag := strings.HasPrefix(arg, "-")
		switch {
		case flag && (name == "fresh" || name == "detach"):
			continue
		case flag && name == "storage":
			if !inline {
				i++
			}
			continue
		case flag && strip[name]:
			if !inline {
				if i+1 < len(args) {
					i++
					value = args[i]
				}
			}
			v, err := pg.WithoutSecrets(value)
			if err != nil {
				return nil, usagef(helpHint(c), "--%s: %v", name, err)
			}
			out = append(out, "--"+name+"="+v)
			continue
		}
		out = append(out, arg)
	}
	// Flags go before the arguments: urfave/cli stops at the first one.
	return append(out[:1:1], append([]string{"--storage=" + storage}, out[1:]...)...), nil
}

// followInterval is how often follow reads the run's progress.
const followInterval = 500 * time.Millisecond

// follow reports a submitted run's progress until it ends, then prints
// its summary line; a task that River gave up on ends it with an error.
func follow(ctx context.Context, out, errOut io.Writer, coord *coordinator.Coordinator, plan *mapreduce.Plan, job jobCommand) (err error) {
	prog, _ := newProgress(errOut, job.logFormat)
	defer func() { prog.Close(err) }()
	cfg := mapreduce.DefaultConfig()
	cfg.Store = coord.Store()
	began := time.Now()
	phase, shown := "", int64(0)
	for {
		st, err := coord.RunStatus(ctx, plan.RunID)
		if err != nil {
			return err
		}
		ri, err := mapreduce.Inspect(ctx, cfg, plan.RunID)
		if err != nil {
			return err
		}
		if ri.Plan.Commit != plan.Commit {
			return fmt.Errorf("run %s was planned again (mr run --fresh?) while this one followed it", plan.RunID)
		}
		if len(st.Failed) > 0 {
			return fmt.Errorf("run %s: a task failed for good: %s\nfix the cause and submit the same command again to resume it", plan.RunID, st.Failed[0])
		}
		read, failed := ri.Rows()
		done := int64(len(ri.BucketsDone))
		switch {
		case st.Phase == "map" && phase == "":
			phase, shown = mapreduce.PhaseMap, read
			prog.Start(phase, plan.Rows, read)
		case st.Phase != "map" && phase != mapreduce.PhaseReduce:
			if phase == mapreduce.PhaseMap {
				prog.Add(phase, read-shown)
				prog.Finish(phase)
			}
			phase, shown = mapreduce.PhaseReduce, done
			prog.Start(phase, int64(plan.Buckets), done)
		case phase == mapreduce.PhaseMap:
			prog.Add(phase, read-shown)
			shown = read
		default:
			prog.Add(phase, done-shown)
			shown = done
		}
		if st.Phase == "done" {
			prog.Finish(phase)
			sum := mapreduce.Summary{Job: plan.Job, RunID: plan.RunID, Total: read, Processed: read, Failed: failed, Read: read,
				Elapsed: time.Since(began), Partitions: len(plan.Partitions), Buckets: plan.Buckets, Groups: -1}
			for _, cp := range ri.Checkpoints {
				sum.BytesSpilled += cp.Spilled
			}
			prog.Close(nil)
			fmt.Fprintln(out, sum)
			if sum.FailureRate() > job.cfg.MaxFailureRate {
				return fmt.Errorf("%w: %.2f%% of rows failed, more than --max-failure-rate %g; see mr dlq list %s --coordinator URL",
					mapreduce.ErrFailureRate, 100*sum.FailureRate(), job.cfg.MaxFailureRate, plan.RunID)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped following run %s, which goes on on its workers: mr status %s --coordinator URL --watch follows it", plan.RunID, plan.RunID)
		case <-time.After(followInterval):
		}
	}
}

// workerCommand is mr worker.
func workerCommand() *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "run the tasks of submitted runs (mr run --coordinator), on River",
		Description: `Runs the map, reduce and finish tasks of the runs submitted to the
coordinator database, as River jobs, --concurrency at a time, until Ctrl-C
or SIGTERM (which let the running tasks finish, for up to --task-timeout) or, with
--exit-when-idle, until no task is left. Start as many workers as you
like, anywhere that reaches the coordinator, the source and sink databases
and the run's --storage; each rebuilds a run from its submitted command
line, so it needs the same jobs (and --plugin files) as the command that
submitted it, and gives passwords as psql does (PGPASSWORD, ~/.pgpass),
since the coordinator keeps none.

A task whose worker dies is given to another after --rescue-after; a task
that outlives --task-timeout is cancelled and retried from its last
commit. Every commit is fenced: an attempt that no longer owns its task
(paused past the rescue, then woken up) commits nothing.`,
		Flags: []cli.Flag{
			coordinatorFlag("`URL` of the coordinator database (run mr migrate on it first)"),
			&cli.IntFlag{Name: "concurrency", Value: mapreduce.DefaultConfig().Workers, DefaultText: "number of CPUs", Usage: "run `N` tasks at once"},
			&cli.StringFlag{Name: "memory", Value: "512MiB", Usage: "bound the engine's tables to `SIZE`, shared by the running tasks"},
			&cli.DurationFlag{Name: "task-timeout", Value: 10 * time.Minute, Usage: "cancel a task that runs longer than `DURATION`, and retry it from its last commit"},
			&cli.DurationFlag{Name: "rescue-after", Value: 11 * time.Minute, Usage: "give a task that has run `DURATION` (its worker died) to another worker; must be longer than --task-timeout"},
			&cli.BoolFlag{Name: "exit-when-idle", DisableDefaultText: true, Usage: "exit once no task has been queued or running for --idle"},
			&cli.DurationFlag{Name: "idle", Value: 10 * time.Second, Usage: "with --exit-when-idle, how long the queue must be empty: `DURATION`"},
			logFormatFlag(),
		},
		Action: action(runWorker),
	}
}

func runWorker(c *cli.Context, args []string) (err error) {
	dsn := c.String("coordinator")
	hint := helpHint(c)
	switch {
	case len(args) > 0:
		return usagef(hint, "unexpected arguments %q", args)
	case dsn == "":
		return usagef(hint, "missing --coordinator URL: the database whose tasks to run")
	case c.Int("concurrency") < 1:
		return usagef(hint, "--concurrency must be at least 1, got %d", c.Int("concurrency"))
	case c.Duration("rescue-after") <= c.Duration("task-timeout"):
		return usagef(hint, "--rescue-after (%s) must be longer than --task-timeout (%s): River would give running tasks to other workers",
			c.Duration("rescue-after"), c.Duration("task-timeout"))
	}
	defer func() { err = redact.Error(err, pg.Secrets(dsn)...) }()
	format, err := setLogFormat(c)
	if err != nil {
		return err
	}
	memory, err := parseMemory(c, hint)
	if err != nil {
		return err
	}
	limitHeap(memory)
	coord, err := coordinator.Open(c.Context, dsn)
	if err != nil {
		return err
	}
	defer closeInto(&err, coord)
	log := newLogger(c.App.ErrWriter, format, 0)
	cfg := coordinator.WorkerConfig{
		Concurrency: c.Int("concurrency"),
		TaskTimeout: c.Duration("task-timeout"),
		RescueAfter: c.Duration("rescue-after"),
		Logger:      log,
	}
	if c.Bool("exit-when-idle") {
		cfg.IdleExit = c.Duration("idle")
	}
	return coord.Work(c.Context, openTask(coord, memory, log), cfg)
}

// openTask returns the coordinator.Opener of a worker: it reads a
// submitted command line with the commands of mr itself, so that a task's
// run is the one mr run or mr rollup would open, over the coordinator's
// Store.
func openTask(coord *coordinator.Coordinator, memory int64, log *slog.Logger) coordinator.Opener {
	return func(ctx context.Context, command []string, concurrency int) (*mapreduce.Runner, func() error, error) {
		var job jobCommand
		app := NewApp(io.Discard, io.Discard)
		args := append([]string{"mr"}, command...)
		app.Metadata = map[string]any{argsKey: args}
		if err := app.RunContext(context.WithValue(ctx, rebuildKey{}, &job), args); err != nil {
			return nil, nil, fmt.Errorf("rebuild the submitted command: %w", err)
		}
		if job.def == nil {
			return nil, nil, fmt.Errorf("the submitted command %q names no run", command)
		}
		src, sink, closeEnds, err := job.open(ctx)
		if err != nil {
			return nil, nil, err
		}
		cfg := job.cfg
		cfg.Store, cfg.Shared, cfg.Fresh = coord.Store(), true, false
		cfg.Workers, cfg.Memory = concurrency, memory
		cfg.Logger = log
		r, err := mapreduce.OpenTask(ctx, job.def, src, sink, cfg)
		if err != nil {
			return nil, nil, errors.Join(err, closeEnds())
		}
		return r, func() error { return errors.Join(r.Close(), closeEnds()) }, nil
	}
}

// migrateCommand is mr migrate.
func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "create or update the coordinator database's tables (River's and mr's)",
		Description: `Applies River's migrations and creates mr's tables (mr_runs, mr_state,
mr_attempts, mr_workers) in the coordinator database, so that mr worker
and mr run --coordinator can use it. Running it again applies only what is
missing.`,
		Flags:  []cli.Flag{coordinatorFlag("`URL` of the coordinator database")},
		Action: action(runMigrate),
	}
}

func runMigrate(c *cli.Context, args []string) (err error) {
	dsn := c.String("coordinator")
	switch {
	case len(args) > 0:
		return usagef(helpHint(c), "unexpected arguments %q", args)
	case dsn == "":
		return usagef(helpHint(c), "missing --coordinator URL: the database to migrate")
	}
	defer func() { err = redact.Error(err, pg.Secrets(dsn)...) }()
	db, err := pg.Open(c.Context, dsn, pg.Options{MaxConns: 2})
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := coordinator.Migrate(c.Context, db.Pool)
	if err != nil {
		return db.Scrub(err)
	}
	if len(applied) == 0 {
		fmt.Fprintf(c.App.Writer, "%s is up to date\n", db)
	} else {
		fmt.Fprintf(c.App.Writer, "migrated %s: River versions %v, and mr's tables\n", db, applied)
	}
	return nil
}

// showTasks prints what the coordinator knows of a submitted run: its
// phase, its tasks by state, and the attempts that committed or were
// fenced.
func showTasks(ctx context.Context, out io.Writer, coord *coordinator.Coordinator, run string) error {
	st, err := coord.RunStatus(ctx, run)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\ncoordinator %s: phase %s, submitted %s", coord, st.Phase, st.SubmittedAt.Format(time.RFC3339))
	if st.FinishedAt != nil {
		fmt.Fprintf(out, ", finished %s", st.FinishedAt.Format(time.RFC3339))
	}
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "TASKS\tSTATE\tCOUNT")
	for _, t := range st.Tasks {
		fmt.Fprintf(w, "%s\t%s\t%d\n", strings.TrimPrefix(t.Kind, "mr_"), t.State, t.N)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, f := range st.Failed {
		fmt.Fprintf(out, "failed for good: %s\n", f)
	}
	var fenced, committed int
	for _, a := range st.Attempts {
		if a.Outcome == "fenced" {
			fenced++
		} else {
			committed++
		}
	}
	fmt.Fprintf(out, "\nattempts %d committed, %d fenced\n", committed, fenced)
	if fenced == 0 {
		return nil
	}
	w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "FENCED\tJOB\tATTEMPT\tWORKER\tAT")
	for _, a := range st.Attempts {
		if a.Outcome == "fenced" {
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\n", a.Task, a.JobID, a.Attempt, a.Worker, a.At.Format(time.RFC3339))
		}
	}
	return w.Flush()
}

// workersSeen is how far back mr status lists workers.
const workersSeen = time.Hour

// showWorkers lists the workers seen within workersSeen.
func showWorkers(ctx context.Context, out io.Writer, coord *coordinator.Coordinator) error {
	ws, err := coord.Workers(ctx, workersSeen)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%d workers seen in the last %s\n", len(ws), workersSeen)
	if len(ws) == 0 {
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "WORKER\tHOST\tPID\tSTARTED\tLAST SEEN\tRUNNING")
	for _, wk := range ws {
		state := strconv.Itoa(wk.Running) + " tasks"
		if wk.StoppedAt != nil {
			state = "stopped"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", wk.ID, wk.Host, wk.PID, wk.StartedAt.Format(time.RFC3339),
			humanize.Time(wk.SeenAt), state)
	}
	return w.Flush()
}

// gcAttempts is mr gc --coordinator: it collects the files of the failed
// attempts of every run done in the coordinator (see mapreduce.Collect).
func gcAttempts(c *cli.Context, dsn string, dry bool) (err error) {
	defer func() { err = redact.Error(err, pg.Secrets(dsn)...) }()
	coord, err := coordinator.Open(c.Context, dsn)
	if err != nil {
		return err
	}
	defer closeInto(&err, coord)
	runs, err := coord.Submitted(c.Context)
	if err != nil {
		return err
	}
	verb := "removed"
	if dry {
		verb = "would remove"
	}
	var total, running int
	for _, run := range runs {
		st, err := coord.RunStatus(c.Context, run)
		if err != nil {
			return err
		}
		if st.Phase != "done" {
			running++
			continue
		}
		cfg := mapreduce.DefaultConfig()
		cfg.Store, cfg.Blobs = coord.Store(), st.Storage()
		n, err := mapreduce.Collect(c.Context, cfg, run, dry)
		if err != nil {
			return err
		}
		if n > 0 {
			fmt.Fprintf(c.App.Writer, "%s: %s %d files of failed attempts\n", run, verb, n)
		}
		total += n
	}
	fmt.Fprintf(c.App.Writer, "%s %d files of failed attempts of %d done runs; left %d runs that workers still run\n", verb, total, len(runs)-running, running)
	return nil
}

// pasteable is dsn as a command to paste should show it: without its
// password, which the one who pastes it gives as psql takes it (a masked
// password would be taken for one), or masked if it does not parse.
func pasteable(dsn string) string {
	if bare, err := pg.WithoutSecrets(dsn); err == nil {
		return shellQuote(bare)
	}
	return shellQuote(pg.Redact(dsn))
}

// runStates reads the state of runs for mr dlq: from --workdir, or with
// --coordinator from the coordinator, where each run's dead letters are in
// the --storage it was submitted with.
type runStates struct {
	c     *cli.Context
	cfg   mapreduce.Config
	coord *coordinator.Coordinator // nil without --coordinator
}

func openRunStates(c *cli.Context) (*runStates, error) {
	s := &runStates{c: c, cfg: stateConfig(c)}
	if dsn := c.String("coordinator"); dsn != "" {
		coord, err := coordinator.Open(c.Context, dsn)
		if err != nil {
			return nil, redact.Error(err, pg.Secrets(dsn)...)
		}
		s.coord, s.cfg.Store = coord, coord.Store()
	}
	return s, nil
}

func (s *runStates) Close() error {
	if s.coord == nil {
		return nil
	}
	return s.coord.Close()
}

// inspect returns the state of run, as inspectRun.
func (s *runStates) inspect(run string) (*mapreduce.RunInfo, error) {
	cfg := s.cfg
	if s.coord != nil {
		st, err := s.coord.RunStatus(s.c.Context, run)
		if errors.Is(err, coordinator.ErrNotSubmitted) {
			return nil, usagef("mr status --coordinator URL", "%v", err)
		}
		if err != nil {
			return nil, err
		}
		cfg.Blobs = st.Storage()
	}
	return inspectRun(s.c, cfg, run)
}

// all returns the state of every run, by id.
func (s *runStates) all() ([]*mapreduce.RunInfo, error) {
	if s.coord == nil {
		return mapreduce.Runs(s.c.Context, s.cfg)
	}
	ids, err := s.coord.Submitted(s.c.Context)
	if err != nil {
		return nil, err
	}
	var runs []*mapreduce.RunInfo
	for _, id := range ids {
		ri, err := s.inspect(id)
		if err != nil {
			return nil, err
		}
		runs = append(runs, ri)
	}
	return runs, nil
}
