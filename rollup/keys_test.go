package rollup

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/rollup/agg"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestTruncate_PostgreSQL compares mr's date_trunc, in UTC and in zones
// with daylight saving and odd offsets, and its time_bucket with a real
// PostgreSQL's date_trunc and date_bin (time_bucket's alignment), over
// random timestamps from 1900 to 2100.
func TestTruncate_PostgreSQL(t *testing.T) {
	t.Parallel()
	tx := pgtest.Tx(t)
	r := rand.New(rand.NewPCG(7, 1))
	lo, hi := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro(), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	units := []TruncUnit{Microseconds, Milliseconds, Second, Minute, Hour, Day, Week, Month, Quarter, Year, Decade, Century, Millennium}
	zones := []string{"UTC", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe"}
	n := 0
	for range 300 {
		us := lo + r.Int64N(hi-lo)
		ts := time.UnixMicro(us).UTC()
		for _, zone := range zones {
			loc, err := time.LoadLocation(zone)
			if err != nil {
				t.Fatal(err)
			}
			for _, unit := range units {
				var want time.Time
				if err := tx.QueryRow(t.Context(), `SELECT date_trunc($1, $2::timestamptz, $3)`, string(unit), ts, zone).Scan(&want); err != nil {
					t.Fatal(err)
				}
				if got := truncate(us, unit, loc); got != want.UnixMicro() {
					t.Errorf("date_trunc(%s, %s, %s) = %s, PostgreSQL says %s", unit, ts.Format(time.RFC3339Nano), zone,
						time.UnixMicro(got).UTC().Format(time.RFC3339Nano), want.UTC().Format(time.RFC3339Nano))
				}
				n++
			}
		}
		for _, width := range []time.Duration{15 * time.Minute, time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 90 * time.Second} {
			var want time.Time
			err := tx.QueryRow(t.Context(), `SELECT date_bin($1::interval, $2::timestamptz, '2000-01-03 00:00:00+00')`,
				fmt.Sprintf("%d microseconds", width.Microseconds()), ts).Scan(&want)
			if err != nil {
				t.Fatal(err)
			}
			w := width.Microseconds()
			if got := floorDiv(us-bucketOrigin, w)*w + bucketOrigin; got != want.UnixMicro() {
				t.Errorf("time_bucket(%s, %s) = %d, date_bin says %d", width, ts, got, want.UnixMicro())
			}
		}
		for _, months := range []int64{1, 3, 12} {
			var want time.Time
			err := tx.QueryRow(t.Context(), `SELECT make_timestamptz(2000 + floor(m / 12)::int, (m - 12 * floor(m / 12))::int + 1, 1, 0, 0, 0, 'UTC')
				FROM (SELECT floor(((extract(year FROM t) - 2000) * 12 + extract(month FROM t) - 1) / $2) * $2 AS m
				      FROM (SELECT $1::timestamptz AT TIME ZONE 'UTC' AS t) s) s`, ts, months).Scan(&want)
			if err != nil {
				t.Fatal(err)
			}
			if got := bucketMonths(us, months); got != want.UnixMicro() {
				t.Errorf("time_bucket('%d months', %s) = %s, want %s", months, ts, time.UnixMicro(got).UTC(), want.UTC())
			}
		}
	}
	t.Logf("%d truncations equal PostgreSQL's", n)
}

// TestTruncate_ClockChanges compares mr's date_trunc with PostgreSQL's
// around every clock change of 2024 in zones that change at night, at
// midnight (Santiago, Havana, Cairo skip or repeat it) and by half an
// hour (Lord Howe), where a local time is skipped or repeated and
// PostgreSQL's rules decide the offset.
func TestTruncate_ClockChanges(t *testing.T) {
	t.Parallel()
	tx := pgtest.Tx(t)
	units := []TruncUnit{Minute, Hour, Day, Week, Month}
	n := 0
	for _, zone := range []string{"Europe/Berlin", "America/New_York", "America/Santiago", "America/Havana", "Africa/Cairo", "Australia/Lord_Howe", "Asia/Kathmandu"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		from := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
		for us := from; us < from+366*microsPerDay; us += 60_000_000 * 15 {
			if offsetAt(us, loc) == offsetAt(us+60_000_000*15, loc) {
				continue
			}
			change := us
			for offsetAt(change, loc) == offsetAt(us, loc) {
				change += 60_000_000
			}
			for _, d := range []int64{-microsPerDay, -3600e6 * 2, -3600e6, -1800e6, -1, 0, 1, 1800e6, 3600e6, 3600e6 * 2, microsPerDay} {
				ts := time.UnixMicro(change + d).UTC()
				for _, unit := range units {
					var want time.Time
					if err := tx.QueryRow(t.Context(), `SELECT date_trunc($1, $2::timestamptz, $3)`, string(unit), ts, zone).Scan(&want); err != nil {
						t.Fatal(err)
					}
					if got := truncate(change+d, unit, loc); got != want.UnixMicro() {
						t.Errorf("date_trunc(%s, %s, %s) = %s, PostgreSQL says %s", unit, ts.Format(time.RFC3339Nano), zone,
							time.UnixMicro(got).UTC().Format(time.RFC3339Nano), want.UTC().Format(time.RFC3339Nano))
					}
					n++
				}
			}
		}
	}
	if n < 600 {
		t.Fatalf("only %d truncations around clock changes: the zones changed no clocks in 2024?", n)
	}
	t.Logf("%d truncations around clock changes equal PostgreSQL's", n)
}

// TestArith_PostgreSQL compares the arithmetic over aggregate results with
// PostgreSQL's operators: the result's type and its text.
func TestArith_PostgreSQL(t *testing.T) {
	t.Parallel()
	tx := pgtest.Tx(t)
	values := []struct {
		sql string
		v   agg.Value
	}{
		{"7::bigint", agg.IntValue(7)}, {"(-3)::bigint", agg.IntValue(-3)}, {"0::bigint", agg.IntValue(0)},
		{"5::integer", agg.IntValue(5)}, {"2::smallint", agg.IntValue(2)}, {"0.5::real", agg.FloatValue(0.5)},
		{"2.50::numeric", mustDec(t, "2.50")}, {"(-0.125)::numeric", mustDec(t, "-0.125")}, {"3::numeric", mustDec(t, "3")},
		{"1.5::float8", agg.FloatValue(1.5)}, {"(-2)::float8", agg.FloatValue(-2)}, {"0::float8", agg.FloatValue(0)},
		{"NULL::bigint", agg.Null(agg.KindInt)},
	}
	n := 0
	for _, a := range values {
		for _, b := range values {
			for _, op := range []byte{'+', '-', '*', '/', '^'} {
				if _, ok := agg.ArithKind(op, a.v.Kind, b.v.Kind); !ok {
					continue
				}
				var want *string
				var typ string
				err := tx.QueryRow(t.Context(), fmt.Sprintf(`SELECT (%s %c %s)::text, pg_typeof(%s %c %s)::text`, a.sql, op, b.sql, a.sql, op, b.sql)).Scan(&want, &typ)
				got, gerr := agg.Arith(op, a.v, b.v)
				switch {
				case err != nil && gerr != nil:
					// both refuse, say division by zero
				case err != nil || gerr != nil:
					t.Errorf("%s %c %s: mr %v (%v), PostgreSQL %v", a.sql, op, b.sql, got, gerr, err)
				case want == nil:
					if !got.Null {
						t.Errorf("%s %c %s = %s, PostgreSQL says NULL", a.sql, op, b.sql, got)
					}
				case !sameText(got, *want, op) || arithType(op, typeOf(a.sql), typeOf(b.sql), got.Kind) != typ:
					t.Errorf("%s %c %s = %s (%s), PostgreSQL says %s (%s)", a.sql, op, b.sql, got,
						arithType(op, typeOf(a.sql), typeOf(b.sql), got.Kind), *want, typ)
				}
				if err != nil {
					if _, rerr := tx.Exec(t.Context(), "ROLLBACK TO SAVEPOINT arith"); rerr != nil {
						t.Fatal(rerr)
					}
				}
				if _, err := tx.Exec(t.Context(), "SAVEPOINT arith"); err != nil {
					t.Fatal(err)
				}
				n++
			}
		}
	}
	t.Logf("%d operations equal PostgreSQL's", n)
}

func mustDec(t *testing.T, s string) agg.Value {
	v, err := agg.ParseDecimal(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// typeOf is the type of a cast literal of TestArith_PostgreSQL.
func typeOf(sql string) string {
	for short, long := range map[string]string{"::bigint": "bigint", "::integer": "integer", "::smallint": "smallint",
		"::numeric": "numeric", "::float8": "double precision", "::real": "real"} {
		if strings.HasSuffix(sql, short) {
			return long
		}
	}
	return ""
}

// sameText compares v, the result of op, with PostgreSQL's text of it: a
// double by value, since PostgreSQL prints the shortest text that reads
// back exactly, and of ^ within one unit in the last place (Go's math.Pow
// is not always correctly rounded, glibc's pow is).
func sameText(v agg.Value, text string, op byte) bool {
	if v.Kind == agg.KindFloat {
		f, err := strconv.ParseFloat(text, 64)
		return err == nil && (f == v.Float || op == '^' && (math.Nextafter(f, math.Inf(1)) == v.Float || math.Nextafter(f, math.Inf(-1)) == v.Float))
	}
	return v.String() == text
}
