package mrcli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/spill"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show a shuffle file's schema and rows, or a run's plan and files",
		ArgsUsage: "FILE|RUN",
		Description: `With FILE, a shuffle file (a standard Arrow IPC file), prints its size,
checksum, compression, schema, row count and first --rows rows. With RUN,
a run in --workdir, prints its plan, each partition's checkpoint with the
shuffle and dead-letter files it committed, and its replay manifest.`,
		Flags: []cli.Flag{
			workdirFlag(),
			&cli.IntFlag{Name: "rows", Value: 10, Usage: "print the first `N` rows of a FILE"},
		},
		Action: action(inspect),
	}
}

func inspect(c *cli.Context, args []string) error {
	if len(args) != 1 {
		return usagef("mr inspect --help", "mr inspect takes one FILE or RUN, got %d arguments", len(args))
	}
	if fi, err := os.Stat(args[0]); err == nil && !fi.IsDir() {
		return inspectFile(c.App.Writer, args[0], c.Int("rows"))
	}
	ri, err := mapreduce.Inspect(c.Context, stateConfig(c), args[0])
	if errors.Is(err, mapreduce.ErrNoRun) {
		return usagef("mr status --workdir "+c.String("workdir"), "%s is neither a file nor a run in %s", args[0], c.String("workdir"))
	}
	if err != nil {
		return err
	}
	return showPlan(c.App.Writer, ri)
}

// inspectFile prints what a shuffle file holds, reading its records once.
func inspectFile(out io.Writer, path string, rows int) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	r, err := spill.Decode(path, data)
	if err != nil {
		return err
	}
	defer r.Close()
	var total int64
	var first [][]string
	for i := range r.NumRecords() {
		rec, err := r.Record(i)
		if err != nil {
			return err
		}
		total += rec.NumRows()
		for row := 0; row < int(rec.NumRows()) && len(first) < rows; row++ {
			vals := make([]string, rec.NumCols())
			for c, col := range rec.Columns() {
				vals[c] = col.ValueStr(row)
			}
			first = append(first, vals)
		}
		rec.Release()
	}
	fmt.Fprintf(out, "file         %s\n", path)
	fmt.Fprintf(out, "size         %d bytes (%s)\n", r.Size(), humanize.IBytes(uint64(r.Size())))
	fmt.Fprintf(out, "checksum     %016x (XXH64)\n", r.Checksum())
	fmt.Fprintf(out, "compression  %s\n", r.Compression())
	fmt.Fprintf(out, "records      %d batches, %d rows\n", r.NumRecords(), total)
	fmt.Fprintln(out, "schema")
	var names []string
	for _, f := range r.Schema().Fields() {
		fmt.Fprintf(out, "  %s: %s\n", f.Name, f.Type)
		names = append(names, f.Name)
	}
	if len(first) == 0 {
		return nil
	}
	fmt.Fprintf(out, "first %d rows\n", len(first))
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  "+strings.Join(names, "\t"))
	for _, vals := range first {
		fmt.Fprintln(w, "  "+strings.Join(vals, "\t"))
	}
	return w.Flush()
}

// showPlan prints a run's plan with every partition's committed files.
func showPlan(out io.Writer, ri *mapreduce.RunInfo) error {
	p := ri.Plan
	printPlan(out, p, true, 0)
	fmt.Fprintf(out, "state   %s\n", ri.State())
	fmt.Fprintf(out, "commit  %s (seed %d)\n", p.Commit, p.Seed)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\nPARTITION\tRANGE\tEST. ROWS\tNEXT\tDONE\tCOMMITS\tUPDATED")
	for part, pp := range p.Partitions {
		cp := ri.Checkpoints[part]
		if cp == nil {
			fmt.Fprintf(w, "%d\t%s\t%d\t%d\tno\t0\t-\n", part, pp.Range, pp.Rows, pp.Lo)
			continue
		}
		fmt.Fprintf(w, "%d\t%s\t%d\t%d\t%s\t%d\t%s\n", part, pp.Range, pp.Rows, cp.Next, yesNo(cp.Done), cp.Seq, cp.Updated.Format(time.RFC3339))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\nFILE\tPARTITION\tBUCKET\tROWS\tSIZE\tCHECKSUM")
	for part, cp := range ri.Checkpoints {
		if cp == nil {
			continue
		}
		for _, f := range cp.Files {
			fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%016x\n", f.Key, part, f.Bucket, f.Rows, f.Size, f.Checksum)
		}
		for _, f := range cp.DeadLetters {
			fmt.Fprintf(w, "%s\t%d\t-\t%d\t%d\t%016x\n", f.Key, part, f.Letters, f.Size, f.Checksum)
		}
	}
	if ri.Replay != nil {
		for _, f := range ri.Replay.Files {
			fmt.Fprintf(w, "%s\treplay %d\t%d\t%d\t%d\t%016x\n", f.Key, f.Generation, f.Bucket, f.Rows, f.Size, f.Checksum)
		}
	}
	return w.Flush()
}
