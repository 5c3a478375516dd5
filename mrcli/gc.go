package mrcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/mrengine/mr/internal/dburl"
	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/sinks"
)

func gcCommand() *cli.Command {
	return &cli.Command{
		Name:  "gc",
		Usage: "remove the state of done runs older than an age",
		Description: `Removes from --workdir the folder of every done run whose last commit
(see mr runs) is older than --older-than: its plan, checkpoints, shuffle
files and dead letters. The output table it wrote stays; running the same
command again plans the run anew and recomputes it. Runs that are not done
are kept whatever their age, since they resume, and so is a run that
another process has open. With --dry-run, lists what would go and removes
nothing.

It also removes what the sink recorded of each removed run: its rows of
mr_bucket_commits (one per bucket, under the COMMIT shown, and under
COMMIT.replayN for each mr dlq replay) and a claim on its output table in
mr_table_owners it left. A sink it cannot reach is reported and skipped:
the run's state is removed all the same, and its records there stay.

With --coordinator, it removes instead, for every run submitted there
whose phase is done, the files in its --storage that no committed state
names: those of attempts that died, or were fenced, before their commit.
Runs that workers still run are left alone, since their files in flight
are among those. --dry-run counts them and removes nothing.`,
		Flags: []cli.Flag{
			workdirFlag(),
			coordinatorFlag("collect the files of failed attempts of the runs done in the coordinator database at `URL` (see above)"),
			&cli.StringFlag{Name: "older-than", Value: "7d", Usage: "remove done runs whose last commit is older than `AGE`: 7d, 36h, 90m; 0 for every done run"},
			&cli.BoolFlag{Name: "dry-run", Usage: "list the runs that would be removed, and remove nothing", DisableDefaultText: true},
		},
		Action: action(gc),
	}
}

func gc(c *cli.Context, args []string) error {
	if len(args) > 0 {
		return usagef("mr gc --help", "mr gc takes no arguments, got %q", args)
	}
	olderThan, err := parseAge(c.String("older-than"))
	if err != nil {
		return usagef("mr gc --help", "invalid --older-than %q: %v", c.String("older-than"), err)
	}
	if dsn := c.String("coordinator"); dsn != "" {
		if c.IsSet("older-than") {
			return usagef("mr gc --help", "with --coordinator, mr gc removes the files of failed attempts of done runs, whatever their age: leave out --older-than")
		}
		return gcAttempts(c, dsn, c.Bool("dry-run"))
	}
	cfg := stateConfig(c)
	entries, err := listEntries(c.Context, cfg)
	if err != nil {
		return err
	}
	now := time.Now()
	old, kept := garbage(entries, now, olderThan)
	dry := c.Bool("dry-run")
	var removed []runEntry
	for _, e := range old {
		if !dry {
			ok, err := removeRun(c.Context, cfg, e)
			if err != nil {
				return err
			}
			if !ok {
				kept.inUse++
				continue
			}
		}
		removed = append(removed, e)
	}
	if err := printGC(c.App.Writer, removed, kept, now, c.String("older-than"), dry); err != nil || dry {
		return err
	}
	forgetRuns(c.Context, c.App.Writer, c.App.ErrWriter, removed)
	return nil
}

// keptRuns counts the runs mr gc leaves, by reason.
type keptRuns struct {
	unfinished int // not done: they resume
	recent     int // done within --older-than
	inUse      int // open in another process, or changed since listed
}

// garbage splits entries into the done runs whose last commit is at least
// olderThan before now, and counts the others.
func garbage(entries []runEntry, now time.Time, olderThan time.Duration) (old []runEntry, kept keptRuns) {
	for _, e := range entries {
		switch {
		case e.info.State() != mapreduce.StateDone:
			kept.unfinished++
		case now.Sub(e.updated) < olderThan:
			kept.recent++
		default:
			old = append(old, e)
		}
	}
	return old, kept
}

// removeRun removes the folder of e's run while holding the run's lock, so
// that no process resumes it meanwhile, and only if the run is still the
// one listed: done, under the same plan. It reports false for a run that
// is in use or changed.
func removeRun(ctx context.Context, cfg mapreduce.Config, e runEntry) (bool, error) {
	id := e.info.Plan.RunID
	unlock, err := mapreduce.DirStore{Dir: cfg.Workdir}.Lock(ctx, id)
	if errors.Is(err, mapreduce.ErrRunInUse) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ri, err := mapreduce.Inspect(ctx, cfg, id)
	if err == nil && ri.State() == mapreduce.StateDone && ri.Plan.Commit == e.info.Plan.Commit {
		err = os.RemoveAll(runDir(cfg, id))
		return err == nil, errors.Join(err, unlock())
	}
	if errors.Is(err, mapreduce.ErrNoRun) { // removed by another mr gc
		err = nil
	}
	return false, errors.Join(err, unlock())
}

