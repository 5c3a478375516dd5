package mrcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mrengine/mr/coordinator"
	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/internal/redact"
	"github.com/mrengine/mr/mapreduce"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show the progress of the runs in a work directory, or watch one",
		ArgsUsage: "[RUN]",
		Description: `Without RUN, lists the runs in --workdir with their partitions and buckets
done, and for a stage of a pipeline (mr run PIPELINE) the pipeline and
the stage as NAME K/N. With RUN, shows each partition (cursor range,
next cursor, rows read and failed, done) and each bucket (applied to the
sink or not), and which pipeline and stage the run is.

` + runJSONHelp + `

With RUN and --json, the object is that run's, with two more fields:

  "partition_states": [{"partition", "lo", "hi", "next", "rows", "failed", "done"}]
  "bucket_states": [{"bucket", "done"}]

lo and hi bound the partition's cursor range [lo, hi); next is the lowest
cursor value it has not yet committed.

With RUN and --watch, shows the run again every --interval while another
process runs it, until it is done: per phase the work done and planned
(rows for map, buckets for reduce; the planned row count may be an
estimate), the rate over the last 10 seconds and the time left at that
rate, failed rows, bytes spilled, and each partition as done, the share
of its cursor range committed, - (not started) or damaged (the next run
maps it again). Only committed work counts: a map task's rows once its
checkpoint has them. On a terminal each refresh draws over the last. It
exits 0 once the run is done, 1 on Ctrl-C. With --json too, prints one
compact JSON object per refresh, one per line: mr status RUN --json's,
with

  "time", "phase" (map, reduce, done), "bytes_spilled", "rate" (null
  until known), "rate_unit" (rows/s or buckets/s), "eta_seconds" (null
  until known), "partition_cells" (each partition as the text shows it)`,
		Flags: []cli.Flag{workdirFlag(), jsonFlag("a table"),
			coordinatorFlag("read the runs submitted to the coordinator database at `URL` (mr run --coordinator), with their tasks, attempts and workers"),
			&cli.BoolFlag{Name: "watch", Usage: "with RUN, refresh until the run is done (see above)", DisableDefaultText: true},
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "with --watch, refresh every `DURATION`"},
		},
		Action: action(status),
	}
}

func status(c *cli.Context, args []string) (err error) {
	cfg := stateConfig(c)
	var coord *coordinator.Coordinator
	if dsn := c.String("coordinator"); dsn != "" {
		defer func() { err = redact.Error(err, pg.Secrets(dsn)...) }()
		if coord, err = coordinator.Open(c.Context, dsn); err != nil {
			return err
		}
		defer closeInto(&err, coord)
		cfg.Store = coord.Store()
	}
	watch := c.Bool("watch")
	switch {
	case watch && len(args) != 1:
		return usagef("mr status --workdir "+cfg.Workdir, "mr status --watch watches one RUN, got %d arguments", len(args))
	case watch && c.Duration("interval") <= 0:
		return usagef("mr status --help", "--interval must be positive, got %s", c.Duration("interval"))
	}
	switch {
	case len(args) == 0 && c.Bool("json"):
		entries, err := listEntries(c.Context, cfg)
		if err != nil {
			return err
		}
		return writeRunsJSON(c.App.Writer, entries, time.Now())
	case len(args) == 0:
		where := cfg.Workdir
		if coord != nil {
			where = coord.String()
		}
		if err := listRuns(c.Context, c.App.Writer, cfg, where); err != nil || coord == nil {
			return err
		}
		return showWorkers(c.Context, c.App.Writer, coord)
	case len(args) == 1:
		ri, err := inspectRun(c, cfg, args[0])
		if err != nil {
			return err
		}
		if watch {
			return watchStatus(c.Context, c.App.Writer, cfg, ri, c.Duration("interval"), c.Bool("json"))
		}
		if c.Bool("json") {
			return showRunJSON(c.App.Writer, cfg, ri)
		}
		if err := showRun(c.App.Writer, ri); err != nil || coord == nil {
			return err
		}
		return showTasks(c.Context, c.App.Writer, coord, args[0])
	default:
		return usagef("mr status --help", "mr status takes at most one RUN, got %q", args)
	}
}

// stateConfig is the configuration that reads the run state in --workdir.
func stateConfig(c *cli.Context) mapreduce.Config {
	cfg := mapreduce.DefaultConfig()
	cfg.Workdir = c.String("workdir")
	return cfg
}

// inspectRun returns the state of run; an unknown run is a usage error.
func inspectRun(c *cli.Context, cfg mapreduce.Config, run string) (*mapreduce.RunInfo, error) {
	ri, err := mapreduce.Inspect(c.Context, cfg, run)
	if errors.Is(err, mapreduce.ErrNoRun) {
		return nil, usagef("mr status --workdir "+cfg.Workdir, "%v", err)
	}
	return ri, err
}

// listRuns lists the runs of cfg's Store, which is where.
func listRuns(ctx context.Context, out io.Writer, cfg mapreduce.Config, where string) error {
	runs, err := mapreduce.Runs(ctx, cfg)
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		fmt.Fprintf(out, "no runs in %s\n", where)
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "RUN\tJOB\tPIPELINE\tCREATED\tSTATE\tROWS\tFAILED\tPARTITIONS\tBUCKETS")
	for _, ri := range runs {
		read, failed := ri.Rows()
		p := ri.Plan
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%d\t%d/%d\t%d/%d\n", p.RunID, p.Job, stageOf(p), p.Created.Format(time.RFC3339), ri.State(),
			read, p.Rows, failed, ri.PartitionsDone(), len(p.Partitions), len(ri.BucketsDone), p.Buckets)
	}
	return w.Flush()
}

