package sinks

import (
	"fmt"
	"time"
)

// A replacing run owns its output table from Stage to Swap: each backend
// keeps, next to mr_bucket_commits,
//
//	mr_table_owners(table_name, run, commit_key, claimed_at, PRIMARY KEY (table_name))
//
// with a row per output table that a run is building a replacement for.
// Stage (and Claim, which the engine can call before the map phase)
// inserts it, Swap deletes it in the transaction of the swap. Another run
// that finds the row is refused with an *OwnedError, since two runs
// building one table would leave a mix of both (or, at best, the one that
// swaps last). The same run is never refused: a resume after a crash finds
// its own claim, and a --fresh plan of the run (a new commit) takes it
// over.

// OwnedError reports an output table that another run, not yet finished,
// is building a replacement for.
type OwnedError struct {
	Table  string    // the output table, quoted as the backend writes it
	Sink   string    // the sink's String
	Run    string    // the run that owns it
	Commit string    // the plan of that run
	Since  time.Time // when it claimed the table
	// Release says how to give up the other run's claim: SQL to run in
	// the sink's database.
	Release string
}

func (e *OwnedError) Error() string {
	return fmt.Sprintf("table %s in %s is being built by run %s (commit %s, since %s), which has not finished, "+
		"and two runs into one table would leave a mix of both: finish that run first (run its command again), "+
		"or give it up (%s), then run this command again",
		e.Table, e.Sink, e.Run, e.Commit, e.Since.UTC().Format(time.RFC3339), e.Release)
}
