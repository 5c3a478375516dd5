package mrcli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/mapreduce"
)

func runsCommand() *cli.Command {
	return &cli.Command{
		Name:  "runs",
		Usage: "list the runs in a work directory, with their state, age and size",
		Description: `Lists each run in --workdir: its id, job, state (planned, mapping,
reducing, done), age, the size of its folder (plan, checkpoints, shuffle
files, dead letters) and its source and sink, without passwords. The age
counts from the run's last commit: for a done run, about when it finished.
mr gc removes the folders of done runs.

` + runJSONHelp,
		Flags:  []cli.Flag{workdirFlag(), jsonFlag("a table")},
		Action: action(runs),
	}
}

// runJSONHelp documents the JSON of mr runs and mr status, which share it.
const runJSONHelp = `With --json, prints one JSON object for scripts, with these fields
(names and meanings are stable; new fields may be added):

  {"runs": [{"run_id", "job", "state", "created", "updated", "age_seconds",
    "size_bytes", "source", "sink", "input_table", "cursor", "output_table",
    "rows_total", "rows_read", "rows_failed", "partitions", "partitions_done",
    "buckets", "buckets_done", "batch", "mark", "pipeline", "stage",
    "stages"}]}

Times are RFC 3339 in UTC; updated is the run's last commit, age_seconds
counts from it; rows_total is the planned (estimated) row count. For an
incremental run (--incremental), batch counts its batches since the full
run (0) and mark is the high-water mark of the cursor that the current
plan reads through; mark is null for a run that is not incremental, and
the rows count the current plan's. For a stage of a pipeline (mr run
PIPELINE), pipeline names it and the run is stage number stage (from 1)
of its stages; for a job run alone pipeline is "" and both are 0.`

// jsonFlag is the --json flag of a command whose output without it is
// the given kind of text.
func jsonFlag(instead string) cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print one JSON document (see above) instead of " + instead, DisableDefaultText: true}
}

func runs(c *cli.Context, args []string) error {
	if len(args) > 0 {
		return usagef("mr runs --help", "mr runs takes no arguments, got %q", args)
	}
	cfg := stateConfig(c)
	entries, err := listEntries(c.Context, cfg)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return writeRunsJSON(c.App.Writer, entries, time.Now())
	}
	if len(entries) == 0 {
		fmt.Fprintf(c.App.Writer, "no runs in %s\n", cfg.Workdir)
		return nil
	}
	now := time.Now()
	w := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "RUN\tJOB\tSTATE\tAGE\tSIZE\tSOURCE\tSINK")
	for _, e := range entries {
		p := e.info.Plan
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.RunID, p.Job, e.info.State(), age(now.Sub(e.updated)),
			humanize.IBytes(uint64(e.size)), pg.Redact(p.Source), pg.Redact(p.Sink))
	}
	return w.Flush()
}

// runEntry is a run of a work directory as mr runs, mr status and mr gc
// show it.
type runEntry struct {
	info    *mapreduce.RunInfo
	updated time.Time // see lastCommit
	size    int64     // bytes of the run's folder
}

// listEntries returns the runs of cfg's work directory, by run id.
func listEntries(ctx context.Context, cfg mapreduce.Config) ([]runEntry, error) {
	infos, err := mapreduce.Runs(ctx, cfg)
	if err != nil {
		return nil, err
	}
	entries := make([]runEntry, 0, len(infos))
	for _, ri := range infos {
		e, err := newEntry(cfg, ri)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	return entries, nil
}

func newEntry(cfg mapreduce.Config, ri *mapreduce.RunInfo) (runEntry, error) {
	size, err := dirSize(runDir(cfg, ri.Plan.RunID))
	return runEntry{info: ri, updated: lastCommit(ri), size: size}, err
}

// runDir is the folder of run in cfg's work directory: mr runs with the
// default mapreduce.DirStore and blob storage, which keep all of a run's
// state there.
func runDir(cfg mapreduce.Config, run string) string { return filepath.Join(cfg.Workdir, run) }

// lastCommit is the time of the run's last commit that its state records:
// the latest checkpoint, or the plan if no partition has committed. For a
// done run it is when its map phase finished; the run state records no
// time for the reduce phase's commits (done markers are rewritten on every
// resume), so this is the closest stable time to when it finished.
func lastCommit(ri *mapreduce.RunInfo) time.Time {
	t := ri.Plan.Created
	for _, cp := range ri.Checkpoints {
		if cp != nil && cp.Updated.After(t) {
			t = cp.Updated
		}
	}
	return t.UTC()
}

// dirSize adds up the sizes of the files under dir; a dir removed meanwhile
// has none.
func dirSize(dir string) (int64, error) {
	var size int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			size += info.Size()
		}
		return nil
	})
	return size, err
}

// age formats d as a few characters: 45s, 12m, 5h, 3d.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// runJSON is a run in the JSON of mr runs and mr status: see runJSONHelp.
type runJSON struct {
	RunID          string    `json:"run_id"`
	Job            string    `json:"job"`
	State          string    `json:"state"`
	Created        time.Time `json:"created"`
	Updated        time.Time `json:"updated"`
	AgeSeconds     int64     `json:"age_seconds"`
	SizeBytes      int64     `json:"size_bytes"`
	Source         string    `json:"source"`
	Sink           string    `json:"sink"`
	InputTable     string    `json:"input_table"`
	Cursor         string    `json:"cursor"`
	OutputTable    string    `json:"output_table"`
	RowsTotal      int64     `json:"rows_total"`
	RowsRead       int64     `json:"rows_read"`
	RowsFailed     int64     `json:"rows_failed"`
	Partitions     int       `json:"partitions"`
	PartitionsDone int       `json:"partitions_done"`
	Buckets        int       `json:"buckets"`
	BucketsDone    int       `json:"buckets_done"`
	Batch          int       `json:"batch"`
	Mark           *int64    `json:"mark"`
	Pipeline       string    `json:"pipeline"`
	Stage          int       `json:"stage"`
	Stages         int       `json:"stages"`
}

func newRunJSON(e runEntry, now time.Time) runJSON {
	ri, p := e.info, e.info.Plan
	read, failed := ri.Rows()
	return runJSON{
		RunID: p.RunID, Job: p.Job, State: string(ri.State()),
		Created: p.Created.UTC(), Updated: e.updated, AgeSeconds: int64(now.Sub(e.updated).Seconds()), SizeBytes: e.size,
		Source: pg.Redact(p.Source), Sink: pg.Redact(p.Sink),
		InputTable: p.Input.Table, Cursor: p.Input.Cursor, OutputTable: p.OutputTable,
		RowsTotal: p.Rows, RowsRead: read, RowsFailed: failed,
		Partitions: len(p.Partitions), PartitionsDone: ri.PartitionsDone(), Buckets: p.Buckets, BucketsDone: len(ri.BucketsDone),
		Batch: p.Batch, Mark: p.Mark,
		Pipeline: p.Pipeline, Stage: p.Stage, Stages: p.Stages,
	}
}

func writeRunsJSON(w io.Writer, entries []runEntry, now time.Time) error {
	doc := struct {
		Runs []runJSON `json:"runs"`
	}{Runs: []runJSON{}}
	for _, e := range entries {
		doc.Runs = append(doc.Runs, newRunJSON(e, now))
	}
	return writeJSON(w, doc)
}

// writeJSON writes v as one indented JSON document, the --json output of
// every command.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
