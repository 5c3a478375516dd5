package mrcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/mapreduce"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show the progress of the runs in a work directory",
		ArgsUsage: "[RUN]",
		Description: `Without RUN, lists the runs in --workdir with their partitions and buckets
done. With RUN, shows each partition (cursor range, next cursor, rows read
and failed, done) and each bucket (applied to the sink or not).`,
		Flags:  []cli.Flag{workdirFlag()},
		Action: action(status),
	}
}

func status(c *cli.Context, args []string) error {
	store := mapreduce.DirStore{Dir: c.String("workdir")}
	switch len(args) {
	case 0:
		return listRuns(c.Context, c.App.Writer, store)
	case 1:
		return showRun(c.Context, c.App.Writer, store, args[0])
	default:
		return usagef("mr status --help", "mr status takes at most one RUN, got %q", args)
	}
}

// runState is a run's plan with its checkpoints and done buckets.
type runState struct {
	plan        *mapreduce.Plan
	checkpoints []*mapreduce.Checkpoint // nil where a partition has none yet
	bucketsDone []int
}

func loadRun(ctx context.Context, store mapreduce.DirStore, run string) (*runState, error) {
	plan, err := store.LoadPlan(ctx, run)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usagef("mr status --workdir "+store.Dir, "no run %q in %s", run, store.Dir)
	}
	if err != nil {
		return nil, err
	}
	st := &runState{plan: plan, checkpoints: make([]*mapreduce.Checkpoint, len(plan.Partitions))}
	for part := range plan.Partitions {
		if st.checkpoints[part], err = store.LoadCheckpoint(ctx, run, part); err != nil {
			return nil, fmt.Errorf("run %s partition %d: %w", run, part, err)
		}
	}
	if st.bucketsDone, err = store.BucketsDone(ctx, run); err != nil {
		return nil, fmt.Errorf("run %s: %w", run, err)
	}
	return st, nil
}

// partitionsDone counts the partitions whose map task finished.
func (st *runState) partitionsDone() int {
	n := 0
	for _, cp := range st.checkpoints {
		if cp != nil && cp.Done {
			n++
		}
	}
	return n
}

// rows returns the rows read and failed, as committed.
func (st *runState) rows() (read, failed int64) {
	for _, cp := range st.checkpoints {
		if cp != nil {
			read += cp.Rows
			failed += cp.Failed
		}
	}
	return read, failed
}

// runIDs lists the runs in store's directory, by name.
func runIDs(ctx context.Context, store mapreduce.DirStore) ([]string, error) {
	entries, err := os.ReadDir(store.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := store.LoadPlan(ctx, e.Name()); err == nil {
			ids = append(ids, e.Name())
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func listRuns(ctx context.Context, out io.Writer, store mapreduce.DirStore) error {
	ids, err := runIDs(ctx, store)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		fmt.Fprintf(out, "no runs in %s\n", store.Dir)
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "RUN\tJOB\tCREATED\tROWS\tFAILED\tPARTITIONS\tBUCKETS")
	for _, id := range ids {
		st, err := loadRun(ctx, store, id)
		if err != nil {
			return err
		}
		read, failed := st.rows()
		fmt.Fprintf(w, "%s\t%s\t%s\t%d/%d\t%d\t%d/%d\t%d/%d\n", id, st.plan.Job, st.plan.Created.Format(time.RFC3339),
			read, st.plan.Rows, failed, st.partitionsDone(), len(st.plan.Partitions), len(st.bucketsDone), st.plan.Buckets)
	}
	return w.Flush()
}

func showRun(ctx context.Context, out io.Writer, store mapreduce.DirStore, run string) error {
	st, err := loadRun(ctx, store, run)
	if err != nil {
		return err
	}
	p := st.plan
	read, failed := st.rows()
	fmt.Fprintf(out, "run      %s\n", p.RunID)
	fmt.Fprintf(out, "job      %s\n", p.Job)
	fmt.Fprintf(out, "created  %s\n", p.Created.Format(time.RFC3339))
	fmt.Fprintf(out, "source   %s (table %s, cursor %s)\n", pg.Redact(p.Source), p.Input.Table, p.Input.Cursor)
	fmt.Fprintf(out, "sink     %s (table %s)\n", pg.Redact(p.Sink), p.OutputTable)
	fmt.Fprintf(out, "rows     %d/%d read, %d failed\n", read, p.Rows, failed)
	fmt.Fprintf(out, "map      %d/%d partitions done\n", st.partitionsDone(), len(p.Partitions))
	fmt.Fprintf(out, "reduce   %d/%d buckets done\n\n", len(st.bucketsDone), p.Buckets)

	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "PARTITION\tRANGE\tNEXT\tROWS\tFAILED\tDONE")
	for part, r := range p.Partitions {
		cp := st.checkpoints[part]
		if cp == nil { // not started
			cp = &mapreduce.Checkpoint{Next: r.Lo}
		}
		fmt.Fprintf(w, "%d\t%s\t%d\t%d\t%d\t%s\n", part, r, cp.Next, cp.Rows, cp.Failed, yesNo(cp.Done))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "BUCKET\tDONE")
	for b := range p.Buckets {
		fmt.Fprintf(w, "%d\t%s\n", b, yesNo(slices.Contains(st.bucketsDone, b)))
	}
	return w.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
