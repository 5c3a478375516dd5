package mrcli

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mrengine/mr/jobs"
	"github.com/mrengine/mr/mapreduce"
)

// runPipeline is mr run PIPELINE: each stage in order, each its own run
// of its job (own run id, plan, checkpoints and dead letters), so that
// running the same command after a crash finds the stages before the one
// that crashed complete (they read no row) and resumes that one. Stage 1
// reads --source (--table and --cursor apply to it alone) and writes
// --sink; every later stage reads its input, the output of the stage
// before, from --sink and writes there too.
//
// A stage whose plan is older than the last commit of the stage before
// it is planned afresh, as with --fresh: its input changed after it was
// planned (by mr run of the earlier stage's job alone, say), and resuming
// it would total the old input. --fresh recomputes every stage.
//
// A stage that ends above --max-failure-rate does not stop the pipeline:
// its output is complete, less its dead letters, as for a job, so the
// next stages run and mr exits 3 at the end.
func runPipeline(c *cli.Context, p jobs.Pipeline, args []string) error {
	help := helpHint(c)
	switch {
	case len(args) > 1:
		return usagef(help, "unexpected arguments after PIPELINE %s: %q", args[0], args[1:])
	case c.Bool("incremental") || c.Bool("follow"):
		flag := "--incremental"
		if c.Bool("follow") {
			flag = "--follow"
		}
		return usagef(help, "pipeline %s cannot run %s: its stages after the first read the output table of the stage before, "+
			"which has no safe high-water mark to go on from; run it without %s (--fresh recomputes every stage)", p.Name, flag, flag)
	case c.Bool("explain"):
		return usagef("mr run "+p.Stages[0]+" --explain", "--explain plans one run, and pipeline %s has %d: "+
			"explain its first stage's job, %s (the later stages' inputs exist once the stages before have run)", p.Name, len(p.Stages), p.Stages[0])
	}
	var alert error // the first stage above --max-failure-rate
	var upstream time.Time
	for i, name := range p.Stages {
		def, err := jobs.Lookup(name)
		if err != nil { // the registry checked the stages; only a bug gets here
			return fmt.Errorf("pipeline %s, stage %d: %w", p.Name, i+1, err)
		}
		job := ends(c)
		job.def = def
		job.freshHint = "--fresh recomputes every stage"
		if job.cfg, err = runConfig(c); err != nil {
			return err
		}
		if err := job.runFlags(c); err != nil {
			return err
		}
		job.cfg.Pipeline, job.cfg.Stage, job.cfg.Stages = p.Name, i+1, len(p.Stages)
		if i > 0 {
			job.sourceURL = job.sinkURL
			job.cfg.Table, job.cfg.Cursor = "", ""
			job.staleBefore = upstream
		}
		out := c.App.Writer
		fmt.Fprintf(out, "stage %d of %d: %s (pipeline %s)\n", i+1, len(p.Stages), name, p.Name)
		sum, err := execute(c.Context, out, c.App.ErrWriter, job, false)
		switch {
		case errors.Is(err, mapreduce.ErrFailureRate):
			alert = cmpOr(alert, fmt.Errorf("pipeline %s, stage %d (%s): %w", p.Name, i+1, name, err))
		case err != nil:
			return err
		}
		ri, err := mapreduce.Inspect(c.Context, job.cfg, sum.RunID)
		if err != nil {
			return err
		}
		upstream = lastCommit(ri)
	}
	return alert
}

// cmpOr returns a if it is not nil, else b.
func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
