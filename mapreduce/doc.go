// Package mapreduce is mr's engine and its user API: typed jobs, the
// planner, the map and reduce tasks, checkpoints, the dead-letter queue and
// the run's state.
//
// # Write a job
//
// A job reads rows of one table in cursor order, emits (key, value) pairs
// from each, and folds the values of each key with an associative and
// commutative Combine. Keys and values are plain Go types; their codecs,
// which lay them out as the output's columns, derive from the types when
// the job is validated, so the engine can hash, spill and write them
// without reflection on the per-record path:
//
//	var Clicks = mapreduce.Job[string, int64]{
//		Name:   "clicks_per_page",
//		Input:  mapreduce.Input{Table: "clicks", Columns: []string{"page"}},
//		Output: mapreduce.Output{Table: "page_clicks"},
//		Key:    mapreduce.Columns[string]("page"),
//		Value:  mapreduce.Columns[int64]("clicks"),
//		Map: func(ctx context.Context, row mapreduce.Row, emit func(string, int64)) error {
//			emit(row.String(0), 1)
//			return nil
//		},
//		Combine: func(a, b int64) int64 { return a + b },
//	}
//
// Columns names the one column of a scalar key or value. A struct needs
// no codec at all: leave Key or Value out, and its fields are the columns,
// named by an `mr:"name"` tag or in snake_case (TotalCents is
// total_cents):
//
//	type Totals struct {
//		Events     int64
//		TotalCents int64
//		Largest    *apd.Decimal `mr:"largest_amount"` // nil is NULL
//	}
//
// Codec lists the Go types that map to each field type, and how to write
// a codec by hand for a type that is not laid out as its columns.
//
// A Map error fails the row: it is retried with backoff, then written to
// the partition's dead-letter queue, and the run goes on. Wrap an error in
// Permanent to skip the retries; a panic counts as an error. A job whose
// Map fails most rows does not run to the end: once the run has mapped a
// sample, a failure rate above Config.MaxFailureRate stops it, with what
// it mapped committed (see Runner.Run), so fix the bug and run again.
//
// A job without Combine is map-only: the "process each row, upsert its
// result" job, such as the built-in event_payloads, which parses each
// event's payload into a row of its own. Each chunk of rows is one sink
// transaction that upserts the pairs its rows emitted, so the results
// appear in the output table as the run goes; see Job for the rules.
//
// # Register it
//
// Register the job from an init function with jobs.Register, which checks
// it and panics on a duplicate name, and build your own mr binary whose
// main imports the package and calls mrcli.Main. Name is the job's stable
// identity: run ids derive from it.
//
// # Run it
//
// From the command line, mr run clicks_per_page --source sqlite:app.db; or
// from Go, Run with a Source, a Sink and a Config that starts from
// DefaultConfig (see Example). Running the same command again resumes:
// each partition continues from its last checkpoint, and each bucket
// already applied to the sink is skipped.
//
// # Test it
//
// Package mapreducetest runs the job over fixture rows in a fresh SQLite
// file (or a test PostgreSQL), compares the output table and the dead
// letters with the expected rows, and can stop and resume the run at every
// commit point to check that it comes out the same.
//
// # Ask a run how it is going
//
// Runs, Inspect and DeadLetters answer from a run's state what mr status,
// mr inspect and mr dlq show: its plan, each partition's checkpoint, the
// buckets applied, and the dead letters that count; DeadLetterErrors
// counts those by error, for mr dlq list.
//
// # How a run works
//
// The planner splits the cursor range into partitions [lo, hi). A map task
// per partition reads keyset chunks, maps each row, and combines pairs in a
// Go map keyed by K. At a commit point (every CheckpointInterval, when the
// map reaches its share of the memory budget, and at the end of the range)
// it writes one Arrow spill file per non-empty hash bucket and one file of
// the rows that failed since the last commit, each durable, and only then
// replaces its Checkpoint, which names the files. When every partition is
// done, a reduce task per bucket merges the bucket's committed files
// (re-partitioning under a new seed when they outgrow the budget) and
// applies the rows to the sink in one transaction that also records the
// bucket as committed. A run replaces the output table rather than merging
// into it: the buckets go to a staging table, which one last transaction
// swaps in for the old table (see Replacer), so readers never see a
// half-built table and no group of a deleted row survives.
//
// A map-only job's run has no buckets: each map task applies every chunk
// to the sink itself, in a transaction whose commit record names the
// chunk, after its checkpoint has named the chunk as pending, so that a
// resumed run asks the sink whether the chunk counts (see maponly.go).
// It upserts into the output table rather than replace it.
//
// Two seams hold a run's state. A Store (DirStore by default) keeps the
// run lock, the plan, the checkpoints, the done markers and the replay
// manifest; blob storage (Config.Blobs, the Workdir by default) keeps the
// shuffle and dead-letter files, under names unique to the attempt that
// wrote them. Files count only once a checkpoint or the manifest names
// them, and readers find them there, never by listing.
package mapreduce