func showRun(out io.Writer, ri *mapreduce.RunInfo) error {
	p := ri.Plan
	read, failed := ri.Rows()
	fmt.Fprintf(out, "run      %s\n", p.RunID)
	fmt.Fprintf(out, "job      %s\n", p.Job)
	if p.Pipeline != "" {
		fmt.Fprintf(out, "pipeline %s, stage %d of %d\n", p.Pipeline, p.Stage, p.Stages)
	}
	fmt.Fprintf(out, "created  %s\n", p.Created.Format(time.RFC3339))
	fmt.Fprintf(out, "state    %s\n", ri.State())
	fmt.Fprintf(out, "source   %s (table %s, cursor %s)\n", pg.Redact(p.Source), p.Input.Table, p.Input.Cursor)
	fmt.Fprintf(out, "sink     %s (table %s)\n", pg.Redact(p.Sink), p.OutputTable)
	if p.Mark != nil {
		fmt.Fprintf(out, "batch    %d, %s through %d (the high-water mark)", p.Batch, p.Input.Cursor, *p.Mark)
		if e := p.Earlier; e != nil {
			fmt.Fprintf(out, "; %d earlier batches read %d rows, %d failed", e.Batches, e.Rows, e.Failed)
		}
		fmt.Fprintln(out)
	}
	if w := p.Window; w != nil {
		fmt.Fprintf(out, "window   the groups of %s from %s on, recomputed whole (--lookback)\n", w.Column, w.From)
	}
	fmt.Fprintf(out, "rows     %d/%d read, %d failed\n", read, p.Rows, failed)
	fmt.Fprintf(out, "map      %d/%d partitions done\n", ri.PartitionsDone(), len(p.Partitions))
	if p.MapOnly {
		fmt.Fprintf(out, "reduce   none: the job is map-only, each chunk upserted as it is read\n\n")
	} else {
		fmt.Fprintf(out, "reduce   %d/%d buckets done\n\n", len(ri.BucketsDone), p.Buckets)
	}

	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "PARTITION\tRANGE\tNEXT\tROWS\tFAILED\tDONE")
	for part, r := range p.Partitions {
		cp := ri.Checkpoints[part]
		if cp == nil { // not started
			cp = &mapreduce.Checkpoint{Next: r.Lo}
		}
		fmt.Fprintf(w, "%d\t%s\t%d\t%d\t%d\t%s\n", part, r.Range, cp.Next, cp.Rows, cp.Failed, yesNo(cp.Done))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if p.MapOnly {
		return nil
	}
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "BUCKET\tDONE")
	for b := range p.Buckets {
		fmt.Fprintf(w, "%d\t%s\n", b, yesNo(slices.Contains(ri.BucketsDone, b)))
	}
	return w.Flush()
}

// stageOf is the PIPELINE column of mr status: the pipeline and stage
// whose run planned p (NAME K/N), or - for a job run alone.
func stageOf(p *mapreduce.Plan) string {
	if p.Pipeline == "" {
		return "-"
	}
	return fmt.Sprintf("%s %d/%d", p.Pipeline, p.Stage, p.Stages)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// runStatusJSON is the JSON of mr status RUN: see statusCommand.
type runStatusJSON struct {
	runJSON
	PartitionStates []partitionJSON `json:"partition_states"`
	BucketStates    []bucketJSON    `json:"bucket_states"`
}

type partitionJSON struct {
	Partition int   `json:"partition"`
	Lo        int64 `json:"lo"`
	Hi        int64 `json:"hi"`
	Next      int64 `json:"next"`
	Rows      int64 `json:"rows"`
	Failed    int64 `json:"failed"`
	Done      bool  `json:"done"`
}

type bucketJSON struct {
	Bucket int  `json:"bucket"`
	Done   bool `json:"done"`
}

func showRunJSON(out io.Writer, cfg mapreduce.Config, ri *mapreduce.RunInfo) error {
	doc, err := newRunStatusJSON(cfg, ri)
	if err != nil {
		return err
	}
	return writeJSON(out, doc)
}

func newRunStatusJSON(cfg mapreduce.Config, ri *mapreduce.RunInfo) (runStatusJSON, error) {
	e, err := newEntry(cfg, ri)
	if err != nil {
		return runStatusJSON{}, err
	}
	p := ri.Plan
	doc := runStatusJSON{runJSON: newRunJSON(e, time.Now()), PartitionStates: []partitionJSON{}, BucketStates: []bucketJSON{}}
	for part, r := range p.Partitions {
		pj := partitionJSON{Partition: part, Lo: r.Lo, Hi: r.Hi, Next: r.Lo}
		if cp := ri.Checkpoints[part]; cp != nil {
			pj.Next, pj.Rows, pj.Failed, pj.Done = cp.Next, cp.Rows, cp.Failed, cp.Done
		}
		doc.PartitionStates = append(doc.PartitionStates, pj)
	}
	for b := range p.Buckets {
		doc.BucketStates = append(doc.BucketStates, bucketJSON{Bucket: b, Done: slices.Contains(ri.BucketsDone, b)})
	}
	return doc, nil
}
