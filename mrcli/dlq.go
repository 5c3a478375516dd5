package mrcli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/internal/redact"
	"github.com/mrengine/mr/mapreduce"
)

func dlqCommand() *cli.Command {
	return &cli.Command{
		Name:  "dlq",
		Usage: "read the dead-letter queue of a run",
		Description: `Rows whose map failed on every attempt are written, with their error, to
the run's dead-letter queue: a file per partition and commit, next to the
run's shuffle files. These commands show the letters that the partitions'
checkpoints have committed, each file checked against its checksum.`,
		Subcommands: []*cli.Command{
			{
				Name:      "list",
				Usage:     "count the dead letters of each error",
				ArgsUsage: "[RUN]",
				Description: `Lists, for each distinct error of RUN (of every run in --workdir without
RUN), how many rows failed with it, in which partitions, and the lowest
cursor among them (for mr dlq show), most letters first: a Map bug that
failed a million rows is one line.

With --json, prints one JSON object for scripts (names and meanings are
stable; new fields may be added):

  {"errors": [{"run_id", "error", "letters", "partitions", "first_cursor", "stack"}]}`,
				Flags: []cli.Flag{workdirFlag(), jsonFlag("a table"),
					coordinatorFlag("read the runs submitted to the coordinator database at `URL` (mr run --coordinator), whose dead letters are in their --storage")},
				Action: action(dlqList),
			},
			{
				Name:      "show",
				Usage:     "print the dead letters of a run as JSON lines",
				ArgsUsage: "RUN",
				Description: `Prints each dead letter of RUN as one JSON object per line: job, run,
partition, cursor (the row's cursor value), row (column name → value),
error, stack (where Map panicked, if it did), attempts and time (RFC 3339).

With --json, prints one JSON object instead, for scripts (names and
meanings are stable; new fields may be added):

  {"run_id", "dead_letters": [{"job", "run", "partition", "cursor", "row",
    "error", "stack", "attempts", "time"}]}`,
				Flags: []cli.Flag{
					workdirFlag(),
					jsonFlag("JSON lines"),
					coordinatorFlag("read the run submitted to the coordinator database at `URL` (mr run --coordinator), whose dead letters are in its --storage"),
					&cli.IntFlag{Name: "partition", Value: -1, Usage: "only the letters of partition `N`", DefaultText: "all"},
				},
				Action: action(dlqShow),
			},
			{
				Name:      "replay",
				Usage:     "re-map the dead letters of a finished run, after a fix, and re-apply its buckets",
				ArgsUsage: `JOB | --rollup "SELECT …"`,
				Description: `Identifies the run like mr run (give the same JOB and flags), or like
mr rollup with --rollup (give the same query and flags), reads each dead
letter's row again from --source by its cursor and maps it again. The
rows that now succeed count in the output: the buckets their keys hash
to are reduced again and upserted into --sink. The rows that still fail
stay in the dead-letter queue. Replaying again is harmless.`,
				Flags:  replayFlags(),
				Action: action(dlqReplay),
			},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return unknownCommand(c, "dlq")
			}
			return cli.ShowSubcommandHelp(c)
		},
	}
}

// replayFlags are mr run's flags, which identify the run, but for those
// that do not apply to a replay.
func replayFlags() []cli.Flag {
	flags := append(rollupFlags(), &cli.BoolFlag{Name: "rollup", DisableDefaultText: true,
		Usage: "replay the run of mr rollup with this query (the argument) and these flags"})
	for _, f := range runCommand().Flags {
		switch f.Names()[0] {
		case "explain", "fresh", "metrics-addr", "follow", "interval", "coordinator", "storage", "detach":
		case "incremental":
			flags = append(flags, &cli.BoolFlag{Name: "incremental", DisableDefaultText: true,
				Usage: "the run was started with --incremental (or --follow): part of its name"})
		default:
			flags = append(flags, f)
		}
	}
	return flags
}

