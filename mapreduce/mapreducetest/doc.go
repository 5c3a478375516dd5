// Package mapreducetest tests a job, or a declarative rollup, in the test's
// own process: it creates fixture tables, runs the job over them with the
// real engine, source and sink, and compares the output table and the
// dead letters with what the test expects, reporting the rows missing,
// extra or different.
//
//	func TestClicks(t *testing.T) {
//		res := mapreducetest.Run(t, &Clicks, mapreducetest.Table{
//			Name:    "clicks",
//			Columns: []mapreducetest.Column{{Name: "id", Type: "bigint primary key"}, {Name: "page", Type: "text"}},
//			Rows:    [][]any{{1, "/"}, {2, "/docs"}, {3, "/"}, {4, nil}},
//		})
//		res.CheckRows(t, [][]any{{"/", 2}, {"/docs", 1}})
//		res.CheckDeadLetters(t, mapreducetest.Failure{Cursor: 4, Error: "no page"})
//	}
//
// # Where the fixtures live
//
// New opens a Harness: a fresh SQLite file in t.TempDir() by default, or,
// with Options.DSN, a PostgreSQL database the test names (a database or
// schema kept for tests; the harness drops what it created in t.Cleanup).
// Load creates and fills the fixtures, Rollup compiles a rollup query
// against them, Run runs a job, and Query runs SQL, for a truth computed by
// the database itself. Runs use Config: a few partitions, buckets and
// small chunks, so that a dozen rows cross every boundary.
//
// # Kill and resume
//
// KillAndResume runs a job once uninterrupted, then again stopping it at
// every commit point in turn and resuming, and checks that the output and
// the dead letters come out the same: what mr promises after a crash. A
// job passes when its Map and Combine are what mapreduce.Job requires:
// Map a function of its row, Combine associative and commutative.
// Stopping is a panic at the point that the engine turns into the run's
// error, not a kill -9: the attempt's deferred clean-ups run. Each stop is
// scoped to its run's context, so tests that use it may run in parallel.
package mapreducetest