func printGC(out io.Writer, removed []runEntry, kept keptRuns, now time.Time, olderThan string, dry bool) error {
	verb := "removed"
	if dry {
		verb = "would remove"
	}
	var size int64
	if len(removed) > 0 {
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "RUN\tJOB\tAGE\tSIZE\tCOMMIT")
		for _, e := range removed {
			p := e.info.Plan
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", p.RunID, p.Job, age(now.Sub(e.updated)), humanize.IBytes(uint64(e.size)), p.Commit)
			size += e.size
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "%s %d %s (%s); kept %d not done, %d done within %s",
		verb, len(removed), plural(len(removed), "run", "runs"), humanize.IBytes(uint64(size)), kept.unfinished, kept.recent, olderThan)
	if kept.inUse > 0 {
		fmt.Fprintf(out, ", %d in use", kept.inUse)
	}
	fmt.Fprintln(out)
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// parseAge parses an age: a whole number of days (7d) or a Go duration
// (36h, 90m), not negative.
func parseAge(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, errors.New("want a number of days such as 7d, or a duration such as 36h")
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, errors.New("want a number of days such as 7d, or a duration such as 36h")
		}
	}
	if d < 0 {
		return 0, errors.New("an age cannot be negative")
	}
	return d, nil
}

// forgetter is a sink that can remove what it records of a run: see
// sinks.SQLite.Forget and sinks.Postgres.Forget.
type forgetter interface {
	Forget(ctx context.Context, table, run, commit string) (int64, error)
}

// forgetTimeout bounds the time mr gc spends on one sink, connecting
// included: a sink that does not answer must not keep it from finishing,
// since the run state is removed already.
const forgetTimeout = 30 * time.Second

// forgetRuns asks the sink of each removed run to forget it, and prints
// how many commit records each sink removed. A sink that is gone (a
// deleted SQLite file, which opening would create again, or a server that
// does not answer) or fails is reported on errOut with the SQL that
// removes the records by hand, and the others go on: the run state is
// what mr gc is for, and it is removed already.
func forgetRuns(ctx context.Context, out, errOut io.Writer, removed []runEntry) {
	bySink := map[string][]*mapreduce.Plan{}
	var order []string
	for _, e := range removed {
		p := e.info.Plan
		if bySink[p.Sink] == nil {
			order = append(order, p.Sink)
		}
		bySink[p.Sink] = append(bySink[p.Sink], p)
	}
	for _, url := range order {
		plans := bySink[url]
		n, err := forgetIn(ctx, url, plans)
		if err != nil {
			fmt.Fprintf(errOut, "mr gc: warning: %v; the records of %d removed %s stay there: %s\n",
				err, len(plans), plural(len(plans), "run", "runs"), sinks.ForgetSQL(commitsOf(plans)))
			continue
		}
		fmt.Fprintf(out, "forgot %d bucket %s of %d %s in %s\n", n, plural(int(n), "commit", "commits"),
			len(plans), plural(len(plans), "run", "runs"), pg.Redact(url))
	}
}

// forgetIn forgets plans' runs in the sink at url, returning the commit
// records removed.
func forgetIn(ctx context.Context, url string, plans []*mapreduce.Plan) (n int64, err error) {
	if kind, path, perr := dburl.Parse(url); perr == nil && kind == dburl.SQLite {
		if _, err := os.Stat(path); err != nil {
			return 0, fmt.Errorf("sink %s is gone (%w)", url, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, forgetTimeout)
	defer cancel()
	sink, err := sinks.Open(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("cannot open sink %s: %w", pg.Redact(url), err)
	}
	defer closeInto(&err, sink)
	f, ok := sink.(forgetter)
	if !ok {
		return 0, fmt.Errorf("sink %s cannot forget runs", pg.Redact(url))
	}
	for _, p := range plans {
		m, err := f.Forget(ctx, p.OutputTable, p.RunID, p.Commit)
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

// commitsOf lists the plans' commits.
func commitsOf(plans []*mapreduce.Plan) []string {
	commits := make([]string, len(plans))
	for i, p := range plans {
		commits[i] = p.Commit
	}
	return commits
}
