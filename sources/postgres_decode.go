package sources

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mrengine/mr/mapreduce"
)

// rowDecoder turns the raw values of a chunk query's rows into the values
// a Batch holds (see the type doc of Postgres). It picks one decoder per
// column from the result's field descriptions, once per query, and then
// decodes the common types straight from their binary form into the
// batch's typed cells: no reflection, no scan plans and no allocation
// per value.
type rowDecoder struct {
	m      *pgtype.Map
	fields []pgconn.FieldDescription
	kinds  []valueKind
	// interned holds, per text or numeric column, the values already
	// seen, boxed, so that a column of few distinct short values (a
	// category, a status, a price) costs no allocation per row when Map
	// reads it as a string, as a key does. It lives for one query, so it
	// holds no memory past a chunk.
	interned []*internTable
	// text is where numeric prints a value, reused from one to the next.
	text []byte
}

// internTable holds the interned values of a column.
type internTable struct {
	values map[string]any
	// lookups and hits count the lookups since values filled up, or
	// since the column was last judged (see internMaxValues).
	lookups, hits int
}

const (
	// internMaxLen and internMaxValues bound the interning of a column:
	// short values only, and a few hundred of them per query. Once that
	// many are held, every internMaxValues lookups judge the column: if
	// fewer than half of them hit, it is taken to be of many distinct
	// values and is no longer interned, so that it stops paying for
	// lookups that miss (a miss costs about half what a hit saves, in
	// BenchmarkDecodeNumeric).
	internMaxLen    = 32
	internMaxValues = 256
)

// valueKind is how a column's values are decoded.
type valueKind uint8

const (
	kindOther     valueKind = iota // decoded by pgtype, stored as its text form
	kindText                       // text format: stored as the string it is
	kindInt2                       // binary int2
	kindInt4                       // binary int4 or oid
	kindInt8                       // binary int8
	kindFloat4                     // binary float4
	kindFloat8                     // binary float8
	kindString                     // text, varchar, bpchar, name: the bytes are the text
	kindBytea                      // binary bytea
	kindBool                       // binary bool
	kindTimestamp                  // binary timestamptz or timestamp: µs since 2000-01-01 UTC
	kindDate                       // binary date: days since 2000-01-01
	kindJSON                       // json in either format: the text
	kindJSONB                      // binary jsonb: a version byte, then the text
	kindNumeric                    // binary numeric: printed as numeric_out prints it

	numKinds // the number of kinds, for tables indexed by kind
)

func newRowDecoder(fields []pgconn.FieldDescription, m *pgtype.Map) (*rowDecoder, error) {
	return newCursorDecoder(fields, m, false)
}

// newCursorDecoder is newRowDecoder for a cursor of one column or, if
// compound, for a compound cursor's query (see decodeTie), whose order
// column may also be a timestamp or date.
func newCursorDecoder(fields []pgconn.FieldDescription, m *pgtype.Map, compound bool) (*rowDecoder, error) {
	d := &rowDecoder{m: m, fields: fields, kinds: make([]valueKind, len(fields)), interned: make([]*internTable, len(fields))}
	for i, f := range fields {
		d.kinds[i] = kindOf(f)
		switch d.kinds[i] {
		case kindString, kindText, kindNumeric:
			d.interned[i] = &internTable{values: make(map[string]any)}
		}
	}
	if len(fields) == 0 {
		return nil, errors.New("the chunk query returned no columns")
	}
	switch d.kinds[0] {
	case kindInt2, kindInt4, kindInt8:
	case kindTimestamp, kindDate:
		if compound {
			break
		}
		fallthrough
	default:
		return nil, fmt.Errorf("cursor column %q has type OID %d, not an integer type: has the table changed since the run was planned?",
			fields[0].Name, fields[0].DataTypeOID)
	}
	if compound {
		if len(fields) < 2 || d.kinds[1] < kindInt2 || d.kinds[1] > kindInt8 {
			return nil, errors.New("the tie-breaker of the compound cursor is not an integer column: has the table changed since the run was planned?")
		}
	}
	return d, nil
}

