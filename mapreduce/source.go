package mapreduce

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/mrengine/mr/partition"
)

// Source reads the rows of a table in cursor order, one keyset chunk at a
// time. Implementations are safe for concurrent use by several map tasks.
type Source interface {
	// String names the source with any password redacted. It is part of a
	// run's identity.
	fmt.Stringer

	// Describe checks that in's table and columns exist, that its cursor
	// is an integer column with unique values (or, compound, a pair that
	// is unique, see TieSource) and that its expressions and condition are
	// valid SQL, and returns the cursor's bounds and the expressions'
	// types. An empty table has Rows == 0.
	Describe(ctx context.Context, in Input) (TableInfo, error)

	// ReadChunk appends to b, in cursor order, at most limit rows whose
	// cursor lies in r (r.Contains): the keyset query
	//
	//	WHERE cursor >= r.Lo AND cursor <= last ORDER BY cursor LIMIT limit
	//
	// with last from r.Last(), never a bound computed from r.Hi, which
	// cannot lie past math.MaxInt64. The engine moves r past the last
	// cursor it got (r.After), so a chunk's cost does not depend on its
	// position. It returns io.EOF, with b empty, when r holds no rows,
	// and without a query when r is empty.
	ReadChunk(ctx context.Context, in Input, r partition.Range, limit int, b *Batch) error
}

// TableInfo is what planning needs to know about a source table.
type TableInfo struct {
	Min, Max int64 // smallest and largest cursor values
	Rows     int64 // number of rows, or an estimate for large tables

	// Types are the SQL types of Input.Exprs, as the source's catalog
	// spells them ("numeric(12,2)", "timestamp with time zone").
	Types []string
}

// Splitter is implemented by sources that can plan partitions of roughly
// equal row counts (from statistics or a sample). Without it the planner
// splits [Min, Max] into ranges of equal width. Split returns n partitions
// that cover [info.Min, info.Max] exactly, in order, each with its
// estimated row count.
type Splitter interface {
	Split(ctx context.Context, in Input, info TableInfo, n int) ([]Partition, error)
}

// Streamer is implemented by sources that can read a whole range with one
// query, which costs less per row than a query per chunk. Stream reads the
// rows of r in cursor order and hands them to fn in chunks of at most
// limit rows, filling b anew (Reset) for each; it returns fn's first error,
// or nil at the end of r. The engine commits between chunks, so a crash
// loses at most the chunks since the last commit, as with ReadChunk.
type Streamer interface {
	Stream(ctx context.Context, in Input, r partition.Range, limit int, b *Batch, fn func(*Batch) error) error
}

// RunNamer is implemented by sources and sinks that can show operators
// which run their sessions serve (PostgreSQL's application_name, in
// pg_stat_activity). The engine calls NameRun once it knows the run's id.
type RunNamer interface {
	NameRun(run string)
}

// Scoper is implemented by sources and sinks whose unqualified table
// names resolve by a session setting that String need not show
// (PostgreSQL's search_path, which PGOPTIONS or ALTER ROLE … SET can
// choose). Scope is part of a run's identity, so that runs over tables of
// one name in two schemas are two runs, never one that resumes the other's
// state.
type Scoper interface {
	Scope(ctx context.Context) (string, error)
}

// Snapshotter is implemented by sources that can read every range of a
// run as of one moment: the engine pins a snapshot for the map phase, so
// that all partitions together read one consistent cut of the table. A
// row that an UPDATE moves to another cursor while the run reads is then
// read once, and a row inserted meanwhile waits for the next run. Without
// it each range query sees the table as of its own start.
type Snapshotter interface {
	// Snapshot pins the source's current state for every read until
	// release is called.
	Snapshot(ctx context.Context) (release func(), err error)
}

// ReadChunks reads r with src.ReadChunk, one keyset chunk after another,
// and hands each to fn as a Streamer's Stream does (filling b anew for
// each): how the engine reads a source that cannot stream, and how a
// Streamer may read the rest of a range its stream cannot go on with. It
// returns fn's first error, or nil at the end of r.
func ReadChunks(ctx context.Context, src Source, in Input, r partition.Range, limit int, b *Batch, fn func(*Batch) error) error {
	return eachChunk(b, fn, func() error { return src.ReadChunk(ctx, in, r, limit, b) }, func() { r = r.After(b.Last()) })
}

// eachChunk is the loop of ReadChunks and ReadChunksAfter: read fills b
// with the next chunk (io.EOF at the end), fn takes it, and next moves
// past its last row.
func eachChunk(b *Batch, fn func(*Batch) error, read func() error, next func()) error {
	for {
		b.Reset()
		err := read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
		next()
	}
}

// Marker is implemented by sources that can take a safe high-water mark
// of a table's cursor, which incremental runs stand on (Config.Incremental):
// one run reads the rows through the mark, the next the rows past it.
// max(cursor) is not safe where rows commit out of cursor order, as rows
// numbered by a sequence do: a transaction that took a smaller value may
// commit after one that took a larger, and a mark at the larger would
// skip the smaller for good.
//
// Mark returns a value M such that, once it returns, no row with a cursor
// at or below M can still commit: every transaction that could write one
// has ended, and rows written later take cursors above M. A run that
// reads through M after Mark returns (under a snapshot taken later, see
// Snapshotter) therefore reads every such row, and the next run reads
// from M+1 on without a gap. Where it cannot be sure, Mark returns an
// error that says what to change (a cursor that no sequence fills).
type Marker interface {
	Mark(ctx context.Context, in Input) (int64, error)
}
