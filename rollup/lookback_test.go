package rollup

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/rollup/agg"
)

// TestLookback_PostgreSQL checks the window's promise on a real
// PostgreSQL, for each kind of time key: the condition that the source
// runs holds for a time exactly when mr's key of it is the window's From
// or later, at the boundary to the microsecond and around it; also next
// to clock changes, where a window that would begin at a local hour
// that the change moves begins a day earlier.
func TestLookback_PostgreSQL(t *testing.T) {
	t.Parallel()
	tx := pgtest.Tx(t)
	since := time.Date(2026, 11, 29, 2, 34, 56, 789012000, time.UTC)
	for _, tt := range []struct {
		key, typ string
		from     any
		since    time.Time // if not the one above
	}{
		{"date_trunc('day', ts)", "timestamp with time zone", time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC), time.Time{}},
		{"date_trunc('day', ts, 'Asia/Kolkata')", "timestamp with time zone", time.Date(2026, 11, 28, 18, 30, 0, 0, time.UTC), time.Time{}},
		{"date_trunc('hour', ts)", "timestamp without time zone", time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC), time.Time{}},
		{"time_bucket('15 minutes', ts)", "timestamp without time zone", time.Date(2026, 11, 29, 2, 30, 0, 0, time.UTC), time.Time{}},
		{"ts", "timestamp with time zone", since, time.Time{}},
		{"ts", "date", mapreduce.Date(20786), time.Time{}},
		{"date_trunc('month', ts)", "date", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Time{}},
		{"time_bucket('7 days', ts)", "date", mapreduce.Date(20780), time.Time{}},
		// Berlin repeats 02:00-03:00 at 01:00Z: 00:30Z is 02:30 in summer time.
		{"date_trunc('hour', ts, 'Europe/Berlin')", "timestamp with time zone", time.Date(2024, 10, 27, 0, 0, 0, 0, time.UTC),
			time.Date(2024, 10, 27, 0, 30, 0, 0, time.UTC)},
		// Santiago skips midnight at 04:00Z: the day begins then, at -04.
		{"date_trunc('day', ts, 'America/Santiago')", "timestamp with time zone", time.Date(2024, 9, 8, 4, 0, 0, 0, time.UTC),
			time.Date(2024, 9, 8, 12, 0, 0, 0, time.UTC)},
		// Lord Howe moves from +10:30 to +11 at 15:30Z: 15:00Z, the start of
		// 02:00 at +11, is 01:30 at +10:30, so the window begins a day earlier.
		{"date_trunc('hour', ts, 'Australia/Lord_Howe')", "timestamp with time zone", time.Date(2024, 10, 4, 14, 30, 0, 0, time.UTC),
			time.Date(2024, 10, 5, 15, 40, 0, 0, time.UTC)},
	} {
		since := since
		if !tt.since.IsZero() {
			since = tt.since
		}
		t.Run(tt.key+" of "+tt.typ, func(t *testing.T) {
			q, err := Parse("SELECT " + tt.key + " AS k, count(*) AS n FROM orders GROUP BY 1")
			if err != nil {
				t.Fatal(err)
			}
			p, err := Compile(q, q.Input("id"), []string{tt.typ}, Options{Into: "out", PushDown: PushDownOff})
			if err != nil {
				t.Fatal(err)
			}
			lb, err := p.Lookback(72 * time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			from, where, err := lb.Window(since)
			if err != nil {
				t.Fatal(err)
			}
			if from != tt.from {
				t.Fatalf("the window begins at %v, want %v", from, tt.from)
			}
			k := p.timeKey
			start := micros(&agg.Value{Kind: k.kind, Int: asInt(from)})
			var times []int64
			for _, d := range []int64{-microsPerDay * 40, -microsPerDay, -3600e6, -1, 0, 1, 3600e6, microsPerDay, microsPerDay * 40} {
				times = append(times, start+d, since.UnixMicro()+d)
			}
			for _, us := range times {
				v := agg.Value{Kind: agg.KindTimestamp, Int: us}
				if tt.typ == "date" {
					v = agg.Value{Kind: agg.KindDate, Int: floorDiv(us, microsPerDay)}
				}
				key := micros(&v)
				if k.trunc != nil {
					key = k.trunc(key)
				}
				var in bool
				err := tx.QueryRow(context.Background(), "SELECT "+where+" FROM (SELECT CAST($1 AS "+tt.typ+") AS ts) AS orders",
					sourceText(v, tt.typ)).Scan(&in)
				if err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				if want := key >= start; in != want {
					t.Errorf("%s holds for %s: %t, but its key %s is from %s on: %t", where, sourceText(v, tt.typ), in,
						time.UnixMicro(key).UTC(), time.UnixMicro(start).UTC(), want)
				}
			}
		})
	}
}

// asInt is a window's From as an agg.Value's Int.
func asInt(from any) int64 {
	if d, ok := from.(mapreduce.Date); ok {
		return int64(d)
	}
	return from.(time.Time).UnixMicro()
}

// sourceText is v as text of the source type typ, read as mr reads it.
func sourceText(v agg.Value, typ string) string {
	t := time.UnixMicro(micros(&v)).UTC()
	switch {
	case typ == "date":
		return t.Format(time.DateOnly)
	case strings.HasSuffix(typ, "without time zone"):
		return t.Format("2006-01-02 15:04:05.999999")
	}
	return t.Format("2006-01-02 15:04:05.999999") + "+00"
}
