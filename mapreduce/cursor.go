package mapreduce

import (
	"context"
	"fmt"
	"strings"

	"github.com/mrengine/mr/partition"
)

// A compound cursor ("ts,id" in Input.Cursor) pages by a pair: the order
// column, an integer, date, timestamp or timestamptz column, and the
// tie-breaker, a NOT NULL integer column, the two together unique. Paging
// by a timestamp alone skips or repeats the rows that share one at a
// chunk's edge; paging by the pair, WHERE (ts, id) > ($ts, $id), does
// neither.
//
// The engine's int64 cursor stays the order column's value (a
// timestamp's microseconds since 1970 UTC, a date's days), so that
// partition.Range, plans and Splitter work on it unchanged: every row of
// one timestamp falls in one partition, and a timestamp shared by a
// million rows is one partition's work. Within a partition a map task
// pages by the pair, and its checkpoint names the pair it stopped at
// (Checkpoint.After).

// CursorColumns splits in.Cursor into its order column and, for a
// compound cursor, its tie-breaker; tie is "" for a cursor of one column.
// The names are split at the first comma and trimmed of spaces: a column
// whose name holds a comma cannot be part of a compound cursor.
func (in Input) CursorColumns() (order, tie string) {
	if !in.Compound() {
		return in.Cursor, ""
	}
	order, tie, _ = strings.Cut(in.Cursor, ",")
	return strings.TrimSpace(order), strings.TrimSpace(tie)
}

// Compound reports whether in's cursor is compound (see CursorColumns).
func (in Input) Compound() bool { return strings.Contains(in.Cursor, ",") }

// checkCompound reports what a compound cursor cannot do with src or cfg.
func checkCompound(in Input, src Source, cfg Config) error {
	if !in.Compound() {
		return nil
	}
	order, tie := in.CursorColumns()
	switch {
	case order == "" || tie == "" || strings.Contains(tie, ","):
		return fmt.Errorf("cursor %q: a compound cursor names two columns, order and tie-breaker, as in --cursor ts,id", in.Cursor)
	case cfg.Incremental:
		return fmt.Errorf("cursor %q: --incremental needs a cursor of one integer column that a sequence fills, which a safe high-water mark stands on; "+
			"a compound cursor has none (drop --incremental, or use --cursor %s)", in.Cursor, tie)
	case in.GroupBy > 0:
		return fmt.Errorf("cursor %q: a range aggregated at the source (Input.GroupBy, a rollup's push-down) is read by its cursor alone; "+
			"use a cursor of one column, or mr rollup --push-down off", in.Cursor)
	}
	if _, ok := src.(TieSource); !ok {
		return fmt.Errorf("cursor %q: source %s cannot page by a compound cursor", in.Cursor, src)
	}
	return nil
}

// TieSource is implemented by sources that page by a compound cursor (see
// CursorColumns). ReadChunkAfter is ReadChunk by the pair: it appends to
// b, with Batch.AppendTie, at most limit rows of r in (order, tie-breaker)
// order, leaving out, when after is not nil, the rows at cursor r.Lo whose
// tie-breaker is at or below *after:
//
//	WHERE (ts, id) > (r.Lo, *after) AND ts <= last ORDER BY ts, id LIMIT limit
//	WHERE ts >= r.Lo AND ts <= last ORDER BY ts, id LIMIT limit  (after == nil)
//
// It returns io.EOF, with b empty, when no such row is left. ReadChunk of
// a compound input is ReadChunkAfter with after nil.
type TieSource interface {
	Source
	ReadChunkAfter(ctx context.Context, in Input, r partition.Range, after *int64, limit int, b *Batch) error
}

// TieStreamer is a Streamer that resumes mid-cursor: StreamAfter is
// Stream of the rows that ReadChunkAfter would read, in chunks.
type TieStreamer interface {
	StreamAfter(ctx context.Context, in Input, r partition.Range, after *int64, limit int, b *Batch, fn func(*Batch) error) error
}

// ReadChunksAfter is ReadChunks by a compound cursor: it reads r, past
// after at r.Lo, with src.ReadChunkAfter, one chunk after another.
func ReadChunksAfter(ctx context.Context, src TieSource, in Input, r partition.Range, after *int64, limit int, b *Batch, fn func(*Batch) error) error {
	return eachChunk(b, fn, func() error { return src.ReadChunkAfter(ctx, in, r, after, limit, b) },
		func() { r, after = AfterRow(r, b.Last(), b.LastTie()) })
}

// AfterRow returns what is left of r to read by a compound cursor once
// the row (cursor, tie) is read: r from cursor on, past tie there. Unlike
// partition.Range.After it keeps the row's cursor in the range, since
// rows that share it may follow.
func AfterRow(r partition.Range, cursor, tie int64) (partition.Range, *int64) {
	r.Lo = cursor
	return r, &tie
}

// tieOf returns in's tie-breaker column, for messages.
func tieOf(in Input) string {
	_, tie := in.CursorColumns()
	return tie
}
