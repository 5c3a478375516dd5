package mrcli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/mapreduce"
)

func dlqCommand() *cli.Command {
	return &cli.Command{
		Name:  "dlq",
		Usage: "read the dead-letter queue of a run",
		Description: `Rows whose map failed on every attempt are written, with their error, to
the run's dead-letter queue: one file per partition, <workdir>/<run>/dlq/.
These commands show the letters that the partitions' checkpoints have
committed.`,
		Subcommands: []*cli.Command{
			{
				Name:      "list",
				Usage:     "count the dead letters of each partition, with the first error",
				ArgsUsage: "[RUN]",
				Flags:     []cli.Flag{workdirFlag()},
				Action:    action(dlqList),
			},
			{
				Name:      "show",
				Usage:     "print the dead letters of a run as JSON lines",
				ArgsUsage: "RUN",
				Flags: []cli.Flag{
					workdirFlag(),
					&cli.IntFlag{Name: "partition", Value: -1, Usage: "only the letters of partition `N`", DefaultText: "all"},
				},
				Action: action(dlqShow),
			},
			{
				Name:      "replay",
				Usage:     "re-map the dead letters of a finished run, after a fix, and re-apply its buckets",
				ArgsUsage: "JOB",
				Description: `Identifies the run like mr run (give the same JOB and flags), reads each
dead letter's row again from --source by its cursor and maps it again.
The rows that now succeed count in the output: every bucket is reduced
again and upserted into --sink. The rows that still fail stay in the
dead-letter queue. Replaying again is harmless.`,
				Flags:  replayFlags(),
				Action: action(dlqReplay),
			},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("mr dlq --help", "unknown command %q for mr dlq", c.Args().First())
			}
			return cli.ShowSubcommandHelp(c)
		},
	}
}

// replayFlags are mr run's flags, which identify the run, but for those
// that do not apply to a replay.
func replayFlags() []cli.Flag {
	var flags []cli.Flag
	for _, f := range runCommand().Flags {
		switch f.Names()[0] {
		case "explain", "fresh":
		default:
			flags = append(flags, f)
		}
	}
	return flags
}

func dlqReplay(c *cli.Context, args []string) (err error) {
	job, err := parseJobCommand(c, args, "dlq replay")
	if err != nil {
		return err
	}
	defer func() { err = pg.Scrub(err, pg.Secrets(job.sourceURL, job.sinkURL)...) }()
	src, sink, closeEnds, err := job.open(c.Context)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeEnds()) }()
	cfg := job.cfg
	limitHeap(cfg.Memory)
	prog, log := newProgress(c.App.ErrWriter)
	cfg.Logger, cfg.Progress = log, prog
	res, err := mapreduce.Replay(c.Context, job.def, src, sink, cfg)
	prog.Close(err)
	if errors.Is(err, mapreduce.ErrNotFinished) {
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

func dlqList(c *cli.Context, args []string) error {
	store := mapreduce.DirStore{Dir: c.String("workdir")}
	var ids []string
	switch len(args) {
	case 0:
		var err error
		if ids, err = runIDs(c.Context, store); err != nil {
			return err
		}
	case 1:
		ids = args
	default:
		return usagef("mr dlq list --help", "mr dlq list takes at most one RUN, got %q", args)
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "RUN\tPARTITION\tLETTERS\tFIRST CURSOR\tFIRST ERROR")
	for _, id := range ids {
		letters, err := deadLetters(c.Context, store, id)
		if err != nil {
			return err
		}
		for part, ls := range letters {
			if len(ls) > 0 {
				fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\n", id, part, len(ls), ls[0].Cursor, ls[0].Error)
			}
		}
	}
	return w.Flush()
}

func dlqShow(c *cli.Context, args []string) error {
	if len(args) != 1 {
		return usagef("mr dlq list --workdir "+c.String("workdir"), "mr dlq show takes one RUN, got %d arguments", len(args))
	}
	store := mapreduce.DirStore{Dir: c.String("workdir")}
	letters, err := deadLetters(c.Context, store, args[0])
	if err != nil {
		return err
	}
	part := c.Int("partition")
	if part < -1 || part >= len(letters) {
		return usagef("mr dlq list "+args[0]+" --workdir "+store.Dir, "--partition must be between 0 and %d for run %s, got %d", len(letters)-1, args[0], part)
	}
	enc := json.NewEncoder(c.App.Writer)
	enc.SetEscapeHTML(false)
	for p, ls := range letters {
		if part >= 0 && p != part {
			continue
		}
		for _, l := range ls {
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
	}
	return nil
}

// deadLetters returns a run's committed dead letters, per partition. A DLQ
// file may run past its partition's checkpoint (letters written since, by
// a task still running or one that died); those are left out, as a resume
// cuts them off and writes them again. A finished partition's file is read
// whole: nothing appends to it any more, and mr dlq replay replaces it
// before it saves the checkpoint. Letters that a replay resolved do not
// count.
func deadLetters(ctx context.Context, store mapreduce.DirStore, run string) ([][]mapreduce.DeadLetter, error) {
	st, err := loadRun(ctx, store, run)
	if err != nil {
		return nil, err
	}
	letters := make([][]mapreduce.DeadLetter, len(st.plan.Partitions))
	m, err := mapreduce.LoadReplayManifest(store.RunDir(run), st.plan)
	if err != nil {
		return nil, err
	}
	for part, cp := range st.checkpoints {
		if cp == nil {
			continue
		}
		path := filepath.Join(store.RunDir(run), "dlq", fmt.Sprintf("p%04d.jsonl", part))
		var ls []mapreduce.DeadLetter
		switch {
		case cp.Done:
			if ls, err = mapreduce.ReadDeadLetterFile(path); err != nil {
				return nil, err
			}
		case cp.DLQBytes > 0:
			data, err := readPrefix(path, cp.DLQBytes)
			if err != nil {
				return nil, err
			}
			if ls, err = mapreduce.ReadDeadLetters(data); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		}
		for _, l := range ls {
			if _, ok := slices.BinarySearch(m.Cursors, l.Cursor); !ok {
				letters[part] = append(letters[part], l)
			}
		}
	}
	return letters, nil
}

// readPrefix reads the first n bytes of the file at path.
func readPrefix(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s is missing, but the checkpoint of its partition counts %d bytes of dead letters", path, n)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data := make([]byte, n)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("%s: shorter than the %d bytes its checkpoint counts: %w", path, n, err)
	}
	return data, nil
}
