package sinks

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/apd/v3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mrengine/mr/mapreduce"
)

// rowFunc is a one-row RowEncoder.
type rowFunc func(mapreduce.Encoder) error

func (f rowFunc) EncodeRow(e mapreduce.Encoder) error { return f(e) }

// TestCopyEncoder holds copyEncoder to pgx: each value, at the edges of
// its type, must encode to the bytes pgx's CopyFrom sends for the value
// that Values yields (see pgValue), length prefix included; and a row of
// the wrong width is an error.
func TestCopyEncoder(t *testing.T) {
	t.Parallel()
	dec := func(s string) *apd.Decimal {
		d, _, err := apd.NewFromString(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	berlin := time.FixedZone("CET", 3600)
	var cases []struct {
		oid   uint32
		value any // as Values has it; nil for NULL
	}
	add := func(oid uint32, values ...any) {
		for _, v := range values {
			cases = append(cases, struct {
				oid   uint32
				value any
			}{oid, v})
		}
	}
	add(pgtype.Int8OID, int64(0), int64(-1), int64(math.MinInt64), int64(math.MaxInt64), nil)
	add(pgtype.Float8OID, 0.0, math.Copysign(0, -1), 1.5, math.NaN(), math.Inf(1), math.Inf(-1), math.SmallestNonzeroFloat64, math.MaxFloat64)
	add(pgtype.TextOID, "", "héllo wörld", strings.Repeat("x", 100_000), nil)
	add(pgtype.BoolOID, true, false)
	add(pgtype.ByteaOID, []byte{}, []byte{0, 1, 0, 255}, bytes.Repeat([]byte{7}, 70_000))
	for _, d := range []string{"1970-01-01", "1999-12-31", "2000-01-01", "2000-01-02", "0001-01-01", "9999-12-31", "1969-07-20"} {
		day, err := time.Parse(time.DateOnly, d)
		if err != nil {
			t.Fatal(err)
		}
		add(pgtype.DateOID, mapreduce.DateOf(day))
	}
	add(pgtype.TimestamptzOID, time.Unix(0, 0), time.Unix(-1, 500), time.Unix(-1, 999_999_999), time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, berlin), time.Date(1, 1, 1, 0, 0, 0, 1000, time.UTC), time.Unix(1_700_000_000, 123_456_789).In(berlin))
	add(pgtype.NumericOID, dec("0"), dec("-1.50"), dec("1e-30"), dec("123456789012345678901234567890.123"), dec("NaN"), dec("Infinity"), dec("-Infinity"), nil)
	// Values of another Go type than the column's own go through pgx.
	add(pgtype.NumericOID, int64(42), 2.5)
	add(pgtype.Float8OID, int64(7))
	add(pgtype.Int8OID, true)

	m := pgtype.NewMap()
	for _, c := range cases {
		e := copyEncoder{m: m, oids: []uint32{c.oid}}
		err := e.row(rowFunc(func(enc mapreduce.Encoder) error {
			write(enc, c.value)
			return nil
		}))
		want := binary.BigEndian.AppendUint16(nil, 1)
		want = binary.BigEndian.AppendUint32(want, math.MaxUint32)
		pgxBuf, pgxErr := m.Encode(c.oid, pgtype.BinaryFormatCode, pgValue(timeUTC(c.value)), want)
		if pgxErr == nil && pgxBuf != nil {
			want = pgxBuf
			binary.BigEndian.PutUint32(want[2:], uint32(len(want)-6))
		}
		switch {
		case (err != nil) != (pgxErr != nil):
			t.Errorf("oid %d, %T %.40v: copyEncoder's error %v, pgx's %v", c.oid, c.value, c.value, err, pgxErr)
		case err == nil && !bytes.Equal(e.buf, want):
			t.Errorf("oid %d, %T %.40v: copyEncoder wrote %x, pgx %x", c.oid, c.value, c.value, head(e.buf), head(want))
		}
	}

	for _, n := range []int{1, 3} {
		e := copyEncoder{m: m, oids: []uint32{pgtype.Int8OID, pgtype.Int8OID}}
		err := e.row(rowFunc(func(enc mapreduce.Encoder) error {
			for range n {
				enc.Int64(1)
			}
			return nil
		}))
		if err == nil || !strings.Contains(err.Error(), "values for 2 columns") {
			t.Errorf("a row of %d values for 2 columns: %v, want an error", n, err)
		}
	}
}

// write passes v to e as a codec would.
func write(e mapreduce.Encoder, v any) {
	switch x := v.(type) {
	case nil:
		e.Null()
	case int64:
		e.Int64(x)
	case float64:
		e.Float64(x)
	case string:
		e.String(x)
	case bool:
		e.Bool(x)
	case []byte:
		e.Bytes(x)
	case mapreduce.Date:
		e.Date(x)
	case time.Time:
		e.Time(x)
	case *apd.Decimal:
		e.Decimal(x)
	}
}

// timeUTC is v, in UTC if it is a time, as Values has it.
func timeUTC(v any) any {
	if t, ok := v.(time.Time); ok {
		return t.UTC()
	}
	return v
}

// head is b, cut to a readable length.
func head(b []byte) []byte { return b[:min(len(b), 48)] }
