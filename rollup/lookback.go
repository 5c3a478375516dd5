package rollup

import (
	"fmt"
	"strings"
	"time"

	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/rollup/agg"
)

// timeKey is a key that buckets rows by a time, which --lookback windows
// (see mapreduce.Lookback): a date_trunc or time_bucket key, or a date or
// timestamp column as it is.
type timeKey struct {
	index   int               // among the keys
	name    string            // the output column
	arg     string            // the SQL of the time the source reads
	argType string            // the source's type of arg
	kind    agg.Kind          // of the key: date or timestamp
	trunc   func(int64) int64 // the key's truncation of arg's microseconds; nil for none
}

// firstTimeKey returns the first of keys that buckets rows by time, of
// the query read as in with the source's types, or nil.
func firstTimeKey(keys []keyFunc, in mapreduce.Input, types []string) *timeKey {
	for i, k := range keys {
		if k.kind != agg.KindDate && k.kind != agg.KindTimestamp {
			continue
		}
		e := k.col - len(in.Columns)
		return &timeKey{index: i, name: k.name, arg: in.Exprs[e], argType: types[e], kind: k.kind, trunc: k.trunc}
	}
	return nil
}

// Lookback returns the window of the last within of the query's first
// time key, which every batch of an incremental run recomputes whole
// (mr rollup --lookback). The key must bucket a date or timestamp that
// the source types as one, so that the window's rows can be found by
// comparing it at the source.
func (p *Plan) Lookback(within time.Duration) (*mapreduce.Lookback, error) {
	k := p.timeKey
	if k == nil {
		return nil, fmt.Errorf("--lookback windows a time key, and the query has none: group by date_trunc('day', ts), time_bucket('1 hour', ts) or a date or timestamp column")
	}
	literal := timeLiteral(k.argType)
	if literal == nil {
		return nil, fmt.Errorf("--lookback windows key %s, of %s, which the source reads as %s: it needs a date, timestamp or timestamptz there (cast it, e.g. (%s)::timestamptz)",
			k.name, k.arg, typeName(k.argType), k.arg)
	}
	return &mapreduce.Lookback{Within: within, Key: k.index, Window: func(since time.Time) (any, string, error) {
		from, err := k.windowStart(since.UnixMicro())
		if err != nil {
			return nil, "", err
		}
		// The first time the source can hold whose key is from or later:
		// from itself, a truncation's fixed point, or the next midnight
		// for a date.
		first := from
		if k.argType == "date" {
			first = -floorDiv(-from, microsPerDay) * microsPerDay
		}
		where := fmt.Sprintf("(%s) >= %s", k.arg, literal(time.UnixMicro(first).UTC()))
		if k.kind == agg.KindDate {
			return mapreduce.Date(floorDiv(from, microsPerDay)), where, nil
		}
		return time.UnixMicro(from).UTC(), where, nil
	}}, nil
}

// windowStart returns the first key of a window that holds since: the
// key of since, or of a day before it where a clock change near there
// would break the window's promise. A truncation in a zone is not
// monotone across every clock change (a local midnight that a change
// repeats), nor its own truncation at each (a local hour that a
// half-hour change moves), so the start is checked: every time before it
// must have an earlier key, every time from it on a key from it on. The
// check samples every minute for two days around it, as clocks change at
// whole minutes, and the ends of the boundary to the microsecond.
func (k *timeKey) windowStart(since int64) (int64, error) {
	switch {
	case k.trunc == nil && k.kind == agg.KindDate: // a date column is its own key
		return floorDiv(since, microsPerDay) * microsPerDay, nil
	case k.trunc == nil:
		return since, nil
	}
	clean := func(from int64) bool {
		if k.trunc(from) != from || k.trunc(from-1) >= from {
			return false
		}
		for t := from - 2*microsPerDay; t <= from+2*microsPerDay; t += 60_000_000 {
			if (t < from) != (k.trunc(t) < from) {
				return false
			}
		}
		return true
	}
	from := k.trunc(since)
	for range 14 {
		if clean(from) {
			return from, nil
		}
		from = k.trunc(from - microsPerDay)
	}
	return 0, fmt.Errorf("key %s has no clean window boundary in the two weeks before %s", k.name, time.UnixMicro(since).UTC())
}

// timeLiteral returns how to write a time as a literal of the source type
// typ, nil for a type that holds no time: the UTC wall clock, as mr reads
// a timestamp without time zone.
func timeLiteral(typ string) func(time.Time) string {
	const clock = "2006-01-02 15:04:05.999999"
	switch {
	case typ == "date":
		return func(t time.Time) string { return "CAST('" + t.Format(time.DateOnly) + "' AS date)" }
	case strings.HasPrefix(typ, "timestamp") && strings.HasSuffix(typ, "with time zone"):
		return func(t time.Time) string { return "CAST('" + t.Format(clock) + "+00' AS timestamptz)" }
	case strings.HasPrefix(typ, "timestamp") && strings.HasSuffix(typ, "without time zone"):
		return func(t time.Time) string { return "CAST('" + t.Format(clock) + "' AS timestamp)" }
	}
	return nil
}
