package mrcli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/internal/sqlname"
	"github.com/mrengine/mr/jobs"
	"github.com/mrengine/mr/mapreduce"
)

// The demo's data: a fixed seed, so that a second demo finds the same
// rows and resumes; one poison payload in 10,000 for the dead-letter
// queue; and a few id gaps, as deleted rows leave.
const (
	demoSeed       = 1
	demoPoisonRate = 0.0001
	demoGapEvery   = 100
	demoTopRows    = 10
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "seed an events table in SQLite and run daily_rollup over it",
		Description: `Seeds the events table of the SQLite file --db with --rows generated
events (a few of them with poison payloads), unless it already holds
exactly those rows, runs the built-in job daily_rollup over it into the
table daily_rollup of the same file, and prints the summary and the top
rows. Running it again reuses the rows and resumes the run.`,
		Flags: []cli.Flag{
			&cli.Int64Flag{Name: "rows", Value: 1_000_000, Usage: "seed `N` events"},
			&cli.StringFlag{Name: "db", Value: "mr-demo.db", Usage: "SQLite `FILE` to seed and write to"},
			workdirFlag(),
			workersFlag(),
			logFormatFlag(),
		},
		Action: action(demo),
	}
}

func demoEvents(rows int64) eventgen.Config {
	return eventgen.Config{Rows: rows, Seed: demoSeed, PoisonRate: demoPoisonRate, GapEvery: demoGapEvery}
}

func demo(c *cli.Context, args []string) error {
	if len(args) > 0 {
		return usagef("mr demo --help", "mr demo takes no arguments, got %q", args)
	}
	rows, db := c.Int64("rows"), c.String("db")
	if rows < 1 {
		return usagef("mr demo --help", "--rows must be at least 1, got %d", rows)
	}
	if db == "" {
		return usagef("mr demo --help", "--db must name a file")
	}
	// Checked before seeding, which takes seconds for a million rows.
	format, err := setLogFormat(c)
	if err != nil {
		return err
	}
	cfg := mapreduce.DefaultConfig()
	cfg.Workdir, cfg.Workers = c.String("workdir"), c.Int("workers")
	if err := cfg.Validate(); err != nil {
		return usagef("mr demo --help", "%v", err)
	}
	ctx, out := c.Context, c.App.Writer
	def, err := jobs.Lookup(jobs.DailyRollup.Name)
	if err != nil {
		return err
	}
	output := def.Spec().Output.Name

	gen := demoEvents(rows)
	seeded, err := eventgen.Seeded(ctx, db, gen)
	if err != nil {
		return err
	}
	if seeded {
		fmt.Fprintf(out, "reusing the %d events in %s\n", rows, db)
	} else {
		start := time.Now()
		if err := eventgen.SeedSQLite(ctx, db, gen); err != nil {
			return err
		}
		// New rows: an earlier run's state and output describe other ones.
		if err := dropTable(ctx, db, output); err != nil {
			return err
		}
		fmt.Fprintf(out, "seeded %d events into %s in %s\n", rows, db, time.Since(start).Round(time.Millisecond))
	}

	cfg.Fresh = !seeded
	url := "sqlite:" + db
	if _, err := execute(ctx, out, c.App.ErrWriter, jobCommand{def: def, sourceURL: url, sinkURL: url, cfg: cfg, resume: resumeCommand(c), logFormat: format}, false); err != nil {
		return err
	}
	return printTop(ctx, out, db, output, demoTopRows)
}

func openDB(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", sqlname.SQLiteURI(path, "_pragma=busy_timeout(10000)"))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

func dropTable(ctx context.Context, path, table string) (err error) {
	db, err := openDB(path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	if _, err := db.ExecContext(ctx, `DROP TABLE IF EXISTS "`+table+`"`); err != nil {
		return fmt.Errorf("drop table %s of %s: %w", table, path, err)
	}
	return nil
}

// printTop prints the n rows of daily_rollup with the largest totals, as
// an aligned table.
func printTop(ctx context.Context, out io.Writer, path, table string, n int) (err error) {
	db, err := openDB(path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	var count int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+table+`"`).Scan(&count); err != nil {
		return fmt.Errorf("read %s of %s: %w", table, path, err)
	}
	rows, err := db.QueryContext(ctx, `SELECT account_id, day, category, events, total_cents FROM "`+table+`"
		ORDER BY total_cents DESC, account_id, day, category LIMIT ?`, n)
	if err != nil {
		return fmt.Errorf("read %s of %s: %w", table, path, err)
	}
	defer rows.Close()
	fmt.Fprintf(out, "\n%s: %d rows; the %d with the largest total_cents:\n", table, count, n)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "account_id\tday\tcategory\tevents\ttotal_cents\t")
	for rows.Next() {
		var account, events, cents int64
		var day any
		var category string
		if err := rows.Scan(&account, &day, &category, &events, &cents); err != nil {
			return fmt.Errorf("read %s of %s: %w", table, path, err)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%d\t\n", account, dayText(day), category, events, cents)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s of %s: %w", table, path, err)
	}
	return w.Flush()
}

// dayText formats a day column as SQLite returns it.
func dayText(v any) string {
	switch d := v.(type) {
	case time.Time:
		return d.UTC().Format(time.DateOnly)
	case []byte:
		return string(d)
	case int64: // days since the epoch
		return mapreduce.Date(d).String()
	default:
		return fmt.Sprint(d)
	}
}
