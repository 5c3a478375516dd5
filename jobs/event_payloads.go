package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/mrengine/mr/mapreduce"
)

// PayloadFields is event_payloads' value: what an event's payload holds,
// as the output's value columns.
type PayloadFields struct {
	Account int64 `mr:"account_id"`
	// Keys is the number of distinct top-level keys of the payload object
	// (of a key given twice, JSON parsers keep the last).
	Keys int64
	// Channel is the payload's top-level "channel" if it is a string, and
	// Items its "items" if it is an integer written without fraction or
	// exponent; nil, NULL, otherwise.
	Channel *string
	Items   *int64
}

// The columns of events that event_payloads reads, in Input.Columns order.
const (
	payloadColAccount = iota
	payloadColPayload
)

// EventPayloads parses each event's payload, a JSON object, into one row
// of event_payloads per event id: a map-only job (see mapreduce.Job), whose
// chunks are upserted as the run reads them. A row whose payload is not a
// JSON object fails, and goes to the DLQ, as in daily_rollup.
var EventPayloads = mapreduce.Job[int64, PayloadFields]{
	Name:        "event_payloads",
	Description: "each event's JSON payload as a row: its key count, channel and items",
	Input:       mapreduce.Input{Table: "events", Columns: []string{"account_id", "payload"}},
	Output:      mapreduce.Output{Table: "event_payloads"},
	Key:         mapreduce.Columns[int64]("event_id"),
	Map: func(_ context.Context, row mapreduce.Row, emit func(int64, PayloadFields)) error {
		if row.Null(payloadColPayload) {
			return mapreduce.Permanent(errors.New("payload is NULL"))
		}
		p := row.Bytes(payloadColPayload)
		var obj map[string]json.RawMessage
		if !IsJSONObject(p) || json.Unmarshal(p, &obj) != nil {
			return mapreduce.Permanent(errPayloadNotObject)
		}
		f := PayloadFields{Account: row.Int64(payloadColAccount), Keys: int64(len(obj))}
		var channel string
		if raw := obj["channel"]; len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &channel) == nil {
			f.Channel = &channel
		}
		if items, err := strconv.ParseInt(string(obj["items"]), 10, 64); err == nil {
			f.Items = &items
		}
		emit(row.Cursor(), f)
		return nil
	},
}

func init() {
	if err := EventPayloads.Validate(); err != nil {
		panic(err)
	}
	Register(EventPayloads)
}
