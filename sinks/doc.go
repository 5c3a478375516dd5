// Package sinks writes the reduced rows of a job to its output table, one
// transaction per bucket, for the reduce tasks of package mapreduce.
//
// Open chooses the backend from a URL:
//
//	sqlite:PATH or PATH.db        type SQLite: an SQLite file, created if missing
//	postgres://… postgresql://…   type Postgres: a PostgreSQL database (pgx)
//	host=… dbname=… (key=value)   type Postgres too
//
// Every type's String is a canonical name of the database (sqlite: and the
// absolute path; postgres://USER@HOST:PORT/DB plus search_path or options),
// never a password: the engine hashes it into the run id.
//
// Every backend implements mapreduce.Sink with the same contract, which
// sinktest.Run checks. Apply is the reduce side's commit point: in one
// transaction it upserts the bucket's rows,
//
//	INSERT INTO t (keys…, values…) VALUES … ON CONFLICT (keys…) DO UPDATE SET v = excluded.v, …
//
// and records the bucket in
//
//	mr_bucket_commits(commit_key, bucket, rows, committed_at, table_oid (Postgres) or table_id (SQLite),
//	                  PRIMARY KEY (commit_key, bucket))
//
// A bucket already recorded under the same commit key for the same table
// is skipped, so a reduce re-run after a crash, or a whole job run again,
// leaves the output table as one clean run would. The record names the
// table the bucket went to (its oid, or in SQLite an id mr gives it, see
// createCommits), and counts only while that table exists: a table dropped
// during or after a run, and created again, takes its buckets with it, and
// they are applied again.
//
// Prepare checks an existing table before the map phase: every column,
// of a type that holds every value of its field (PostgreSQL: the type mr
// would create or a wider exact one, see postgresHolders; SQLite: an
// affinity that converts none of them, see sqliteAffinities), and a key
// that upserts can use.
//
// Every backend is also a mapreduce.Replacer, so that a run replaces its
// output table. Stage creates a staging table next to it, named after the
// table and the run (t_mr_next_<hash of table and run id>, shortened to
// fit 63 bytes), with the table's columns, keys, defaults, constraints and
// indexes (on PostgreSQL, the indexes and the key come at Swap, built
// once the buckets are in); the run's buckets are applied there. Swap
// then drops the old table and renames the staging table to its name in
// one transaction,
// which records the swap in mr_bucket_commits (bucket -1; bucket -2 marks
// the staging table created for the commit): readers see the old table
// until the commit and the new one after it, and the rename costs the
// same for ten groups as for ten million. From Stage to Swap the run owns
// the output table (see OwnedError): another run is refused, the same run
// resumes. What the copy keeps differs by
// backend; Postgres.Stage and SQLite.Stage say what. mr dlq replay does
// not swap: it upserts into the finished table as above.
//
// Every backend is also a mapreduce.Merger, for incremental runs. Merge
// puts each part's keys into a temporary table, hands the stored rows that
// join them to the engine (MergeParts.Merge), which combines its new
// values into them, and writes the rows it returns along Apply's path: one
// transaction per bucket, recorded in mr_bucket_commits as an applied one,
// and skipped in the same way when it is recorded already. The stored
// values come back as the Go types Apply takes, exactly (decimals with
// their scale, timestamps to the microsecond, in UTC). With a lookback
// window (MergeParts.Window), Merge first deletes, in the same
// transaction, the stored groups of the window that the engine says are
// the bucket's (MergeParts.Owned), which the parts then hold recomputed
// whole: readers see the old groups until the bucket commits.
//
// Postgres stages a bucket's rows with COPY into a temporary table and
// upserts from there (INSERT … SELECT … ON CONFLICT), but into the
// staging table of its commit, which no two buckets share a key of, it
// copies them straight in (see Postgres.Apply); it retries connection
// faults where that is safe; its doc says where its tables live and what
// an error after a lost connection means.
package sinks
