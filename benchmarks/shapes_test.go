package benchmarks

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/mrengine/mr/jobs"
	"github.com/mrengine/mr/mapreduce"
)

// A shape is one aggregation of the events table, done three ways in
// BenchmarkCompare: by mr (job), by one in-database statement (inDB) and
// by a hand-written Go loop (naiveUpsert, one row at a time). Every way
// writes the same output table, created by ddl.
type shape struct {
	name   string // the shape=… part of benchmark names
	job    string // in the jobs registry
	output string
	ddl    string
	// inDB computes the whole output in one statement, into an empty
	// output table; it needs mr_is_json_object (eventgen.SeedPostgres
	// creates it). inDBCheap is the same statement with the cheapest
	// stand-in for any exact check (see cheapCheck): a bound that no
	// exact check in the database can beat, which counts invalid JSON
	// that begins with "{", so it is timed, never compared.
	inDB, inDBCheap string
	// naiveUpsert adds one row's counts to its group; naiveArgs are its
	// arguments for one event.
	naiveUpsert string
	naiveArgs   func(account int64, ts time.Time, category string, amount int64) []any
}

// cheapCheck is the cheapest predicate that could stand in for an exact
// check of a JSON object: the payload's first non-space character is "{".
const cheapCheck = `left(ltrim(payload, E' \t\r\n'), 1) = '{'`

// shapes: high is daily_rollup as it is, about 0.8 groups per row at a
// million rows (a group per account, UTC day and category); low is
// category_day_rollup, keyed by day and category only: 90 × 20 = 1,800
// groups whatever the row count.
var shapes = []shape{
	{
		name:   "high",
		job:    "daily_rollup",
		output: "daily_rollup",
		ddl: `CREATE TABLE daily_rollup (account_id bigint NOT NULL, day date NOT NULL, category text NOT NULL,
			events bigint, total_cents bigint, PRIMARY KEY (account_id, day, category))`,
		inDB: `INSERT INTO daily_rollup (account_id, day, category, events, total_cents)
			SELECT account_id, (ts AT TIME ZONE 'UTC')::date, category, count(*), sum(amount_cents)
			FROM events WHERE mr_is_json_object(payload)
			GROUP BY 1, 2, 3
			ON CONFLICT (account_id, day, category) DO UPDATE
			SET events = excluded.events, total_cents = excluded.total_cents`,
		naiveUpsert: `INSERT INTO daily_rollup AS t (account_id, day, category, events, total_cents)
			VALUES ($1, $2, $3, 1, $4)
			ON CONFLICT (account_id, day, category) DO UPDATE
			SET events = t.events + excluded.events, total_cents = t.total_cents + excluded.total_cents`,
		naiveArgs: func(account int64, ts time.Time, category string, amount int64) []any {
			return []any{account, mapreduce.DateOf(ts).Time(), category, amount}
		},
	},
	{
		name:   "low",
		job:    "category_day_rollup",
		output: "category_day_rollup",
		ddl: `CREATE TABLE category_day_rollup (day date NOT NULL, category text NOT NULL,
			events bigint, total_cents bigint, PRIMARY KEY (day, category))`,
		inDB: `INSERT INTO category_day_rollup (day, category, events, total_cents)
			SELECT (ts AT TIME ZONE 'UTC')::date, category, count(*), sum(amount_cents)
			FROM events WHERE mr_is_json_object(payload)
			GROUP BY 1, 2
			ON CONFLICT (day, category) DO UPDATE
			SET events = excluded.events, total_cents = excluded.total_cents`,
		naiveUpsert: `INSERT INTO category_day_rollup AS t (day, category, events, total_cents)
			VALUES ($1, $2, 1, $3)
			ON CONFLICT (day, category) DO UPDATE
			SET events = t.events + excluded.events, total_cents = t.total_cents + excluded.total_cents`,
		naiveArgs: func(_ int64, ts time.Time, category string, amount int64) []any {
			return []any{mapreduce.DateOf(ts).Time(), category, amount}
		},
	},
}

// DayCategory is category_day_rollup's key.
type DayCategory struct {
	Day      mapreduce.Date
	Category string
}

// CategoryDayRollup is the low-cardinality twin of daily_rollup: the same
// rows, the same poison rule and the same values, keyed by UTC day and
// category only. It is registered by this package alone, for
// BenchmarkCompare/shape=low.
var CategoryDayRollup = mapreduce.Job[DayCategory, jobs.RollupTotals]{
	Name:        "category_day_rollup",
	Description: "events and total cents per UTC day and category (benchmarks only)",
	Input: mapreduce.Input{
		Table:   "events",
		Cursor:  "id",
		Columns: []string{"ts", "category", "amount_cents", "payload"},
	},
	Output: mapreduce.Output{Table: "category_day_rollup"},
	Key: mapreduce.Codec[DayCategory]{
		Fields: []mapreduce.Field{
			{Name: "day", Type: mapreduce.TypeDate},
			{Name: "category", Type: mapreduce.TypeString},
		},
		Encode: func(k DayCategory, e mapreduce.Encoder) {
			e.Date(k.Day)
			e.String(k.Category)
		},
		Decode: func(d mapreduce.Decoder) DayCategory {
			return DayCategory{Day: d.Date(), Category: d.String()}
		},
	},
	Value: jobs.DailyRollup.Value,
	Map: func(_ context.Context, row mapreduce.Row, emit func(DayCategory, jobs.RollupTotals)) error {
		const ts, category, amount, payload = 0, 1, 2, 3
		if row.Null(payload) {
			return mapreduce.Permanent(errors.New("payload is NULL"))
		}
		if !jobs.IsJSONObject(row.Bytes(payload)) {
			return mapreduce.Permanent(errors.New("payload is not a JSON object"))
		}
		emit(DayCategory{Day: mapreduce.DateOf(row.Time(ts)), Category: row.String(category)},
			jobs.RollupTotals{Events: 1, TotalCents: row.Int64(amount)})
		return nil
	},
	Combine: jobs.DailyRollup.Combine,
}

func init() {
	jobs.Register(CategoryDayRollup)
	for i, sh := range shapes {
		if shapes[i].inDBCheap = strings.Replace(sh.inDB, "mr_is_json_object(payload)", cheapCheck, 1); shapes[i].inDBCheap == sh.inDB {
			panic("benchmarks: shape " + sh.name + " checks no payload to check cheaply")
		}
	}
}
