package sources

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// rowDecoder turns the raw values of a chunk query's rows into the values
// a Batch holds (see the type doc of Postgres). It picks one decoder per
// column from the result's field descriptions, once per query, and then
// decodes the common types straight from their binary form: no
// reflection and no scan plans per value, and no allocation beyond the
// value itself.
type rowDecoder struct {
	m      *pgtype.Map
	fields []pgconn.FieldDescription
	kinds  []valueKind
	// interned holds, per text column, the values already seen, boxed,
	// so that a column of few distinct short values (a category, a
	// status) costs no allocation per row: a string in an interface costs
	// two. It lives for one query, so it holds no memory past a chunk.
	interned []map[string]any
}

const (
	// internMaxLen and internMaxValues bound the interning of a column:
	// short values only, and a few hundred of them per query, beyond
	// which a column is taken to be of many distinct values and each
	// value is allocated as it comes.
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
)

func newRowDecoder(fields []pgconn.FieldDescription, m *pgtype.Map) (*rowDecoder, error) {
	d := &rowDecoder{m: m, fields: fields, kinds: make([]valueKind, len(fields)), interned: make([]map[string]any, len(fields))}
	for i, f := range fields {
		d.kinds[i] = kindOf(f)
		if d.kinds[i] == kindString || d.kinds[i] == kindText {
			d.interned[i] = make(map[string]any)
		}
	}
	if len(fields) == 0 {
		return nil, errors.New("the chunk query returned no columns")
	}
	switch d.kinds[0] {
	case kindInt2, kindInt4, kindInt8:
	default:
		return nil, fmt.Errorf("cursor column %q has type OID %d, not an integer type: has the table changed since the run was planned?",
			fields[0].Name, fields[0].DataTypeOID)
	}
	return d, nil
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
	}
	return kindOther
}

// decode decodes one row: it returns the cursor (column 0) and stores the
// other columns in values.
func (d *rowDecoder) decode(raw [][]byte, values []any) (int64, error) {
	if len(raw) != len(d.kinds) || len(values) != len(raw)-1 {
		return 0, fmt.Errorf("row of %d values for %d columns", len(raw), len(values)+1)
	}
	if raw[0] == nil {
		return 0, fmt.Errorf("cursor column %q is NULL", d.fields[0].Name)
	}
	v, err := d.value(0, raw[0])
	if err != nil {
		return 0, err
	}
	cursor := v.(int64)
	for i := range values {
		if values[i], err = d.value(i+1, raw[i+1]); err != nil {
			return 0, err
		}
	}
	return cursor, nil
}

// pgEpoch is 2000-01-01 00:00:00 UTC, the zero of PostgreSQL's binary
// timestamps and dates, in Unix seconds.
const pgEpoch = 946_684_800

// value decodes the raw value src of column i.
func (d *rowDecoder) value(i int, src []byte) (any, error) {
	if src == nil {
		return nil, nil
	}
	kind := d.kinds[i]
	if want := fixedSize[kind]; want != 0 && len(src) != want {
		return nil, d.errorf(i, "%d bytes, want %d", len(src), want)
	}
	switch kind {
	case kindInt2:
		return int64(int16(binary.BigEndian.Uint16(src))), nil
	case kindInt4:
		if d.fields[i].DataTypeOID == pgtype.OIDOID {
			return int64(binary.BigEndian.Uint32(src)), nil
		}
		return int64(int32(binary.BigEndian.Uint32(src))), nil
	case kindInt8:
		return int64(binary.BigEndian.Uint64(src)), nil
	case kindFloat4:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(src))), nil
	case kindFloat8:
		return math.Float64frombits(binary.BigEndian.Uint64(src)), nil
	case kindText, kindString:
		return d.intern(i, src), nil
	case kindBytea, kindJSON:
		return append([]byte(nil), src...), nil
	case kindBool:
		return src[0] != 0, nil
	case kindTimestamp:
		us := int64(binary.BigEndian.Uint64(src))
		switch us {
		case math.MaxInt64:
			return "infinity", nil
		case math.MinInt64:
			return "-infinity", nil
		}
		sec, frac := us/1e6, us%1e6
		if frac < 0 {
			sec, frac = sec-1, frac+1e6
		}
		return time.Unix(pgEpoch+sec, frac*1e3).UTC(), nil
	case kindDate:
		days := int32(binary.BigEndian.Uint32(src))
		switch days {
		case math.MaxInt32:
			return "infinity", nil
		case math.MinInt32:
			return "-infinity", nil
		}
		return time.Unix(pgEpoch+int64(days)*86400, 0).UTC(), nil
	case kindJSONB:
		if len(src) == 0 || src[0] != 1 {
			return nil, d.errorf(i, "unknown jsonb format version")
		}
		return append([]byte(nil), src[1:]...), nil
	}
	return d.other(i, src)
}

// intern returns src of text column i as a string in an interface, the
// one it returned before for the same value if it can.
func (d *rowDecoder) intern(i int, src []byte) any {
	seen := d.interned[i]
	if seen == nil || len(src) > internMaxLen {
		return string(src)
	}
	if v, ok := seen[string(src)]; ok { // no allocation for the lookup
		return v
	}
	v := any(string(src))
	if len(seen) < internMaxValues {
		seen[v.(string)] = v
	}
	return v
}

// fixedSize is the size of the binary values of fixed size.
var fixedSize = [...]int{
	kindInt2: 2, kindInt4: 4, kindInt8: 8, kindFloat4: 4, kindFloat8: 8,
	kindBool: 1, kindTimestamp: 8, kindDate: 4, kindJSONB: 0,
}

// other decodes a value of a type without a decoder of its own (numeric,
// uuid, interval, arrays, …) with pgtype, and returns its text form, the
// way PostgreSQL prints it. These are rarer in the columns a job reads, so
// the detour costs little.
func (d *rowDecoder) other(i int, src []byte) (any, error) {
	f := d.fields[i]
	t, ok := d.m.TypeForOID(f.DataTypeOID)
	if !ok { // unreachable: pgx asks for the text format of types it does not know
		return string(src), nil
	}
	v, err := t.Codec.DecodeValue(d.m, f.DataTypeOID, f.Format, src)
	if err != nil {
		return nil, d.errorf(i, "%v", err)
	}
	text, err := d.m.Encode(f.DataTypeOID, pgtype.TextFormatCode, v, nil)
	if err != nil {
		return nil, d.errorf(i, "%v", err)
	}
	return string(text), nil
}

func (d *rowDecoder) errorf(i int, format string, args ...any) error {
	f := d.fields[i]
	name := fmt.Sprintf("OID %d", f.DataTypeOID)
	if t, ok := d.m.TypeForOID(f.DataTypeOID); ok {
		name = t.Name
	}
	return fmt.Errorf("column %q of type %s: "+format, append([]any{f.Name, name}, args...)...)
}
