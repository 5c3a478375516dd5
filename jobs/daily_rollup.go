package jobs

import (
	"context"
	"errors"

	"github.com/mrengine/mr/mapreduce"
)

// RollupKey is daily_rollup's key: an account's category on a UTC day.
// Its fields are the output's key columns, in order (see mapreduce.Codec).
type RollupKey struct {
	Account  int64 `mr:"account_id"`
	Day      mapreduce.Date
	Category string
}

// RollupTotals is daily_rollup's value: the output's value columns.
type RollupTotals struct {
	Events     int64
	TotalCents int64
}

// The columns of events that daily_rollup reads, in Input.Columns order.
const (
	colAccount = iota
	colTS
	colCategory
	colAmount
	colPayload
)

// DailyRollup sums events and amounts per account, UTC day and category,
// over events(id, account_id, ts, category, amount_cents, payload). A row
// whose payload is not a JSON object fails, and goes to the DLQ.
var DailyRollup = mapreduce.Job[RollupKey, RollupTotals]{
	Name:        "daily_rollup",
	Description: "events and total cents per account, UTC day and category",
	Input:       mapreduce.Input{Table: "events", Columns: []string{"account_id", "ts", "category", "amount_cents", "payload"}},
	Output:      mapreduce.Output{Table: "daily_rollup"},
	Map: func(_ context.Context, row mapreduce.Row, emit func(RollupKey, RollupTotals)) error {
		if row.Null(colPayload) {
			return mapreduce.Permanent(errors.New("payload is NULL"))
		}
		if !IsJSONObject(row.Bytes(colPayload)) {
			return mapreduce.Permanent(errPayloadNotObject)
		}
		k := RollupKey{Account: row.Int64(colAccount), Day: mapreduce.DateOf(row.Time(colTS)), Category: row.String(colCategory)}
		emit(k, RollupTotals{Events: 1, TotalCents: row.Int64(colAmount)})
		return nil
	},
	Combine: func(a, b RollupTotals) RollupTotals {
		return RollupTotals{Events: a.Events + b.Events, TotalCents: mapreduce.AddInt64(a.TotalCents, b.TotalCents)}
	},
	// Sums merge into stored sums: mr run daily_rollup --incremental adds
	// the new events to the stored totals.
	Incremental: true,
}

// init validates DailyRollup in place before registering it, which
// derives its codecs into the variable too: code outside the registry can
// then use DailyRollup.Key, as to find the bucket of a key.
func init() {
	if err := DailyRollup.Validate(); err != nil {
		panic(err)
	}
	Register(DailyRollup)
}
