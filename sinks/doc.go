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
//	mr_bucket_commits(commit_key, bucket, rows, committed_at, PRIMARY KEY (commit_key, bucket))
//
// A bucket already recorded under the same commit key is skipped, so a
// reduce re-run after a crash, or a whole job run again, leaves the output
// table as one clean run would.
//
// Postgres stages a bucket's rows with COPY into a temporary table and
// upserts from there (INSERT … SELECT … ON CONFLICT), and retries
// connection faults where that is safe; its doc says where its tables live
// and what an error after a lost connection means.
package sinks