// decodeTie decodes one row of a compound cursor's query and appends it
// to b: the order column (column 0) as the engine's int64 cursor (see
// orderInt64), the tie-breaker (column 1), and the other columns as b's
// columns. On an error b's last row is incomplete, and the engine
// discards the batch.
func (d *rowDecoder) decodeTie(raw [][]byte, b *mapreduce.Batch) (cursor, tie int64, err error) {
	if len(raw) != len(d.kinds) || len(b.Columns()) != len(raw)-2 {
		return 0, 0, fmt.Errorf("row of %d values for %d columns", len(raw), len(b.Columns())+2)
	}
	for i := range 2 {
		if raw[i] == nil {
			return 0, 0, fmt.Errorf("cursor column %q is NULL", d.fields[i].Name)
		}
		if want := fixedSize[d.kinds[i]]; len(raw[i]) != want {
			return 0, 0, d.errorf(i, "%d bytes, want %d", len(raw[i]), want)
		}
	}
	if cursor, err = d.orderInt64(raw[0]); err != nil {
		return 0, 0, err
	}
	tie = d.integer(1, raw[1])
	b.AppendTie(cursor, tie)
	for c := range b.Columns() {
		if err = d.set(b, c, c+2, raw[c+2]); err != nil {
			return 0, 0, err
		}
	}
	return cursor, tie, nil
}

// pgEpochMicros is pgEpoch in microseconds.
const pgEpochMicros = pgEpoch * 1_000_000

// orderInt64 turns the binary value src of a compound cursor's order
// column, whose size is checked, into the engine's cursor: an integer as
// it is, a timestamp as microseconds since 1970 (UTC), a date as days
// since 1970. Infinity, and a timestamp whose microseconds since 1970 an
// int64 cannot hold (past the year 292,000), have no such value.
func (d *rowDecoder) orderInt64(src []byte) (int64, error) {
	switch d.kinds[0] {
	case kindTimestamp:
		us := int64(binary.BigEndian.Uint64(src))
		if us == math.MaxInt64 || us == math.MinInt64 || us > math.MaxInt64-pgEpochMicros {
			return 0, fmt.Errorf("cursor column %q holds a timestamp with no microseconds since 1970 in an int64 (infinity?): pick another --cursor", d.fields[0].Name)
		}
		return us + pgEpochMicros, nil
	case kindDate:
		days := int32(binary.BigEndian.Uint32(src))
		if days == math.MaxInt32 || days == math.MinInt32 {
			return 0, fmt.Errorf("cursor column %q holds an infinite date: pick another --cursor", d.fields[0].Name)
		}
		return int64(days) + pgEpoch/86400, nil
	}
	return d.integer(0, src), nil
}

func kindOf(f pgconn.FieldDescription) valueKind {
	if f.Format == pgtype.TextFormatCode {
		switch f.DataTypeOID {
		case pgtype.JSONOID, pgtype.JSONBOID:
			return kindJSON
		}
		return kindText
	}
	switch f.DataTypeOID {
	case pgtype.Int2OID:
		return kindInt2
	case pgtype.Int4OID, pgtype.OIDOID:
		return kindInt4
	case pgtype.Int8OID:
		return kindInt8
	case pgtype.Float4OID:
		return kindFloat4
	case pgtype.Float8OID:
		return kindFloat8
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID:
		return kindString
	case pgtype.ByteaOID:
		return kindBytea
	case pgtype.BoolOID:
		return kindBool
	case pgtype.TimestamptzOID, pgtype.TimestampOID:
		return kindTimestamp
	case pgtype.DateOID:
		return kindDate
	case pgtype.JSONOID:
		return kindJSON
	case pgtype.JSONBOID:
		return kindJSONB
	case pgtype.NumericOID:
		return kindNumeric
	}
	return kindOther
}