func dlqReplay(c *cli.Context, args []string) (err error) {
	var job jobCommand
	if c.Bool("rollup") {
		job, _, err = parseRollupCommand(c, args)
	} else {
		job, err = parseJobCommand(c, args, "dlq replay")
	}
	if err != nil {
		return err
	}
	defer func() { err = redact.Error(err, pg.Secrets(job.sourceURL, job.sinkURL)...) }()
	src, sink, closeEnds, err := job.open(c.Context)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeEnds()) }()
	cfg := job.cfg
	limitHeap(cfg.Memory)
	prog, log := newProgress(c.App.ErrWriter, job.logFormat)
	cfg.Logger, cfg.Progress = log, prog
	res, err := mapreduce.Replay(c.Context, job.def, src, sink, cfg)
	prog.Close(err)
	if errors.Is(err, mapreduce.ErrNotFinished) {
		if c.Bool("rollup") {
			return usagef("mr rollup --help", "%v: run mr rollup with the same query and flags first", err)
		}
		return usagef("mr run "+args[0]+" --help", "%v: run mr run %s with the same flags first", err, args[0])
	}
	if err != nil {
		if res.RunID != "" {
			return fmt.Errorf("%w\nreplay of run %s stopped: fix the cause and replay again", err, res.RunID)
		}
		return err
	}
	fmt.Fprintln(c.App.Writer, res)
	return nil
}

func dlqList(c *cli.Context, args []string) (err error) {
	states, err := openRunStates(c)
	if err != nil {
		return err
	}
	defer closeInto(&err, states)
	var runs []*mapreduce.RunInfo
	switch len(args) {
	case 0:
		if runs, err = states.all(); err != nil {
			return err
		}
	case 1:
		ri, err := states.inspect(args[0])
		if err != nil {
			return err
		}
		runs = append(runs, ri)
	default:
		return usagef("mr dlq list --help", "mr dlq list takes at most one RUN, got %q", args)
	}
	doc := dlqListJSON{Errors: []dlqErrorJSON{}}
	for _, ri := range runs {
		errs, err := ri.DeadLetterErrors(c.Context, mapreduce.DeadLetterFilter{})
		if err != nil {
			return err
		}
		for _, e := range errs {
			doc.Errors = append(doc.Errors, dlqErrorJSON{RunID: ri.Plan.RunID, ErrorCount: e})
		}
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, doc)
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "RUN\tLETTERS\tPARTITIONS\tFIRST CURSOR\tERROR")
	for _, e := range doc.Errors {
		fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%s\n", e.RunID, e.Letters, partitionList(e.Partitions), e.FirstCursor, e.Error)
	}
	return w.Flush()
}

// partitionList spells partitions for a table cell: all of them up to a
// few, else the first few and how many more.
func partitionList(parts []int) string {
	const show = 4
	s := make([]string, 0, show+1)
	for i, p := range parts {
		if i == show {
			s = append(s, fmt.Sprintf("+%d", len(parts)-show))
			break
		}
		s = append(s, strconv.Itoa(p))
	}
	return strings.Join(s, ",")
}

// dlqListJSON is the JSON of mr dlq list, and the rows of its table.
type dlqListJSON struct {
	Errors []dlqErrorJSON `json:"errors"`
}

type dlqErrorJSON struct {
	RunID string `json:"run_id"`
	mapreduce.ErrorCount
}

func dlqShow(c *cli.Context, args []string) (err error) {
	cfg := stateConfig(c)
	if len(args) != 1 {
		return usagef("mr dlq list --workdir "+cfg.Workdir, "mr dlq show takes one RUN, got %d arguments", len(args))
	}
	var filter mapreduce.DeadLetterFilter
	if part := c.Int("partition"); part != -1 {
		filter.Partitions = []int{part}
	}
	states, err := openRunStates(c)
	if err != nil {
		return err
	}
	defer closeInto(&err, states)
	ri, err := states.inspect(args[0])
	if err != nil {
		return err
	}
	letters, err := ri.DeadLetters(c.Context, filter)
	if errors.Is(err, mapreduce.ErrNoPartition) {
		return usagef("mr dlq list "+args[0]+" --workdir "+cfg.Workdir, "--partition must be between 0 and %d for run %s, got %d",
			len(ri.Checkpoints)-1, args[0], filter.Partitions[0])
	}
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, struct {
			RunID       string                 `json:"run_id"`
			DeadLetters []mapreduce.DeadLetter `json:"dead_letters"`
		}{ri.Plan.RunID, append([]mapreduce.DeadLetter{}, letters...)})
	}
	enc := json.NewEncoder(c.App.Writer)
	enc.SetEscapeHTML(false)
	for _, l := range letters {
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	return nil
}
