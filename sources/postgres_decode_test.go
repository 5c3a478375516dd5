package sources_test

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"unsafe"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
	"github.com/mrengine/mr/sources"
)

// TestPostgres_StreamNumeric reads numeric values of every shape through
// Stream and checks each against the text PostgreSQL prints for it
// (numeric_out, through v::text in the same query): edge cases, then
// thousands of random values of every size and scale.
func TestPostgres_StreamNumeric(t *testing.T) {
	t.Parallel()
	edges := []string{ // SQL expressions
		`'0'`, `'0.00'`, `'-0'`, `'-0.000'`, `'-0.5'`, `'0.5'`, `'1'`, `'-1'`, `'12.50'`, `'-0.000100'`, `'1.0000'`,
		`'9999'`, `'10000'`, `'10001'`, `'99999999'`, `'100000000'`, `'1000000000000'`, `'1e100'`, `'-1e100'`,
		`'0.1'`, `'0.01'`, `'0.001'`, `'0.0001'`, `'0.00001'`, `'0.00000001'`, `'0.00010'`, `'1.5000000000'`,
		`'1e-30'`, `'-1e-30'`, `'0.000000000000000000000000000001000'`, `'1.000000000000000000000'`,
		`'10000.0001'`, `'99999999.99999999'`, `'123456789012345678901234567890.123456789012345678901234567890'`,
		`'1e-16383'`, `'-9e131071'`, `'NaN'`, `'Infinity'`, `'-Infinity'`,
		`repeat('9', 131072) || '.' || repeat('9', 16383)`, // 36864 digits: a count above 32767
		`0::numeric(9,6)`, `12.345::numeric(9,6)`, `-999.999999::numeric(9,6)`, `1.5::numeric(20,10)`,
		`10::numeric ^ 100`, `10::numeric ^ -30`, `1::numeric / 3`, `-2::numeric / 3`, `sqrt(2::numeric)`,
		`2::numeric ^ 0.5`, `factorial(50)`, `trunc(-1234.5678, -2)`, `round(0.00004, 4)`,
	}
	rows := make([]string, len(edges))
	for i, e := range edges {
		rows[i] = fmt.Sprintf("(%d, (%s)::numeric)", i+1, e)
	}
	random := []string{
		// Up to 12 decimals, trailing zeros kept.
		`INSERT INTO t SELECT 1000 + i, round(((random() - 0.5) * 2e6)::numeric, (random() * 12)::int),
			round((random() * 2000 - 1000)::numeric, 6) FROM generate_series(1, 1000) i`,
		// From 1e-40 to 1e40, as float8 converts: 15 digits, most of them
		// far from the point.
		`INSERT INTO t SELECT 3000 + i, ((random() - 0.5) * 10 ^ (random() * 80 - 40))::numeric,
			(random() * 2 - 1)::numeric(9,6) FROM generate_series(1, 1000) i`,
		// Integers of up to 20 digits times a power of ten: weights far
		// above or below the digits stored.
		`INSERT INTO t SELECT 5000 + i, trunc(random()::numeric * 10 ^ (random() * 20)::int) * 10::numeric ^ ((random() * 200)::int - 100),
			trunc((random() * 1000)::numeric, (random() * 6)::int) FROM generate_series(1, 1000) i`,
		// Quotients, of a display scale of 20 or so; some negative.
		`INSERT INTO t SELECT 7000 + i, (random() - 0.3)::numeric / (1 + (random() * 1e6)::int),
			-round(random()::numeric, 6) FROM generate_series(1, 1000) i`,
	}
	bundle := setupPostgres(t, `CREATE TABLE t (id bigint PRIMARY KEY, v numeric, s numeric(9,6))`,
		`INSERT INTO t (id, v) VALUES `+strings.Join(rows, ", "),
		`INSERT INTO t (id) VALUES (100)`, // NULL, NULL
		// One string, so one connection: the same rows on every run.
		`SELECT setseed(0.7); `+strings.Join(random, "; "))
	in := mapreduce.Input{Table: "t", Cursor: "id", Columns: []string{"v", "s"}, Exprs: []string{"v::text", "s::text"}}
	read := 0
	err := bundle.src.Stream(t.Context(), in, partition.Range{Lo: 1, Hi: 10000}, 1000, mapreduce.NewBatch(in.Names()), func(b *mapreduce.Batch) error {
		for r := range b.Len() {
			row := b.Row(r)
			for c := range in.Columns {
				got, want := row.Value(c), row.Value(len(in.Columns)+c)
				if got != want {
					t.Errorf("id %d, %s = %T %.60q, want %T %.60q", row.Cursor(), in.Columns[c], got, got, want, want)
				}
			}
			read++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := len(edges) + 1 + 4000; read != want {
		t.Errorf("read %d rows, want %d", read, want)
	}
}

// numericBytes is a binary numeric value, as numeric_send writes it.
func numericBytes(ndigits uint16, weight int16, sign, scale uint16, digits ...uint16) []byte {
	b := binary.BigEndian.AppendUint16(nil, ndigits)
	b = binary.BigEndian.AppendUint16(b, uint16(weight))
	b = binary.BigEndian.AppendUint16(b, sign)
	b = binary.BigEndian.AppendUint16(b, scale)
	for _, d := range digits {
		b = binary.BigEndian.AppendUint16(b, d)
	}
	return b
}

// numericDecoder returns a function decoding a value of the binary
// numeric column "v" of a row, all with one decoder, as one query's rows
// are.
func numericDecoder(t testing.TB) func(src []byte) (any, error) {
	t.Helper()
	decode, err := sources.NewRowDecoder([]pgconn.FieldDescription{
		{Name: "id", DataTypeOID: pgtype.Int8OID, Format: pgtype.BinaryFormatCode},
		{Name: "v", DataTypeOID: pgtype.NumericOID, Format: pgtype.BinaryFormatCode},
	}, pgtype.NewMap())
	if err != nil {
		t.Fatal(err)
	}
	b := mapreduce.NewBatch([]string{"v"})
	return func(src []byte) (any, error) {
		b.Reset()
		if _, err := decode([][]byte{make([]byte, 8), src}, b); err != nil {
			return nil, err
		}
		return b.Row(0).Value(0), nil
	}
}

func TestDecodeNumeric(t *testing.T) {
	t.Parallel()

	// Bytes that are no numeric value fail the row with an error that
	// says what is wrong, as numeric_recv would refuse them.
	t.Run("Malformed", func(t *testing.T) {
		t.Parallel()
		decode := numericDecoder(t)
		for _, tt := range []struct {
			src  []byte
			want string
		}{
			{[]byte{}, "0 bytes, want at least 8"},
			{numericBytes(0, 0, 0, 0)[:7], "7 bytes, want at least 8"},
			{numericBytes(0xFFFF, 0, 0, 0), "8 bytes, want 131078 for 65535 digits"},
			{numericBytes(2, 0, 0, 0, 1), "10 bytes, want 12 for 2 digits"},
			{numericBytes(1, 0, 0, 0, 1, 2), "12 bytes, want 10 for 1 digits"},
			{numericBytes(2, 0, 0, 0, 1, 10000), "digit 2 of 2 is 10000, want below 10000"},
			{numericBytes(1, 0, 0, 0, 0xFFFF), "digit 1 of 1 is 65535, want below 10000"},
			{numericBytes(1, 0, 0x8000, 0, 1), "invalid sign 0x8000"},
			{numericBytes(1, 0, 0x0001, 0, 1), "invalid sign 0x0001"},
			{numericBytes(0, 0, 0xE000, 0), "invalid sign 0xE000"},
			{numericBytes(1, 0, 0, 0x4000, 1), "display scale 16384, above the maximum 16383"},
		} {
			got, err := decode(tt.src)
			want := `column "v" of type numeric: ` + tt.want
			if err == nil || err.Error() != want {
				t.Errorf("decode(% x) = %#v, %v; want error %s", tt.src, got, err, want)
			}
		}
	})

	// Bytes PostgreSQL never sends, but reads back (numeric_recv) as a
	// value it prints: leading zero digits, digits beyond the display
	// scale, a negative zero.
	t.Run("NonCanonical", func(t *testing.T) {
		t.Parallel()
		decode := numericDecoder(t)
		for _, tt := range []struct {
			src  []byte
			want string
		}{
			{numericBytes(2, 1, 0, 0, 0, 5), "5"},
			{numericBytes(3, 2, 0, 1, 0, 0, 7), "7.0"},
			{numericBytes(0, 5, 0, 0), "0"},
			{numericBytes(0, -3, 0, 2), "0.00"},
			{numericBytes(0, 0, 0x4000, 2), "0.00"},
			{numericBytes(2, 0, 0, 2, 1, 2345), "1.23"},
			{numericBytes(2, 0, 0x4000, 2, 1, 2345), "-1.23"},
			{numericBytes(1, -1, 0x4000, 2, 12), "0.00"},
			{numericBytes(1, -1, 0x4000, 3, 12), "-0.001"},
			{numericBytes(1, 0, 0xC000, 3, 12), "NaN"},
			{numericBytes(1, 2, 0xF000, 0, 1), "-Infinity"},
			{numericBytes(1, -32768, 0, 0x3FFF, 1), "0." + strings.Repeat("0", 0x3FFF)},
			{numericBytes(1, 32767, 0, 0, 9999), "9999" + strings.Repeat("0000", 32767)},
		} {
			got, err := decode(tt.src)
			if err != nil || got != tt.want {
				t.Errorf("decode(% x) = %.40q, %v; want %.40q", tt.src, got, err, tt.want)
			}
		}
	})

	// A value of a column of few values comes back as the same string
	// each time; a column that shows many distinct values stops being
	// interned, so that it wastes no lookups, unless its lookups mostly
	// hit.
	t.Run("Interning", func(t *testing.T) {
		t.Parallel()
		price := numericBytes(2, 0, 0, 2, 12, 5000) // 12.50
		interned := func(decode func([]byte) (any, error)) bool {
			a, _ := decode(price)
			b, _ := decode(price)
			return unsafe.StringData(a.(string)) == unsafe.StringData(b.(string))
		}
		for _, tt := range []struct {
			name     string
			distinct int // of every 4 rows, how many hold a value not seen before; the others hold price
			want     bool
		}{
			{"Few", 0, true},
			{"Skewed", 1, true},
			{"Distinct", 4, false},
		} {
			decode := numericDecoder(t)
			decode(price) // interned before the column shows what it is
			for row := range 10_000 {
				if row%4 < tt.distinct {
					decode(numericBytes(2, 1, 0, 0, uint16(row/10000+1), uint16(row%10000)))
				} else {
					decode(price)
				}
			}
			if got := interned(decode); got != tt.want {
				t.Errorf("%s: 12.50 interned after 10,000 rows: %t, want %t", tt.name, got, tt.want)
			}
		}
	})
}

// numericText matches what numeric_out prints.
var numericText = regexp.MustCompile(`^(NaN|Infinity|-Infinity|-?(0|[1-9][0-9]*)(\.[0-9]+)?)$`)

// FuzzDecodeNumeric decodes arbitrary bytes as a numeric: never a panic,
// and what decodes is numeric_out's text of the value, computed apart
// with math/big: the digits, cut off (never rounded) to the display
// scale, and zero without a sign.
func FuzzDecodeNumeric(f *testing.F) {
	for _, src := range [][]byte{
		numericBytes(0, 0, 0, 0),
		numericBytes(0, 0, 0, 2),
		numericBytes(2, 0, 0x4000, 4, 12, 5000),
		numericBytes(1, 3, 0, 0, 1),
		numericBytes(1, -8, 0, 30, 100),
		numericBytes(3, 1, 0, 9, 1, 2345, 6789),
		numericBytes(0, 0, 0xC000, 0),
		numericBytes(0, 0, 0xD000, 0),
		numericBytes(1, 0, 0, 0, 10000),
		numericBytes(1, 0, 0, 0, 1)[:9],
	} {
		f.Add(src)
	}
	decode := numericDecoder(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		got, err := decode(src)
		if err != nil {
			return
		}
		text, ok := got.(string)
		if !ok || !numericText.MatchString(text) {
			t.Fatalf("decode(% x) = %#v, not a numeric's text", src, got)
		}
		if text == "NaN" || strings.HasSuffix(text, "Infinity") || len(text) > 1000 {
			return
		}
		ndigits, weight := int(binary.BigEndian.Uint16(src)), int(int16(binary.BigEndian.Uint16(src[2:])))
		scale := int(binary.BigEndian.Uint16(src[6:]))
		// The value times 10^scale, cut to an integer: the digits as one
		// integer, times 10000^(weight-ndigits+1), times 10^scale.
		var coeff, pow big.Int
		for k := range ndigits {
			coeff.Mul(&coeff, big.NewInt(10000))
			coeff.Add(&coeff, big.NewInt(int64(binary.BigEndian.Uint16(src[8+2*k:]))))
		}
		switch exp := 4*(weight-ndigits+1) + scale; {
		case exp >= 0:
			coeff.Mul(&coeff, pow.Exp(big.NewInt(10), big.NewInt(int64(exp)), nil))
		case -exp > 4*ndigits: // below 10^-scale
			coeff.SetInt64(0)
		default:
			coeff.Quo(&coeff, pow.Exp(big.NewInt(10), big.NewInt(int64(-exp)), nil))
		}
		want := fmt.Sprintf("%0*s", scale+1, coeff.String())
		if scale > 0 {
			want = want[:len(want)-scale] + "." + want[len(want)-scale:]
		}
		if binary.BigEndian.Uint16(src[4:]) == 0x4000 && coeff.Sign() != 0 {
			want = "-" + want
		}
		if text != want {
			t.Fatalf("decode(% x) = %q, want %q", src, text, want)
		}
	})
}

// captured is the result of a query as it came off the wire: the fields
// and a copy of every row's raw values.
type captured struct {
	fields []pgconn.FieldDescription
	rows   [][][]byte
}

// capture runs query (its first column an int8 cursor) with random()
// seeded, so that a benchmark reads the same values on every run, and
// keeps the raw values of its result.
func capture(t testing.TB, query string, args ...any) captured {
	t.Helper()
	conn, err := pgtest.Pool(t).Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(t.Context(), `SELECT setseed(0.42)`); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(t.Context(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var c captured
	for rows.Next() {
		if c.fields == nil {
			c.fields = append(c.fields, rows.FieldDescriptions()...)
		}
		row := make([][]byte, len(rows.RawValues()))
		for i, v := range rows.RawValues() {
			if v != nil {
				row[i] = append([]byte{}, v...)
			}
		}
		c.rows = append(c.rows, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return c
}

// BenchmarkDecodeNumeric decodes numeric values as PostgreSQL sends them
// in binary, one per op, with a fresh decoder every 10,000 values as a
// query of that many rows has: a column of about as many distinct values
// as rows (numeric(9,6)), one of 50 prices, one of values too long to
// intern, and one of 20 values for 90% of the rows and distinct ones for
// the rest.
func BenchmarkDecodeNumeric(b *testing.B) {
	const rows = 10_000
	for _, bench := range []struct{ name, expr string }{
		{"values=scale6", `round((random() * 2000 - 1000)::numeric, 6)::numeric(9,6)`},
		{"values=price50", `(floor(random() * 50) + 0.99)::numeric(9,2)`},
		{"values=wide", `(random() * 1e15)::numeric / 7`},
		{"values=skewed", `CASE WHEN random() < 0.9 THEN (floor(random() * 20) + 0.5)::numeric(9,2)
			ELSE round((random() * 1e6)::numeric, 2) END`},
	} {
		b.Run(bench.name, func(b *testing.B) {
			c := capture(b, `SELECT i::int8, `+bench.expr+` FROM generate_series(1, $1) i`, rows)
			if f := c.fields[1]; f.DataTypeOID != pgtype.NumericOID || f.Format != pgtype.BinaryFormatCode {
				b.Fatalf("column of type OID %d in format %d, want binary numeric", f.DataTypeOID, f.Format)
			}
			m := pgtype.NewMap()
			batch := mapreduce.NewBatch([]string{"v"})
			var decode func([][]byte, *mapreduce.Batch) (int64, error)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%rows == 0 {
					var err error
					if decode, err = sources.NewRowDecoder(c.fields, m); err != nil {
						b.Fatal(err)
					}
				}
				batch.Reset()
				if _, err := decode(c.rows[i%rows], batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