// decode decodes one row and appends it to b: it returns the cursor
// (column 0) and sets the other columns as b's columns. On an error b's
// last row is incomplete, and the engine discards the batch.
func (d *rowDecoder) decode(raw [][]byte, b *mapreduce.Batch) (int64, error) {
	if len(raw) != len(d.kinds) || len(b.Columns()) != len(raw)-1 {
		return 0, fmt.Errorf("row of %d values for %d columns", len(raw), len(b.Columns())+1)
	}
	if raw[0] == nil {
		return 0, fmt.Errorf("cursor column %q is NULL", d.fields[0].Name)
	}
	if want := fixedSize[d.kinds[0]]; len(raw[0]) != want {
		return 0, d.errorf(0, "%d bytes, want %d", len(raw[0]), want)
	}
	cursor := d.integer(0, raw[0])
	b.Append(cursor)
	for c := range b.Columns() {
		if err := d.set(b, c, c+1, raw[c+1]); err != nil {
			return 0, err
		}
	}
	return cursor, nil
}

// integer decodes src, a binary int2, int4, oid or int8 of column i whose
// size is checked.
func (d *rowDecoder) integer(i int, src []byte) int64 {
	switch d.kinds[i] {
	case kindInt2:
		return int64(int16(binary.BigEndian.Uint16(src)))
	case kindInt4:
		if d.fields[i].DataTypeOID == pgtype.OIDOID {
			return int64(binary.BigEndian.Uint32(src))
		}
		return int64(int32(binary.BigEndian.Uint32(src)))
	}
	return int64(binary.BigEndian.Uint64(src))
}

// pgEpoch is 2000-01-01 00:00:00 UTC, the zero of PostgreSQL's binary
// timestamps and dates, in Unix seconds.
const pgEpoch = 946_684_800

// The values without a number are stored as the text PostgreSQL prints
// for them, boxed once: infinite timestamps and dates, which have no
// time.Time, and numeric's NaN and infinities.
var (
	infinity        any = "infinity"
	negInfinity     any = "-infinity"
	numericNaNText  any = "NaN"
	numericPInfText any = "Infinity"
	numericNInfText any = "-Infinity"
)

// set decodes the raw value src of result column i into column c of b's
// last row.
func (d *rowDecoder) set(b *mapreduce.Batch, c, i int, src []byte) error {
	if src == nil {
		return nil // Append left the column NULL
	}
	kind := d.kinds[i]
	if want := fixedSize[kind]; want != 0 && len(src) != want {
		return d.errorf(i, "%d bytes, want %d", len(src), want)
	}
	switch kind {
	case kindInt2, kindInt4, kindInt8:
		b.SetInt64(c, d.integer(i, src))
	case kindFloat4:
		b.SetFloat64(c, float64(math.Float32frombits(binary.BigEndian.Uint32(src))))
	case kindFloat8:
		b.SetFloat64(c, math.Float64frombits(binary.BigEndian.Uint64(src)))
	case kindText, kindString:
		d.setText(b, c, i, src)
	case kindBytea, kindJSON:
		b.SetBytes(c, src)
	case kindBool:
		b.SetBool(c, src[0] != 0)
	case kindTimestamp:
		switch us := int64(binary.BigEndian.Uint64(src)); {
		case us == math.MaxInt64:
			b.Set(c, infinity)
		case us == math.MinInt64:
			b.Set(c, negInfinity)
		case us > math.MaxInt64-pgEpochMicros: // past the year 292,000: beyond time.UnixMicro
			sec, frac := us/1e6, us%1e6
			b.Set(c, time.Unix(pgEpoch+sec, frac*1e3).UTC())
		default:
			b.SetUnixMicro(c, us+pgEpochMicros)
		}
	case kindDate:
		switch days := int32(binary.BigEndian.Uint32(src)); days {
		case math.MaxInt32:
			b.Set(c, infinity)
		case math.MinInt32:
			b.Set(c, negInfinity)
		default:
			b.SetUnixMicro(c, (pgEpoch+int64(days)*86400)*1_000_000)
		}
	case kindJSONB:
		if len(src) == 0 || src[0] != 1 {
			return d.errorf(i, "unknown jsonb format version")
		}
		b.SetBytes(c, src[1:])
	case kindNumeric:
		return d.numeric(b, c, i, src)
	default:
		return d.other(b, c, i, src)
	}
	return nil
}

