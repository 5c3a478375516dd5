// Package sources reads the rows of a job's input table, one keyset chunk
// at a time, for the map tasks of package mapreduce.
//
// Open chooses the backend from a URL:
//
//	sqlite:PATH or PATH.db        type SQLite: an SQLite file, the embedded default
//	postgres://… postgresql://…   type Postgres: a PostgreSQL database, through a pgx pool
//	host=… dbname=… (key=value)   type Postgres too
//
// Every type's String is a canonical name of the database (sqlite: and the
// absolute path; postgres://USER@HOST:PORT/DB plus search_path or options),
// never a password: the engine hashes it into the run id.
//
// Every backend implements mapreduce.Source with the same contract, which
// sourcetest.Run checks. ReadChunk runs one keyset query, never OFFSET, so
// that a chunk costs the same wherever it lies:
//
//	SELECT cursor, columns… FROM table WHERE cursor >= lo AND cursor < hi ORDER BY cursor LIMIT n
//
// A compound cursor ("ts,id", see mapreduce.Input.CursorColumns) pages by
// the pair, so that rows sharing a timestamp are neither skipped nor read
// twice (both backends implement mapreduce.TieSource):
//
//	SELECT ts, id, columns… FROM table WHERE (ts, id) > (lastTs, lastID) AND ts <= last ORDER BY ts, id LIMIT n
//
// Table and column names are always quoted identifiers, never pasted SQL.
// Describe reports what is wrong with a table as one *SchemaError: a
// missing table or column, or a cursor column that is not an integer
// column, not unique, or holds NULLs. The backends build these errors with
// the same constructors (errors.go), so users read the same words whatever
// the database.
//
// A source never creates or changes a table, and opening a database that
// does not exist is an error.
package sources
