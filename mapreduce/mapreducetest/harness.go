package mapreducetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for the fixtures and reading output
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"

	"github.com/mrengine/mr/internal/crashpoint"
	"github.com/mrengine/mr/internal/sqlname"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/rollup"
	"github.com/mrengine/mr/sinks"
	"github.com/mrengine/mr/sources"
)

// TB is the part of testing.TB the harness uses; *testing.T and
// *testing.B are TBs. Fatalf must not return.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// Options say where the fixtures and the output live, and how runs are
// configured.
type Options struct {
	// DSN names a PostgreSQL database (a postgres:// URL or key=value
	// DSN) to hold the fixtures and the output tables instead of a fresh
	// SQLite file in t.TempDir(). Use a database or schema reserved for
	// tests: the harness creates its tables there (failing if they exist),
	// and drops them, and the output tables of its runs, in t.Cleanup.
	DSN string
	// ConfigFunc, if set, changes the run configuration (see Config)
	// before every run.
	ConfigFunc func(*mapreduce.Config)
}

// Config returns the configuration the harness runs with: a Workdir of
// its own in t.TempDir(); 3 partitions, 3 buckets and chunks of 4 rows, so
// that even a fixture of a dozen rows crosses partition, bucket and chunk
// boundaries; a commit after every chunk, so that every chunk boundary is
// a commit point for KillAndResume; retries that wait microseconds;
// MaxFailureRate 1, so that failed rows are for CheckDeadLetters to judge
// rather than an error; and no logs.
func Config(t TB) mapreduce.Config {
	cfg := mapreduce.DefaultConfig()
	cfg.Workdir = t.TempDir()
	cfg.Partitions, cfg.Buckets, cfg.ChunkSize, cfg.Workers = 3, 3, 4, 2
	cfg.CheckpointInterval = time.Nanosecond
	cfg.RetryDelay = time.Microsecond
	cfg.MaxFailureRate = 1
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

// Harness is a database holding a test's fixtures, the source and the
// sink of its runs. It is safe for one test at a time; give each parallel
// test a Harness of its own.
type Harness struct {
	dialect
	db   *sql.DB
	src  mapreduce.Source
	sink mapreduce.Sink
	opts Options

	cleanup []string // PostgreSQL tables to drop in t.Cleanup
}

// New opens the database opts name, a fresh SQLite file by default, with a
// source and a sink on it, all closed in t.Cleanup.
func New(t TB, opts Options) *Harness {
	t.Helper()
	ctx := context.Background()
	h := &Harness{opts: opts, dialect: dialect{postgres: opts.DSN != ""}}
	driver, dsn, path := "pgx", opts.DSN, ""
	if !h.postgres {
		path = filepath.Join(t.TempDir(), "mr.db")
		driver, dsn = "sqlite", sqlname.SQLiteURI(path, "mode=rwc&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	}
	db, err := sql.Open(driver, dsn)
	if err == nil {
		err = db.PingContext(ctx) // creates the SQLite file, which the source needs
	}
	if err != nil {
		t.Fatalf("mapreducetest: open the fixture database: %v", err)
	}
	h.db = db
	t.Cleanup(func() { db.Close() })
	var src closingSource
	var sink closingSink
	if h.postgres {
		t.Cleanup(func() { h.dropTables(t) }) // cleanups run last first: before db.Close
		src, sink, err = openPair(
			func() (*sources.Postgres, error) { return sources.OpenPostgres(ctx, dsn) },
			func() (*sinks.Postgres, error) { return sinks.OpenPostgres(ctx, dsn) })
	} else {
		src, sink, err = openPair(
			func() (*sources.SQLite, error) { return sources.OpenSQLite(path) },
			func() (*sinks.SQLite, error) { return sinks.OpenSQLite(path) })
	}
	if err != nil {
		t.Fatalf("mapreducetest: %v", err)
	}
	t.Cleanup(func() { src.Close(); sink.Close() })
	h.src, h.sink = src, sink
	return h
}

// openPair opens a source and a sink, or neither. Its type parameters keep
// a failed open's nil pointer out of the interfaces it returns.
func openPair[S closingSource, K closingSink](openSource func() (S, error), openSink func() (K, error)) (closingSource, closingSink, error) {
	src, err := openSource()
	if err != nil {
		return nil, nil, err
	}
	sink, err := openSink()
	if err != nil {
		src.Close()
		return nil, nil, err
	}
	return src, sink, nil
}

type closingSource interface {
	mapreduce.Source
	Close() error
}

type closingSink interface {
	mapreduce.Sink
	Close() error
}

// Source returns the source the runs read, for a test that calls
// mapreduce.Run or rollup.Prepare itself.
func (h *Harness) Source() mapreduce.Source { return h.src }

// Sink returns the sink the runs write.
func (h *Harness) Sink() mapreduce.Sink { return h.sink }

// Load creates the fixture tables and fills them.
func (h *Harness) Load(t TB, tables ...Table) {
	t.Helper()
	for _, tab := range tables {
		h.dropLater(tab.Name)
		if err := h.createTable(context.Background(), h.db, tab); err != nil {
			t.Fatalf("mapreducetest: %v", err)
		}
	}
}

// Exec runs a statement on the database, such as a DELETE that leaves a
// hole in a fixture. Placeholders are ? in SQLite and $1 in PostgreSQL.
func (h *Harness) Exec(t TB, query string, args ...any) {
	t.Helper()
	if _, err := h.db.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("mapreducetest: %s: %v", query, err)
	}
}

// Query runs a query on the database and returns its rows as the driver
// gives them, for an independent truth: the same aggregate in SQL, whose
// rows CheckRows accepts as expected rows.
func (h *Harness) Query(t TB, query string, args ...any) [][]any {
	t.Helper()
	rows, err := h.db.QueryContext(context.Background(), query, args...)
	if err != nil {
		t.Fatalf("mapreducetest: %s: %v", query, err)
	}
	defer rows.Close()
	out, err := scanAll(rows)
	if err != nil {
		t.Fatalf("mapreducetest: %s: %v", query, err)
	}
	return out
}

func scanAll(rows *sql.Rows) ([][]any, error) {
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out [][]any
	for rows.Next() {
		row := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// Rollup compiles a declarative rollup (see package rollup) against the
// harness's source, which must hold the tables the query reads, and
// returns its job. opts.Into names the output table.
func (h *Harness) Rollup(t TB, query string, opts rollup.Options) mapreduce.Definition {
	t.Helper()
	q, err := rollup.Parse(query)
	if err != nil {
		t.Fatalf("mapreducetest: %v", err)
	}
	plan, err := rollup.Prepare(context.Background(), h.src, q, opts)
	if err != nil {
		t.Fatalf("mapreducetest: %v", err)
	}
	return plan.Job
}

// Run runs def to the end over the harness's source into its sink with a
// fresh Workdir, and returns what it left. A run that fails fails the
// test, unless its error wraps mapreduce.ErrFailureRate (see Result.Err).
func (h *Harness) Run(t TB, def mapreduce.Definition) *Result {
	t.Helper()
	cfg := h.config(t)
	s, err := mapreduce.Run(context.Background(), def, h.src, h.sink, cfg)
	if err != nil && !errors.Is(err, mapreduce.ErrFailureRate) {
		t.Fatalf("mapreducetest: run %s: %v", def.Spec().Name, err)
	}
	return h.result(t, def, cfg, s, err)
}

// Run runs def over tables in a fresh SQLite file: New, Load and
// Harness.Run in one call.
func Run(t TB, def mapreduce.Definition, tables ...Table) *Result {
	t.Helper()
	h := New(t, Options{})
	h.Load(t, tables...)
	return h.Run(t, def)
}

func (h *Harness) config(t TB) mapreduce.Config {
	cfg := Config(t)
	if h.opts.ConfigFunc != nil {
		h.opts.ConfigFunc(&cfg)
	}
	return cfg
}

// result reads the output table and the dead letters of the run s of def.
func (h *Harness) result(t TB, def mapreduce.Definition, cfg mapreduce.Config, s mapreduce.Summary, runErr error) *Result {
	t.Helper()
	out := def.Spec().Output
	h.dropLater(out.Name)
	r := &Result{Summary: s, Err: runErr, Table: out.Name, Keys: len(out.Keys)}
	r.fields = slices.Concat(out.Keys, out.Values)
	for _, f := range r.fields {
		r.Columns = append(r.Columns, f.Name)
	}
	ctx := context.Background()
	rows, err := h.db.QueryContext(ctx, h.selectOutput(out))
	if err != nil {
		t.Fatalf("mapreducetest: read %s: %v", out.Name, err)
	}
	defer rows.Close()
	raw, err := scanAll(rows)
	if err != nil {
		t.Fatalf("mapreducetest: read %s: %v", out.Name, err)
	}
	if r.Rows, err = r.normalizeRows(raw); err != nil {
		t.Fatalf("mapreducetest: read %s: %v", out.Name, err)
	}
	slices.SortFunc(r.Rows, func(a, b []any) int { return compareRows(a, b, r.Keys) })
	if r.DeadLetters, err = mapreduce.DeadLetters(ctx, cfg, s.RunID, mapreduce.DeadLetterFilter{}); err != nil {
		t.Fatalf("mapreducetest: dead letters of %s: %v", s.RunID, err)
	}
	return r
}

// dropLater notes a PostgreSQL table to drop in t.Cleanup.
func (h *Harness) dropLater(table string) {
	if !h.postgres {
		return
	}
	if !slices.Contains(h.cleanup, table) {
		h.cleanup = append(h.cleanup, table)
	}
}

func (h *Harness) dropTables(t TB) {
	for _, table := range h.cleanup {
		h.dropTable(t, table)
	}
}

func (h *Harness) dropTable(t TB, table string) {
	if _, err := h.db.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+h.quote(table)); err != nil {
		t.Errorf("mapreducetest: drop %s: %v", table, err)
	}
}

// stop is the panic value with which KillAndResume stops a run.
type stop struct{ point string }

// redone says, of each point that comes before its commit, how many
// points a resumed run reaches again before it gets past it: a map task
// that stopped before its checkpoint redoes that spill, a bucket that
// stopped before the sink applied it starts again, a map-only chunk
// that stopped before the sink applied it is read again as a new chunk,
// and a swap that stopped before its commit runs again from its start
// (before-swap, then swap-renamed). A bucket or a map-only chunk that
// stopped after its sink commit is not applied again, nor a table swapped
// in twice.
var redone = map[string]int{crashpoint.MapSpilled: 1, crashpoint.BucketStarted: 1, crashpoint.ChunkIntent: 1, crashpoint.BeforeSwap: 1, crashpoint.SwapRenamed: 2}

// maxAttempts bounds KillAndResume, in case a run makes no progress
// between its stops: a bug, since every attempt commits once more than the
// one before it.
const maxAttempts = 10_000

// KillAndResume runs def uninterrupted, then again from scratch stopping
// it at every commit point in turn: the first attempt stops at the first
// point it reaches, and each later attempt resumes from what the ones
// before it committed and stops at the next point, until one finishes. It
// fails the test unless the final output rows, dead letters and counts
// equal the uninterrupted run's, and returns the final attempt's Result
// with Stops and Attempts filled in.
//
// The points are the engine's crash points: after a map task wrote its
// shuffle files but before the checkpoint that commits them, after the
// sink committed a bucket but before the bucket's done marker, and for a
// map-only job before and after the sink applies each chunk. A stop is a
// panic at the point, which the engine recovers into the run's error, so
// nothing after the point runs: the shuffle and dead-letter files written
// for the checkpoint that never came stay for the next attempt to find and
// remove, as after a crash. Unlike a kill -9, the attempt's deferred
// clean-ups do run: they free memory, release the run's lock and remove a
// spilled bucket's scratch files, which after a kill -9 the kernel and the
// next run's Open see to. (mr's command line tests kill real processes.) The
// attempts run with one worker, so that the sequence of points, and so the
// test, is the same every time.
func (h *Harness) KillAndResume(t TB, def mapreduce.Definition) *Result {
	t.Helper()
	want := h.Run(t, def)
	h.dropTable(t, want.Table) // the next plan's commit key is new: the sink starts empty
	cfg := h.config(t)
	cfg.Workers = 1
	var stops []string
	var attempts []mapreduce.Summary
	for range maxAttempts {
		stopAt := 1
		if len(stops) > 0 {
			stopAt += redone[stops[len(stops)-1]] // pass the points the last attempt stopped in
		}
		var mu sync.Mutex
		hits, stopped := 0, ""
		ctx := crashpoint.WithHook(context.Background(), func(name string) {
			mu.Lock()
			hits++
			if hits == stopAt {
				stopped = name
			}
			dead := hits >= stopAt // no task gets past a point once one stopped
			mu.Unlock()
			if dead {
				panic(stop{name})
			}
		})
		s, err := runStoppable(ctx, def, h.src, h.sink, cfg)
		attempts = append(attempts, s)
		if stopped == "" {
			if err != nil && !errors.Is(err, mapreduce.ErrFailureRate) {
				t.Fatalf("mapreducetest: run %s after %d stops: %v", def.Spec().Name, len(stops), err)
			}
			got := h.result(t, def, cfg, s, err)
			got.Stops, got.Attempts = stops, attempts
			h.checkResumed(t, got, want)
			return got
		}
		var p *mapreduce.PanicError
		if !errors.As(err, &p) || p.Value != (stop{stopped}) {
			t.Fatalf("mapreducetest: run %s stopped at %s, but returned %v", def.Spec().Name, stopped, err)
		}
		stops = append(stops, stopped)
	}
	t.Fatalf("mapreducetest: run %s did not finish after %d attempts", def.Spec().Name, maxAttempts)
	return nil
}

// runStoppable is mapreduce.Run, with a stop at a point outside the
// engine's tasks (the swap of the output table, which the run itself
// drives) returned as the *mapreduce.PanicError a task's stop gives.
func runStoppable(ctx context.Context, def mapreduce.Definition, src mapreduce.Source, sink mapreduce.Sink, cfg mapreduce.Config) (s mapreduce.Summary, err error) {
	defer func() {
		switch r := recover().(type) {
		case nil:
		case stop:
			err = &mapreduce.PanicError{Value: r}
		default:
			panic(r)
		}
	}()
	return mapreduce.Run(ctx, def, src, sink, cfg)
}

// checkResumed compares the result of a run stopped and resumed with the
// uninterrupted run's.
func (h *Harness) checkResumed(t TB, got, want *Result) {
	t.Helper()
	stops := fmt.Sprintf("stopped %d times (%v)", len(got.Stops), got.Stops)
	if diff := diffRows(got.Rows, want.Rows, got.Keys); diff != "" {
		t.Errorf("%s: the run %s differs from the uninterrupted run (got %d rows, want %d):\n%s", got.Table, stops, len(got.Rows), len(want.Rows), diff)
	}
	var fails []Failure
	for _, l := range want.DeadLetters {
		fails = append(fails, Failure{Cursor: l.Cursor, Error: l.Error})
	}
	if diff := diffLetters(got.DeadLetters, fails); diff != "" {
		t.Errorf("the dead letters of the run %s differ from the uninterrupted run's:\n%s", stops, diff)
	}
	if g, w := got.Summary, want.Summary; g.Processed != w.Processed || g.Failed != w.Failed || g.Groups > w.Groups {
		t.Errorf("the run %s processed %d rows, %d failed, %d groups in its last attempt; the uninterrupted run %d, %d, %d",
			stops, g.Processed, g.Failed, g.Groups, w.Processed, w.Failed, w.Groups)
	}
}
