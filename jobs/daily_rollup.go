package jobs

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/mrengine/mr/mapreduce"
)

// RollupKey is daily_rollup's key: an account's category on a UTC day.
type RollupKey struct {
	Account  int64
	Day      mapreduce.Date
	Category string
}

// RollupTotals is daily_rollup's value.
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

var errPayloadNotObject = errors.New("payload is not a JSON object")

// DailyRollup sums events and amounts per account, UTC day and category,
// over events(id, account_id, ts, category, amount_cents, payload). A row
// whose payload is not a JSON object fails, and goes to the DLQ.
var DailyRollup = mapreduce.Job[RollupKey, RollupTotals]{
	Name:        "daily_rollup",
	Description: "events and total cents per account, UTC day and category",
	Input: mapreduce.Input{
		Table:   "events",
		Cursor:  "id",
		Columns: []string{"account_id", "ts", "category", "amount_cents", "payload"},
	},
	Output: mapreduce.Output{Table: "daily_rollup"},
	Key: mapreduce.Codec[RollupKey]{
		Fields: []mapreduce.Field{
			{Name: "account_id", Type: mapreduce.TypeInt64},
			{Name: "day", Type: mapreduce.TypeDate},
			{Name: "category", Type: mapreduce.TypeString},
		},
		Encode: func(k RollupKey, e mapreduce.Encoder) {
			e.Int64(k.Account)
			e.Date(k.Day)
			e.String(k.Category)
		},
		Decode: func(d mapreduce.Decoder) RollupKey {
			return RollupKey{Account: d.Int64(), Day: d.Date(), Category: d.String()}
		},
	},
	Value: mapreduce.Codec[RollupTotals]{
		Fields: []mapreduce.Field{
			{Name: "events", Type: mapreduce.TypeInt64},
			{Name: "total_cents", Type: mapreduce.TypeInt64},
		},
		Encode: func(v RollupTotals, e mapreduce.Encoder) {
			e.Int64(v.Events)
			e.Int64(v.TotalCents)
		},
		Decode: func(d mapreduce.Decoder) RollupTotals {
			return RollupTotals{Events: d.Int64(), TotalCents: d.Int64()}
		},
	},
	Map: func(_ context.Context, row mapreduce.Row, emit func(RollupKey, RollupTotals)) error {
		if row.Null(colPayload) {
			return mapreduce.Permanent(errors.New("payload is NULL"))
		}
		if !isJSONObject(row.Bytes(colPayload)) {
			return mapreduce.Permanent(errPayloadNotObject)
		}
		emit(RollupKey{
			Account:  row.Int64(colAccount),
			Day:      mapreduce.DateOf(row.Time(colTS)),
			Category: row.String(colCategory),
		}, RollupTotals{Events: 1, TotalCents: row.Int64(colAmount)})
		return nil
	},
	Combine: func(a, b RollupTotals) RollupTotals {
		return RollupTotals{Events: a.Events + b.Events, TotalCents: a.TotalCents + b.TotalCents}
	},
}

// isJSONObject reports whether p parses as a JSON object: its first
// non-space byte opens one, and it is valid JSON.
func isJSONObject(p []byte) bool {
	i := 0
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n') {
		i++
	}
	return i < len(p) && p[i] == '{' && json.Valid(p)
}

func init() { Register(DailyRollup) }
