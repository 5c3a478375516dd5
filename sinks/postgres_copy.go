package sinks

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/cockroachdb/apd/v3"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mrengine/mr/mapreduce"
)

// copyEncoded copies the rows of src, whose rows are a RowEncoder, into
// the columns cols of table, in tx, and returns how many it copied; ok is
// false, with nothing done, if a column is not of a type that
// copyEncoder writes itself (then pgx's CopyFrom does it).
//
// pgx's CopyFrom takes each row as []any and encodes each value through
// its type map: in the profile of daily_rollup at 1M and 10M rows, 2.5 of
// the 13.6 CPU-seconds in pgx's buildCopyBuf (the rest reads, combines
// and sorts the bucket), plus the boxing of every key and value into
// []any before it. copyEncoder writes
// PostgreSQL's binary COPY format straight from the job's key and value,
// the same bytes pgx would send (TestCopyEncoder holds it to pgx's).
func copyEncoded(ctx context.Context, tx pgx.Tx, table pgx.Identifier, cols []string, src *copySource, rows mapreduce.RowEncoder) (n int64, ok bool, err error) {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = ident(c)
	}
	list := strings.Join(quoted, ", ")
	// Unnamed, so never cached: the column types are read anew for every
	// bucket, in its transaction.
	sd, err := tx.Conn().Prepare(ctx, "", "SELECT "+list+" FROM "+table.Sanitize())
	if err != nil {
		return 0, false, err
	}
	oids := make([]uint32, len(sd.Fields))
	for i, f := range sd.Fields {
		if !copyEncodes[f.DataTypeOID] {
			return 0, false, nil
		}
		oids[i] = f.DataTypeOID
	}
	enc := copyEncoder{m: tx.Conn().TypeMap(), oids: oids, buf: append(make([]byte, 0, copyChunk), copyHeader...)}
	r := &copyReader{src: src, rows: rows, enc: enc}
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, r, "COPY "+table.Sanitize()+" ("+list+") FROM STDIN BINARY")
	return tag.RowsAffected(), true, err
}

// copyEncodes are the column types copyEncoder writes: those of
// postgresTypes, mr's own column types.
var copyEncodes = map[uint32]bool{
	pgtype.Int8OID: true, pgtype.Float8OID: true, pgtype.TextOID: true, pgtype.BoolOID: true,
	pgtype.DateOID: true, pgtype.TimestamptzOID: true, pgtype.NumericOID: true, pgtype.ByteaOID: true,
}

// copyChunk is how many bytes copyReader encodes at a time: about what
// pgconn sends in one CopyData message.
const copyChunk = 64 << 10

// copyReader is the COPY … FROM STDIN BINARY stream of src's rows: the
// header, a tuple per row, the trailer. An error of the rows (or of a
// value the encoder refused) ends the stream with that error, which
// pgconn reports to the server as the COPY's failure; copyRows then
// returns src's own error.
type copyReader struct {
	src  *copySource
	rows mapreduce.RowEncoder
	enc  copyEncoder // its buf begins with the header
	pos  int         // of enc.buf, read so far
	done bool
}

var copyHeader = []byte("PGCOPY\n\377\r\n\000\x00\x00\x00\x00\x00\x00\x00\x00") // signature, flags, no extension

func (r *copyReader) Read(p []byte) (int, error) {
	for r.pos == len(r.enc.buf) {
		if r.done {
			return 0, io.EOF
		}
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.enc.buf[r.pos:])
	r.pos += n
	return n, nil
}

// fill encodes the next copyChunk bytes of the stream into r.enc.buf.
func (r *copyReader) fill() error {
	e := &r.enc
	e.buf, r.pos = e.buf[:0], 0
	for len(e.buf) < copyChunk {
		if !r.src.Next() {
			if err := r.src.Err(); err != nil {
				return err
			}
			e.buf = binary.BigEndian.AppendUint16(e.buf, 0xffff) // the trailer: -1
			r.done = true
			return nil
		}
		if err := e.row(r.rows); err != nil {
			r.src.err = fmt.Errorf("row %d: %w", r.src.n, err)
			return r.src.err
		}
		r.src.n++
	}
	return nil
}

// copyEncoder is a mapreduce.Encoder that appends one COPY tuple per row
// to buf, each value in PostgreSQL's binary format for its column's type
// (oids). A value of another Go type than its column's own (an int64 for a
// numeric column, say) goes through pgx's type map, as CopyFrom would
// send it.
type copyEncoder struct {
	m    *pgtype.Map
	oids []uint32
	buf  []byte
	col  int // the column of the next value
	err  error
}