// setText sets text src of text or numeric column i as column c of b's
// last row: the string it set before for the same value if it can,
// boxed, else a copy.
func (d *rowDecoder) setText(b *mapreduce.Batch, c, i int, src []byte) {
	t := d.interned[i]
	if t == nil || len(src) > internMaxLen {
		b.SetText(c, src)
		return
	}
	v, hit := t.values[string(src)] // no allocation for the lookup
	if !hit {
		v = any(string(src))
		if len(t.values) < internMaxValues {
			t.values[v.(string)] = v
			b.Set(c, v)
			return
		}
	}
	if len(t.values) == internMaxValues {
		t.lookups++
		if hit {
			t.hits++
		}
		if t.lookups == internMaxValues {
			if t.hits < internMaxValues/2 {
				d.interned[i] = nil
			}
			t.lookups, t.hits = 0, 0
		}
	}
	b.Set(c, v)
}

// fixedSize is the size of the binary values of fixed size, 0 for the
// others.
var fixedSize = [numKinds]int{
	kindInt2: 2, kindInt4: 4, kindInt8: 8, kindFloat4: 4, kindFloat8: 8,
	kindBool: 1, kindTimestamp: 8, kindDate: 4,
}

// The binary numeric format, as numeric_send writes it (numeric.c): a
// uint16 count of digits (a value may have more than 32767), an int16
// weight (the power of 10000 of the first digit), a uint16 sign and a
// uint16 display scale (the decimal digits printed after the point), then
// the digits, each a uint16 in base 10000.
const (
	numericHeader = 8

	numericPos  = 0x0000
	numericNeg  = 0x4000
	numericNaN  = 0xC000
	numericPInf = 0xD000
	numericNInf = 0xF000

	// numericMaxScale is the largest display scale numeric_recv takes
	// (NUMERIC_DSCALE_MASK); a larger one is no value PostgreSQL has.
	numericMaxScale = 0x3FFF
)

