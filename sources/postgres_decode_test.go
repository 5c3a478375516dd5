package sources_test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/sources"
)

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
// as rows (numeric(9,6)), one of 50 prices, and one of values too long to
// intern.
func BenchmarkDecodeNumeric(b *testing.B) {
	const rows = 10_000
	for _, bench := range []struct{ name, expr string }{
		{"values=scale6", `round((random() * 2000 - 1000)::numeric, 6)::numeric(9,6)`},
		{"values=price50", `(floor(random() * 50) + 0.99)::numeric(9,2)`},
		{"values=wide", `(random() * 1e15)::numeric / 7`},
	} {
		b.Run(bench.name, func(b *testing.B) {
			c := capture(b, `SELECT i::int8, `+bench.expr+` FROM generate_series(1, $1) i`, rows)
			if f := c.fields[1]; f.DataTypeOID != pgtype.NumericOID || f.Format != pgtype.BinaryFormatCode {
				b.Fatalf("column of type OID %d in format %d, want binary numeric", f.DataTypeOID, f.Format)
			}
			m := pgtype.NewMap()
			values := make([]any, 1)
			var decode func([][]byte, []any) (int64, error)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%rows == 0 {
					var err error
					if decode, err = sources.NewRowDecoder(c.fields, m); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := decode(c.rows[i%rows], values); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