// y2kDays and y2kMicros are PostgreSQL's epoch for dates and timestamps,
// 2000-01-01, in days and in microseconds of Unix time.
const (
	y2kDays   = 10_957
	y2kMicros = y2kDays * 24 * 60 * 60 * 1_000_000
)

// row appends the tuple of rows' current row.
func (e *copyEncoder) row(rows mapreduce.RowEncoder) error {
	e.col, e.err = 0, nil
	e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(len(e.oids)))
	if err := rows.EncodeRow(e); err != nil {
		return err
	}
	if e.err == nil && e.col != len(e.oids) {
		e.err = fmt.Errorf("%d values for %d columns", e.col, len(e.oids))
	}
	return e.err
}

// next reports whether the next value is of column type oid, and moves on
// to the column after it.
func (e *copyEncoder) next(oid uint32) bool {
	e.col++
	return e.col <= len(e.oids) && e.oids[e.col-1] == oid
}

// word appends a value of n bytes, v's low ones, big-endian.
func (e *copyEncoder) word(n int, v uint64) {
	e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(n))
	switch n {
	case 1:
		e.buf = append(e.buf, byte(v))
	case 4:
		e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(v))
	default:
		e.buf = binary.BigEndian.AppendUint64(e.buf, v)
	}
}

// other appends v, the value of the column before, through pgx's type
// map: its Go type is not the column type's own.
func (e *copyEncoder) other(v any) {
	if e.col > len(e.oids) {
		return // too many values: row reports it
	}
	start := len(e.buf)
	e.buf = binary.BigEndian.AppendUint32(e.buf, math.MaxUint32) // NULL, unless v encodes
	out, err := e.m.Encode(e.oids[e.col-1], pgtype.BinaryFormatCode, pgValue(v), e.buf)
	switch {
	case err != nil && e.err == nil:
		e.err = fmt.Errorf("column %d: %w", e.col, err)
	case err == nil && out != nil:
		e.buf = out
		binary.BigEndian.PutUint32(e.buf[start:], uint32(len(e.buf)-start-4))
	}
}

func (e *copyEncoder) Int64(v int64) {
	if !e.next(pgtype.Int8OID) {
		e.other(v)
		return
	}
	e.word(8, uint64(v))
}

func (e *copyEncoder) Float64(v float64) {
	if !e.next(pgtype.Float8OID) {
		e.other(v)
		return
	}
	e.word(8, math.Float64bits(v))
}

func (e *copyEncoder) String(v string) {
	if !e.next(pgtype.TextOID) {
		e.other(v)
		return
	}
	e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(len(v)))
	e.buf = append(e.buf, v...)
}

func (e *copyEncoder) Bytes(v []byte) {
	if !e.next(pgtype.ByteaOID) {
		e.other(v)
		return
	}
	e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(len(v)))
	e.buf = append(e.buf, v...)
}

func (e *copyEncoder) Bool(v bool) {
	if !e.next(pgtype.BoolOID) {
		e.other(v)
		return
	}
	var b uint64
	if v {
		b = 1
	}
	e.word(1, b)
}

func (e *copyEncoder) Date(v mapreduce.Date) {
	if !e.next(pgtype.DateOID) {
		e.other(v)
		return
	}
	e.word(4, uint64(uint32(int32(v)-y2kDays)))
}

func (e *copyEncoder) Time(v time.Time) {
	if !e.next(pgtype.TimestamptzOID) {
		e.other(v.UTC()) // as Values has it
		return
	}
	e.word(8, uint64(v.Unix()*1_000_000+int64(v.Nanosecond())/1000-y2kMicros))
}

// Decimal goes through pgx's numeric encoding, which is exact and rarely
// on a hot path.
func (e *copyEncoder) Decimal(v *apd.Decimal) {
	e.next(pgtype.NumericOID)
	e.other(v)
}

// Array goes through pgx's array encoding; copyEncoded never meets an
// array column, whose type copyEncodes lacks, but Finalize may still call
// Array for another column, which pgx then refuses.
func (e *copyEncoder) Array(elems any) {
	e.next(0)
	e.other(elems)
}

func (e *copyEncoder) Null() {
	e.col++
	e.buf = binary.BigEndian.AppendUint32(e.buf, math.MaxUint32)
}