// numeric decodes binary numeric value src of column i into the text
// numeric_out prints for it, as column c of b's last row, allocating
// nothing (see setText): going through pgtype's big.Int and back to text
// cost a tenth of a rollup's CPU. Like numeric_recv it refuses a value of a
// malformed length, sign, scale or digit; and like numeric_recv followed
// by numeric_out it prints digits beyond the display scale cut off, and
// zero without a sign, whatever the bytes say, though PostgreSQL only
// ever sends the canonical form.
func (d *rowDecoder) numeric(b *mapreduce.Batch, c, i int, src []byte) error {
	if len(src) < numericHeader {
		return d.errorf(i, "%d bytes, want at least %d", len(src), numericHeader)
	}
	ndigits := int(binary.BigEndian.Uint16(src))
	weight := int(int16(binary.BigEndian.Uint16(src[2:])))
	sign := binary.BigEndian.Uint16(src[4:])
	scale := int(binary.BigEndian.Uint16(src[6:]))
	digits := src[numericHeader:]
	switch {
	case len(digits) != 2*ndigits:
		return d.errorf(i, "%d bytes, want %d for %d digits", len(src), numericHeader+2*ndigits, ndigits)
	case sign != numericPos && sign != numericNeg && sign != numericNaN && sign != numericPInf && sign != numericNInf:
		return d.errorf(i, "invalid sign 0x%04X", sign)
	case scale > numericMaxScale:
		return d.errorf(i, "display scale %d, above the maximum %d", scale, numericMaxScale)
	}
	for k := 0; k < len(digits); k += 2 {
		if v := binary.BigEndian.Uint16(digits[k:]); v >= 10000 {
			return d.errorf(i, "digit %d of %d is %d, want below 10000", k/2+1, ndigits, v)
		}
	}
	switch sign {
	case numericNaN:
		b.Set(c, numericNaNText)
		return nil
	case numericPInf:
		b.Set(c, numericPInfText)
		return nil
	case numericNInf:
		b.Set(c, numericNInfText)
		return nil
	}
	// Leading zero digits print no zeros (make_result strips them).
	for len(digits) > 0 && digits[0] == 0 && digits[1] == 0 {
		digits, weight = digits[2:], weight-1
	}
	if len(digits) == 0 {
		weight = 0
	}
	digit := func(k int) uint16 { // the digit of weight weight-k, 0 where none is stored
		if k < 0 || 2*k >= len(digits) {
			return 0
		}
		return binary.BigEndian.Uint16(digits[2*k:])
	}

	// From here on this is get_str_from_var: the digits before the point,
	// the first without its leading zeros ("0" if there are none), then
	// scale digits after it, in whole digits cut to length.
	text := d.text[:0]
	if sign == numericNeg {
		text = append(text, '-')
	}
	k := 0
	if weight < 0 {
		text = append(text, '0')
		k = weight + 1
	} else {
		text = strconv.AppendUint(text, uint64(digit(0)), 10)
		for k = 1; k <= weight; k++ {
			text = appendDigit4(text, digit(k))
		}
	}
	if scale > 0 {
		text = append(text, '.')
		end := len(text) + scale
		for ; len(text) < end; k++ {
			text = appendDigit4(text, digit(k))
		}
		text = text[:end]
	}
	if sign == numericNeg && !bytes.ContainsAny(text, "123456789") {
		text = text[1:] // zero, or digits all cut off: trunc_var made it zero, and zero has no sign
	}
	d.text = text
	d.setText(b, c, i, text)
	return nil
}

// appendDigit4 appends the four decimal digits of base-10000 digit v.
func appendDigit4(b []byte, v uint16) []byte {
	hi, lo := v/100*2, v%100*2
	return append(b, digitPairs[hi], digitPairs[hi+1], digitPairs[lo], digitPairs[lo+1])
}

// digitPairs holds the two decimal digits of 0 to 99, in order.
const digitPairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// other decodes a value of a type without a decoder of its own (uuid,
// interval, arrays, …) with pgtype into its text form, the way
// PostgreSQL prints it, as column c of b's last row. These are rarer in
// the columns a job reads, so the detour costs little.
func (d *rowDecoder) other(b *mapreduce.Batch, c, i int, src []byte) error {
	f := d.fields[i]
	t, ok := d.m.TypeForOID(f.DataTypeOID)
	if !ok { // unreachable: pgx asks for the text format of types it does not know
		b.SetText(c, src)
		return nil
	}
	v, err := t.Codec.DecodeValue(d.m, f.DataTypeOID, f.Format, src)
	if err != nil {
		return d.errorf(i, "%v", err)
	}
	text, err := d.m.Encode(f.DataTypeOID, pgtype.TextFormatCode, v, d.text[:0])
	if err != nil {
		return d.errorf(i, "%v", err)
	}
	d.text = text
	b.SetText(c, text)
	return nil
}

func (d *rowDecoder) errorf(i int, format string, args ...any) error {
	f := d.fields[i]
	name := fmt.Sprintf("OID %d", f.DataTypeOID)
	if t, ok := d.m.TypeForOID(f.DataTypeOID); ok {
		name = t.Name
	}
	return fmt.Errorf("column %q of type %s: "+format, append([]any{f.Name, name}, args...)...)
}
